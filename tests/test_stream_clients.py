"""Real clients of the HTTP streaming transports (tests/clients), with Node: graphql-sse's
client over SSE and Apollo Client 4's HttpLink over multipart. Each receives the
postEvents of a post that another user creates."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.live_helpers import create_post, signup, wait_for_values, wait_until_idle
from tests.server import LiveServer
from tests.services import required

CLIENTS = Path(__file__).resolve().parent / "clients"


@pytest.fixture(scope="module")
def clients() -> Path:
    """The clients with their locked dependencies installed (`npm ci`)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if required():
            pytest.fail("Node.js and npm are needed for the streaming clients")
        pytest.skip("Node.js is not installed")
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return CLIENTS


@pytest.mark.parametrize("transport", ["sse", "multipart"])
async def test_client_receives_another_users_posts(
    clients: Path, live_server: LiveServer, transport: str
) -> None:
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    process = await asyncio.create_subprocess_exec(
        "node",
        "subscribe.mjs",
        transport,
        cwd=clients,
        env={
            **os.environ,
            "GQL_FEED_URL": live_server.graphql_url,
            "FEED_TOKEN": reader,
            "FEED_EXIT_AFTER": "2",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        await wait_for_values(live_server, subscriptions=1)
        posts = [await create_post(live_server, writer, f"For {transport} {n}") for n in range(2)]
        lines = [json.loads(await asyncio.wait_for(process.stdout.readline(), 20)) for _ in posts]
        assert [line["type"] for line in lines] == ["event", "event"], lines
        assert [line["post"]["id"] for line in lines] == [post["id"] for post in posts]
        assert [line["action"] for line in lines] == ["CREATED", "CREATED"]
        assert lines[0]["post"]["creator"]["name"] == "Tester"
        assert int(lines[1]["id"]) == int(lines[0]["id"]) + 1
        assert await asyncio.wait_for(process.wait(), 20) == 0
    except BaseException:
        stderr = await process.stderr.read() if process.returncode is not None else b""
        print(stderr.decode())
        raise
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    await wait_until_idle(live_server)
