"""graphql-http's `serverAudits` (the GraphQL-over-HTTP spec's audit suite) against a real
server: every MUST and SHOULD passes. The only MAY notices are the GET requests that the
CSRF rule refuses (Apollo Server's rule, kept: see the README's Security section)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tests.helpers.node_clients import clients
from tests.helpers.server import LiveServer

__all__ = ["clients"]

# GETs without a content type or a preflight header: refused as possible CSRF.
CSRF_NOTICES = {
    "MAY accept application/x-www-form-urlencoded formatted GET requests",
    "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/graphql-response+json",
    "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/json",
}


async def test_every_must_and_should_passes(clients: Path, live_server: LiveServer) -> None:
    process = await asyncio.create_subprocess_exec(
        "node",
        "audit.mjs",
        cwd=clients,
        env={**os.environ, "GQL_FEED_URL": live_server.graphql_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    results = [json.loads(line) for line in stdout.splitlines()]
    assert len(results) >= 60, results
    failed = [r for r in results if r["status"] not in ("ok", "notice")]
    assert failed == [], failed
    notices = {r["name"] for r in results if r["status"] == "notice"}
    print("notices:", sorted(notices))
    assert notices == CSRF_NOTICES, notices ^ CSRF_NOTICES
    assert all(r["name"].startswith("MAY") for r in results if r["status"] == "notice")
