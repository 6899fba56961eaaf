"""Running the client recipes of examples/ (Node scripts printing one JSON line per step)
against a real server."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.helpers.paths import REPO

EXAMPLES = REPO / "examples"
PASSWORD = "correct horse battery"  # what LiveServer.signup_and_login uses


class Recipe:
    """The running script: its lines, read one kind at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []

    async def next(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next line of `kind`, keeping the others in `lines`; an error line fails."""
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            if not raw:
                stderr = await self.process.stderr.read() if self.process.stderr else b""
                raise AssertionError(
                    f"the script ended before a {kind!r} line: {self.lines}\n{stderr.decode()}"
                )
            line: dict[str, Any] = json.loads(raw)
            self.lines.append(line)
            assert line["type"] != "error", (line, self.lines)
            if line["type"] == kind:
                return line

    async def events(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        return [await self.next("event", timeout) for _ in range(count)]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["type"] == kind]


@asynccontextmanager
async def recipe(folder: Path, script: str, **env: str) -> AsyncIterator[Recipe]:
    process = await asyncio.create_subprocess_exec(
        "node",
        script,
        cwd=folder,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Recipe(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
