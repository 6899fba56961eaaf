"""The real Node.js clients of tests/clients: installed once, run as a subprocess that
prints one JSON line per event (or request, for the single-connection mode)."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import REPO
from tests.helpers.services import required

CLIENTS = REPO / "tests" / "clients"


def npm_installed(folder: Path, needed_for: str) -> Path:
    """`folder` with its locked dependencies installed (`npm ci`, unless the same lock is
    installed already); skips without Node.js, except under REQUIRE_SERVICES=1, where
    that fails."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if required():
            pytest.fail(f"Node.js and npm are needed for {needed_for}")
        pytest.skip("Node.js is not installed")
    # Once per lock: the test files (and the xdist workers) that need the same folder
    # take turns, and the first installs while the others wait; no `npm ci` removes
    # node_modules under a client that another worker is running.
    locked = hashlib.sha256(
        b"".join((folder / name).read_bytes() for name in ("package.json", "package-lock.json"))
    ).hexdigest()
    stamp = folder / "node_modules" / ".gql_feed-npm-ci"
    turn = (
        Path(tempfile.gettempdir())
        / f"gql_feed-npm-ci-{hashlib.sha256(bytes(folder)).hexdigest()[:16]}.lock"
    )
    with turn.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == locked:
            return folder
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        stamp.write_text(locked)
    return folder


@pytest.fixture(scope="module")
def clients() -> Path:
    """The streaming clients, ready to run."""
    return npm_installed(CLIENTS, "the streaming clients")


class NodeClient:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []

    async def line(self, timeout: float = 20) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise EOFError(f"the client ended after {self.lines}")
        line: dict[str, Any] = json.loads(raw)
        self.lines.append(line)
        return line

    async def events(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        """The next `count` events (request lines are kept in `lines`)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            line = await self.line(timeout)
            assert line["type"] in ("event", "request", "ended"), line
            if line["type"] == "event":
                found.append(line)
        return found

    async def exit_status(self, timeout: float = 20) -> int:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(json.loads(raw))
        return await asyncio.wait_for(self.process.wait(), timeout)

    def requests(self) -> list[tuple[str, str, int]]:
        return [
            (line["method"], line["url"], line["status"])
            for line in self.lines
            if line["type"] == "request"
        ]


@asynccontextmanager
async def node_client(clients: Path, transport: str, **env: str) -> AsyncIterator[NodeClient]:
    """`node subscribe.mjs <transport>` with GQL_FEED_URL, FEED_TOKEN… in `env`."""
    process = await asyncio.create_subprocess_exec(
        "node",
        "subscribe.mjs",
        transport,
        cwd=clients,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        yield NodeClient(process)
    except BaseException:
        stderr = await process.stderr.read() if process.returncode is not None else b""
        print(stderr.decode())
        raise
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
