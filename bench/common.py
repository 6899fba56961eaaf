"""What the benchmarks share: a fresh server process, a user, posts, and RSS readings."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(out, format="PNG")
    return out.getvalue()


PNG = _png()
CREATE = "mutation ($i: CreatePostInput!) { createPost(input: $i) { id } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`gql-feed serve` with a fresh SQLite database in a temporary folder."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="gql_feed_bench_"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GQL_FEED_DATABASE_URL": f"sqlite+aiosqlite:///{self.folder / 'feed.db'}",
            "GQL_FEED_UPLOAD_DIR": str(self.folder / "uploads"),
            "GQL_FEED_JWT_SECRET": "bench-secret-0123456789abcdef0123456789abcdef",
            "GQL_FEED_LOG_LEVEL": "warning",
            "GQL_FEED_LOGIN_MAX_FAILURES": "1000000",
            # The benches drive thousands of streams from one login: measure the process,
            # not one login's share (live.quotas); a bench may set them back.
            "GQL_FEED_LIVE_MAX_STREAMS_PER_USER": "100000",
            "GQL_FEED_LIVE_MAX_SUBSCRIPTIONS_PER_USER": "1000000",
            "GQL_FEED_LIVE_MAX_GROUPS_PER_USER": "100000",
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gql_feed", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.folder,
        )
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        kb = next(line for line in text.splitlines() if line.startswith("VmRSS:")).split()[1]
        return int(kb) / 1024

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def login(url: str) -> str:
    """Sign up and log in a fresh user; returns the token."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    password = "bench-password"
    gql = f"{url}/graphql"
    httpx.post(
        gql,
        json={
            "query": "mutation($i: SignupInput!) { signup(input: $i) { id } }",
            "variables": {"i": {"email": email, "name": "Bench", "password": password}},
        },
        timeout=30,
    )
    body = httpx.post(
        gql,
        json={
            "query": "mutation($e: String!, $p: String!) "
            "{ login(email: $e, password: $p) { token } }",
            "variables": {"e": email, "p": password},
        },
        timeout=30,
    ).json()
    token: str = body["data"]["login"]["token"]
    return token


def create_post_form(title: str) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    import json

    operations = {
        "query": CREATE,
        "variables": {"i": {"title": title, "content": "benchmark content", "image": None}},
    }
    return (
        {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.i.image"]})},
        {"0": ("dot.png", PNG, "image/png")},
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def fanout_seconds(url: str) -> tuple[float, float]:
    """(events fanned out, seconds spent writing them) from the server's /metrics.

    The server's own time per fan-out, from the hub handing it the event to the last
    socket write (the fan-out proper, and the flushes of its direct writes); unlike delivery times it does not include the clients' share of the
    machine, so it shows how the server's work grows with N.
    """
    values = {
        "gql_feed_live_fanout_seconds_count": 0.0,
        "gql_feed_live_fanout_seconds_sum": 0.0,
        "gql_feed_live_flush_seconds_sum": 0.0,
    }
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    # Direct writes leave in the loop tick's flush, after the fan-out proper.
    spent = values["gql_feed_live_fanout_seconds_sum"] + values["gql_feed_live_flush_seconds_sum"]
    return values["gql_feed_live_fanout_seconds_count"], spent


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (uvicorn's supervisor and its workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_rss_mb(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) used so far by a process and its descendants.

    Unlike latencies, this hardly depends on what else the machine is doing, so it
    compares two builds even on a busy machine.
    """
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")
