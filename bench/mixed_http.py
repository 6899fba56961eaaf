"""Reads and writes together over HTTP: does createPost keep its pace with readers beside it?

For each database (SQLite, and PostgreSQL when it answers on 127.0.0.1:5432) and each
cache setting (the response cache on, then off: every read executed), against a fresh
server seeded with 50 posts:

1. writers alone: W clients sending createPost (multipart, a 1x1 PNG) back to back;
2. readers alone: R connections of wrk sending the posts(page: 1, perPage: 10) query
   (each post with its creator), the query of ../shared/bench-peers/http;
3. both at once: createPost/s (and its share of step 1), reads/s.

Readers are wrk (apt-get install wrk), which costs the shared machine far less than a
Python client would; writers are httpx. Figures only, never assertions: compare the
lines of one run.

python bench/mixed_http.py [--seconds 8] [--writers 8] [--readers 8] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, create_post_form, login, percentile

PAGE = (
    "query Page($page: Int!, $perPage: Int!) { posts(page: $page, perPage: $perPage) "
    "{ totalPosts posts { id title content imageUrl createdAt updatedAt creator { id name } } } }"
)
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '%s'
local bad = 0
response = function(status, headers, body)
  if status ~= 200 or body:find('"errors"') then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format('{"reads":%%d,"p50_ms":%%.2f,"bad":%%d}\\n', summary.requests,
    latency:percentile(50) / 1000, summary.errors.status + bad))
end
"""
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def write_for(url: str, token: str, seconds: float, writers: int) -> dict[str, float]:
    """createPost back to back from `writers` clients; posts per second and p50."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    headers = {"authorization": f"Bearer {token}", "apollo-require-preflight": "true"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:

        async def writer(index: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                data, files = create_post_form(f"Mixed benchmark post {index}-{n}")
                t0 = time.monotonic()
                body = (await http.post("/graphql", data=data, files=files)).json()
                if "errors" in body:
                    raise RuntimeError(body["errors"])
                latencies.append((time.monotonic() - t0) * 1000)
                n += 1

        started = time.monotonic()
        await asyncio.gather(*(writer(i) for i in range(writers)))
        elapsed = time.monotonic() - started
    return {
        "writes_per_s": round(len(latencies) / elapsed, 1),
        "write_p50_ms": round(percentile(latencies, 50), 1) if latencies else 0.0,
    }


def start_reads(url: str, token: str, seconds: float, readers: int) -> subprocess.Popen[str]:
    script = Path(tempfile.mkdtemp(prefix="gql_feed_mixed_")) / "page.lua"
    body = json.dumps({"query": PAGE, "variables": {"page": 1, "perPage": 10}})
    script.write_text(WRK_SCRIPT % body.replace("'", "\\'"))
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{readers}", f"-d{seconds}s", "-s", str(script), f"{url}/graphql"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TOKEN": token},
    )


def read_result(process: subprocess.Popen[str], seconds: float) -> dict[str, float]:
    out, _ = process.communicate()
    line = next(line for line in out.splitlines() if line.startswith("{"))
    figures = json.loads(line)
    return {
        "reads_per_s": round(figures["reads"] / seconds, 1),
        "read_p50_ms": figures["p50_ms"],
        "bad_reads": figures["bad"],
    }


async def scenario(url: str, seconds: float, writers: int, readers: int) -> dict[str, object]:
    token = login(url)
    await write_for(url, token, 2, 2)  # 50-odd posts to read, and a warm server
    alone = await write_for(url, token, seconds, writers)
    reads = start_reads(url, token, seconds, readers)
    reads_alone = read_result(reads, seconds)
    reads = start_reads(url, token, seconds, readers)
    together = await write_for(url, token, seconds, writers)
    beside = read_result(reads, seconds)
    share = together["writes_per_s"] / alone["writes_per_s"] if alone["writes_per_s"] else 0.0
    return {
        "writes_alone_per_s": alone["writes_per_s"],
        "writes_alone_p50_ms": alone["write_p50_ms"],
        "reads_alone_per_s": reads_alone["reads_per_s"],
        "reads_alone_p50_ms": reads_alone["read_p50_ms"],
        "writes_with_readers_per_s": together["writes_per_s"],
        "writes_with_readers_p50_ms": together["write_p50_ms"],
        "writes_with_readers_share": round(share, 2),
        "reads_with_writers_per_s": beside["reads_per_s"],
        "reads_with_writers_p50_ms": beside["read_p50_ms"],
        "bad_reads": reads_alone["bad_reads"] + beside["bad_reads"],
    }


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for one run, or None when PostgreSQL does not answer."""
    try:
        import asyncpg
    except ImportError:
        yield None
        return
    name = f"gql_feed_bench_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=3)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError):
        yield None
        return
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_one(
    database: str, url: str | None, cache: bool, args: argparse.Namespace
) -> dict[str, object]:
    env = {"GQL_FEED_ACCESS_LOG": "false"}
    if url:
        env["GQL_FEED_DATABASE_URL"] = url
    if not cache:
        env["GQL_FEED_RESPONSE_CACHE_BYTES"] = "0"
    server = Server(env)
    try:
        figures = asyncio.run(scenario(server.url, args.seconds, args.writers, args.readers))
    finally:
        server.stop()
    return {"database": database, "response_cache": cache, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="per step (whole seconds)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("mixed_http.py needs wrk for its readers: apt-get install wrk")
    results = []
    for cache in (True, False):
        results.append(run_one("sqlite", None, cache, args))
        if not args.sqlite_only:
            with postgres_database() as url:
                if url is None:
                    print("PostgreSQL does not answer on 127.0.0.1:5432: SQLite only")
                    args.sqlite_only = True
                else:
                    results.append(run_one("postgresql", url, cache, args))
    for result in results:
        print(
            f"{result['database']:<10} cache {'on ' if result['response_cache'] else 'off'}"
            f"  createPost/s alone {result['writes_alone_per_s']:>6}"
            f"  with readers {result['writes_with_readers_per_s']:>6}"
            f" ({result['writes_with_readers_share']:.0%})"
            f"  reads/s alone {result['reads_alone_per_s']:>7}"
            f"  with writers {result['reads_with_writers_per_s']:>7}"
        )
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
