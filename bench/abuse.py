"""How long another client waits for `{ __typename }` while someone misbehaves.

Three attacks, each sent concurrently against a fresh server while a cheap query is sent
every 20 ms: padded 5.5 MB queries (spaces, a comment, a block string), distinct queries
just under GQL_FEED_MAX_QUERY_BYTES (parsed off the event loop), and the costly batch
(10 operations x 30 aliases of `posts(perPage: 50)` with content and creator). Prints,
per attack, the answers it got, how long it took, and the cheap query's p50 and max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, create_post_form, login, percentile

PADDING = 5_500_000
MAX_QUERY_BYTES = 64 * 1024
PAGES = (
    "query Pages { "
    + " ".join(
        f"p{i}: posts(perPage: 50) {{ posts {{ content creator {{ name }} }} }}" for i in range(30)
    )
    + " }"
)

Attack = Callable[[httpx.AsyncClient, str, str], Awaitable[list[int]]]


async def padded(http: httpx.AsyncClient, url: str, token: str) -> list[int]:
    queries = [
        "{__typename}" + " " * PADDING,
        "{__typename}\n#" + "x" * PADDING,
        '{ user(id: """' + "x" * PADDING + '""") { id } }',
    ]
    # Encoded up front, so the attacking client's own work does not stall the measuring one.
    bodies = [json.dumps({"query": queries[i % 3] + f" #{i}"}).encode() for i in range(6)]
    headers = {"content-type": "application/json"}
    responses = await asyncio.gather(*(http.post(url, content=b, headers=headers) for b in bodies))
    return [response.status_code for response in responses]


async def at_the_bound(http: httpx.AsyncClient, url: str, token: str) -> list[int]:
    statuses = []
    for start in range(0, 40, 8):
        responses = await asyncio.gather(
            *(
                http.post(
                    url, json={"query": f"{{__typename}}\n# {i} " + "x" * (MAX_QUERY_BYTES - 40)}
                )
                for i in range(start, start + 8)
            )
        )
        statuses += [response.status_code for response in responses]
    return statuses


async def costly_batch(http: httpx.AsyncClient, url: str, token: str) -> list[int]:
    batch = [{"query": PAGES} for _ in range(10)]
    headers = {"authorization": f"Bearer {token}"}
    responses = await asyncio.gather(
        *(http.post(url, json=batch, headers=headers) for _ in range(5))
    )
    return [response.status_code for response in responses]


async def measure(url: str, token: str, name: str, attack: Attack) -> None:
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=120) as http, httpx.AsyncClient(timeout=120) as other:
        started = time.monotonic()
        attacking = asyncio.create_task(attack(http, url, token))
        while not attacking.done():
            sent = time.monotonic()
            await other.post(url, json={"query": "{ __typename }"})
            latencies.append(time.monotonic() - sent)
            await asyncio.sleep(0.02)
        statuses = Counter(await attacking)
        took = time.monotonic() - started
    print(
        f"{name:>14}: answers {dict(statuses)} in {took:.2f} s; cheap query "
        f"p50 {percentile(latencies, 50) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"({len(latencies)} sent)"
    )


async def run(url: str) -> None:
    graphql = f"{url}/graphql"
    token = login(url)
    async with httpx.AsyncClient(timeout=60) as http:
        for index in range(50):
            data, files = create_post_form(f"Benchmark post {index}")
            await http.post(
                graphql,
                data=data,
                files=files,
                headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "1"},
            )
    for name, attack in (
        ("padded 5.5 MB", padded),
        ("at the bound", at_the_bound),
        ("costly batch", costly_batch),
    ):
        await measure(graphql, token, name, attack)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    args = parser.parse_args()
    server = None if args.url else Server()
    try:
        asyncio.run(run(args.url or server.url))  # type: ignore[union-attr]
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
