"""Shared fixtures: real server processes, and the ASGI app in process for HTTP tests;
and the order in which `make test`'s workers take the test files."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import limits.aio.storage.memory
import pytest

from gql_feed.config import Settings
from gql_feed.services import throttle
from tests.helpers.asgi import app_client
from tests.helpers.clock import SkippingClock
from tests.helpers.server import TEST_SECRET, LiveServer
from tests.helpers.services import fresh_postgres_database
from tests.helpers.suite_order import LONGEST_FIRST


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist hands out files with the most tests first unless told to keep the
    collection's order, which `pytest_collection_modifyitems` below sets."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, then the rest as xdist would take them (most tests
    first). Only files move, each keeping its tests' order; every worker collects the
    same files and so computes the same order, as xdist requires."""

    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    sizes = Counter(file_of(item) for item in items)
    items.sort(key=lambda item: (rank.get(file_of(item), len(rank)), -sizes[file_of(item)]))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real uvicorn server (SQLite, memory bus) shared by the tests of a module."""
    server = LiveServer(tmp_path_factory.mktemp("live"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Servers with settings of the test's choosing: `live_server_factory(GQL_FEED_X="1")`."""
    servers: list[LiveServer] = []

    def start(workdir: Path | None = None, **env: str) -> LiveServer:
        folder = workdir or tmp_path / f"server{len(servers)}"
        folder.mkdir(exist_ok=True)
        server = LiveServer(folder, env)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def shared_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LiveServer]]:
    """Like `live_server_factory`, but one server per set of settings for the whole module:
    the tests that ask for the same settings share it (so each leaves nothing behind that
    another could see: users, posts and channels of its own)."""
    servers: dict[tuple[tuple[str, str], ...], LiveServer] = {}

    def start(**env: str) -> LiveServer:
        key = tuple(sorted(env.items()))
        if key not in servers:
            server = LiveServer(tmp_path_factory.mktemp("shared"), env)
            servers[key] = server
            server.start()
        return servers[key]

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs twice: on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        upload_dir=tmp_path / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=False,  # the collector belongs to pytest here
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process (lifespan included) behind an httpx client, its password
    hashes at argon2id's least cost, as the test servers' (`CHEAP_PASSWORD_COST`): for
    tests that make accounts to test something else. Hashing itself (its threads and
    queue) is tested at the real cost, by tests that build their app with `app_client`."""
    async with app_client(settings, password_hash_memory_kib=32, password_hash_passes=1) as http:
        yield http


@pytest.fixture
def throttle_clock(monkeypatch: pytest.MonkeyPatch) -> SkippingClock:
    """The clock of the login and signup throttles (theirs and that of the `limits` memory
    storage they count in), which a test moves on without waiting."""
    clock = SkippingClock()
    monkeypatch.setattr(throttle, "time", clock)
    monkeypatch.setattr(limits.aio.storage.memory, "time", clock)
    return clock
