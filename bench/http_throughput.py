"""HTTP benchmark: `posts(page)` reads and `createPost` writes per second against a fresh server.

python bench/http_throughput.py [--seconds 5] [--concurrency 16] [--url http://…]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, create_post_form, login, percentile

PAGE = (
    "query { posts(page: 1, perPage: 10) "
    "{ totalPosts posts { id title imageUrl creator { id name } } } }"
)


async def measure(
    name: str, seconds: float, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> dict[str, float | str]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            await call(index * 1_000_000 + n)
            latencies.append((time.monotonic() - t0) * 1000)
            n += 1

    t_start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.monotonic() - t_start
    return {
        "benchmark": name,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


async def run(url: str, seconds: float, concurrency: int) -> None:
    token = login(url)
    headers = {"authorization": f"Bearer {token}", "apollo-require-preflight": "true"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def create(n: int) -> None:
            data, files = create_post_form(f"Benchmark post {n}")
            body = (await http.post("/graphql", data=data, files=files)).json()
            if "errors" in body:
                raise RuntimeError(body["errors"])

        async def page(_: int) -> None:
            body = (await http.post("/graphql", json={"query": PAGE})).json()
            if "errors" in body:
                raise RuntimeError(body["errors"])

        results = [
            await measure("createPost", seconds, concurrency, create),
            await measure("posts(page)", seconds, concurrency, page),
        ]
    for result in results:
        print(
            f"{result['benchmark']:<12} {result['requests_per_s']:>8} req/s"
            f"  p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms"
        )
        print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--url")
    args = parser.parse_args()
    server = None if args.url else Server()
    try:
        asyncio.run(run(args.url or server.url, args.seconds, args.concurrency))  # type: ignore[union-attr]
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
