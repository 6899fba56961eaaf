"""A server on the defaults (SQLite, the memory bus, no tracing) starts without loading the
clients of what it does not use: redis-py, asyncpg, the OpenTelemetry SDK, its exporter
and instrumentations (and protobuf). Together they are about a tenth of a start's CPU,
paid by every process of `--workers N` and by every restart.

The application is built and its lifespan run in a fresh interpreter, since this one has
loaded all of them for other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import REPO
from tests.helpers.server import TEST_SECRET, server_environ

NOT_NEEDED = (
    "redis",
    "asyncpg",
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.redis",
    "opentelemetry.instrumentation.sqlalchemy",
    "google.protobuf",
)

START_AND_STOP = """
import asyncio, json, sys
from gql_feed.app import create_app
from gql_feed.config import Settings

async def main() -> None:
    app = create_app(Settings(_env_file=None))
    async with app.router.lifespan_context(app):
        pass

asyncio.run(main())
print(json.dumps(sorted(name for name in sys.argv[1:] if name in sys.modules)))
"""


def loaded_by_a_start(workdir: Path, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", START_AND_STOP, *NOT_NEEDED],
        env=server_environ(
            PYTHONPATH=str(REPO),
            GQL_FEED_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'feed.db'}",
            GQL_FEED_UPLOAD_DIR=str(workdir / "uploads"),
            GQL_FEED_JWT_SECRET=TEST_SECRET,
            GQL_FEED_LOG_LEVEL="warning",
            **env,
        ),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_a_default_server_loads_no_client_it_does_not_use(tmp_path: Path) -> None:
    assert loaded_by_a_start(tmp_path) == []


def test_tracing_on_loads_the_sdk_and_its_exporter(tmp_path: Path) -> None:
    """The other side: the same check sees the modules when the server does use them."""
    loaded = loaded_by_a_start(
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp",
        # Nothing listens there: the spans of the start (its migration's statements) are
        # given up after a second at shutdown, instead of the default ten.
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
    )
    assert "opentelemetry.sdk.trace" in loaded
    assert "opentelemetry.exporter.otlp.proto.http" in loaded
    assert "google.protobuf" in loaded
