"""Connection churn: does the server's memory come back after thousands of sockets come and go?

Each round opens N WebSockets (graphql-transport-ws), authenticates and subscribes each one,
waits until the server counts N live subscriptions, closes them all, waits until the server
counts none, then reads the server's RSS. A server that frees what its connections used
prints about the same RSS after every round.

    python bench/churn.py --n 2000 --rounds 5 [--freeze false] [--url http://…]

`--freeze` sets GQL_FEED_GC_FREEZE for the server it starts (default: the server's default,
on). Prints RSS before the first round and after each round, and the last round's RSS
against the first's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, login

QUERY = "subscription { postEvents { id action post { id title creator { id name } } } }"
BATCH = 100


def live_gauges(url: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("gql_feed_live_"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def wait_for_subscriptions(url: str, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        values = await asyncio.to_thread(live_gauges, url)
        if (
            values.get("gql_feed_live_subscriptions") == count
            and values.get("gql_feed_live_connections") == count
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server never reached {count} subscriptions: {values}")
        await asyncio.sleep(0.2)


async def open_one(ws_url: str, token: str, op_id: int) -> websockets.ClientConnection:
    ws = await websockets.connect(
        ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        compression=None,
        open_timeout=60,
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    while json.loads(await ws.recv())["type"] != "connection_ack":
        pass
    await ws.send(json.dumps({"id": str(op_id), "type": "subscribe", "payload": {"query": QUERY}}))
    return ws


async def one_round(url: str, token: str, n: int) -> None:
    ws_url = url.replace("http", "ws", 1) + "/graphql"
    sockets: list[websockets.ClientConnection] = []
    for offset in range(0, n, BATCH):
        sockets += await asyncio.gather(
            *(open_one(ws_url, token, i) for i in range(offset, min(n, offset + BATCH)))
        )
    await wait_for_subscriptions(url, n)
    for offset in range(0, n, BATCH):
        await asyncio.gather(*(ws.close() for ws in sockets[offset : offset + BATCH]))
    await wait_for_subscriptions(url, 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="connections per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    parser.add_argument("--freeze", choices=["true", "false"], help="GQL_FEED_GC_FREEZE")
    parser.add_argument("--url", help="an already running server (no RSS readings then)")
    args = parser.parse_args()

    env = {"GQL_FEED_GC_FREEZE": args.freeze} if args.freeze else {}
    server = None if args.url else Server(env)
    url = args.url or server.url  # type: ignore[union-attr]
    try:
        asyncio.run(run(url, server, args))
    finally:
        if server:
            server.stop()


async def run(url: str, server: Server | None, args: argparse.Namespace) -> None:
    token = login(url)
    print(f"churn: {args.rounds} rounds of {args.n} connects+subscribes, then disconnects")
    if server:
        print(f"start-up RSS {server.rss_mb():.1f} MB")
    readings: list[float] = []
    for number in range(1, args.rounds + 1):
        started = time.monotonic()
        await one_round(url, token, args.n)
        await asyncio.sleep(args.settle)
        took = time.monotonic() - started
        if server:
            readings.append(server.rss_mb())
            print(f"round {number}: RSS {readings[-1]:.1f} MB ({took:.1f} s)")
        else:
            print(f"round {number}: {took:.1f} s")
    if len(readings) > 1:
        change = (readings[-1] - readings[0]) / readings[0] * 100
        print(f"RSS after round {len(readings)} vs round 1: {change:+.1f} %")


if __name__ == "__main__":
    main()
