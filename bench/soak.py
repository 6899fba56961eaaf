"""Soak benchmark: several workers, many subscribers, steady writes, random disconnects
and resumes, one broker restart. Prints events published, delivered, lost and duplicated.

    python bench/soak.py [--seconds 60] [--subscribers 1000] [--rate 10] [--workers 2]

It starts its own Redis (on a port of its own, so it can stop and restart it) and uses a
fresh PostgreSQL database when PostgreSQL answers on 127.0.0.1:5432 (else a SQLite file).
Every subscriber starts with `postEvents(after: "0")`, remembers the last id it got, and
when dropped (by itself, at random, or by the server) comes back with `after:` that id;
so each must end with every event exactly once, in order. Halfway through, the broker is
stopped for `--down-seconds` while posts keep being created, then started again.

Bounded: the writes last `--seconds`; then the subscribers stop dropping and get
`--settle-seconds` at most to reach the last event. Lost, duplicated and out of order
must all be 0 (the exit status is 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing as mp
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, create_post_form, free_port, login

QUERY = "subscription($after: ID) { postEvents(after: $after) { id action post { id } } }"


class Broker:
    """A Redis server of our own, on its own port, so that it can be stopped mid-run."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        redis = shutil.which("redis-server") or "redis-server"
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(
            [redis, *arguments, "--appendonly", "no"], stdout=subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None


def fresh_database() -> tuple[str, str | None]:
    """(SQLAlchemy URL, name of a PostgreSQL database to drop afterwards or None)."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        return "", None
    import asyncpg

    name = f"gql_feed_soak_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        await connection.execute(f'CREATE DATABASE "{name}"')
        await connection.close()

    asyncio.run(create())
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


def drop_database(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    asyncio.run(drop())


# The subscriber processes.


@dataclass
class Tally:
    """What one subscriber process saw, sent back to the main process at the end."""

    received: list[list[int]]
    connects: int = 0
    random_drops: int = 0
    server_closes: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def subscriber_process(
    ws_url: str, token: str, count: int, drop_rate: float, pipe: Connection
) -> None:
    asyncio.run(_subscribers(ws_url, token, count, drop_rate, pipe))


async def _subscribers(
    ws_url: str, token: str, count: int, drop_rate: float, pipe: Connection
) -> None:
    tally = Tally(received=[[] for _ in range(count)])
    target: list[int] = []  # set once writes are over: the last event id
    connected_once = [False] * count
    rng = random.Random()

    def done(index: int) -> bool:
        ids = tally.received[index]
        return bool(target) and bool(ids) and ids[-1] >= target[0]

    async def session(index: int) -> None:
        ids = tally.received[index]
        after = str(ids[-1]) if ids else "0"
        async with websockets.connect(
            ws_url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            open_timeout=20,
            compression=None,
        ) as ws:
            tally.connects += 1
            init = {"Authorization": f"Bearer {token}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            while json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] != "connection_ack":
                pass
            payload = {"query": QUERY, "variables": {"after": after}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            connected_once[index] = True
            # Each subscriber drops its own socket now and then, at random, until the
            # writes are over; then it stays until it has the last event.
            drop_at = time.monotonic() + rng.expovariate(drop_rate) if drop_rate else math.inf
            while not done(index):
                if target:
                    drop_at = math.inf
                now = time.monotonic()
                if now >= drop_at:
                    tally.random_drops += 1
                    return
                try:
                    frame = await asyncio.wait_for(ws.recv(), min(0.5, drop_at - now))
                except TimeoutError:
                    continue
                message = json.loads(frame)
                if message["type"] == "ping":
                    await ws.send('{"type":"pong"}')
                elif message["type"] == "next":
                    ids.append(int(message["payload"]["data"]["postEvents"]["id"]))
                elif message["type"] in ("error", "complete"):
                    raise SubscriptionEnded(json.dumps(message))

    async def run_one(index: int) -> None:
        while not done(index):
            try:
                await session(index)
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else 1006
                tally.server_closes[code] = tally.server_closes.get(code, 0) + 1
                await asyncio.sleep(0.05 + rng.random() * 0.2)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.2 + rng.random() * 0.3)
            except SubscriptionEnded as ended:
                tally.errors.append(str(ended))
                return

    tasks = [asyncio.create_task(run_one(i)) for i in range(count)]
    while not all(connected_once):
        await asyncio.sleep(0.1)
    pipe.send("started")
    loop = asyncio.get_running_loop()
    last_id, settle_seconds = await loop.run_in_executor(None, pipe.recv)
    target.append(last_id)
    await asyncio.wait(tasks, timeout=settle_seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(tally)


class SubscriptionEnded(Exception):
    """The server ended the subscription with an error: it cannot be resumed."""


# The main process: the broker, the server, the writer, and the figures.


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60, help="how long posts are written")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10, help="posts per second")
    parser.add_argument(
        "--drop-rate", type=float, default=0.05, help="random drops per subscriber per second"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--procs", type=int, default=2, help="subscriber client processes")
    parser.add_argument("--down-seconds", type=float, default=3.0, help="broker outage")
    parser.add_argument("--settle-seconds", type=float, default=60.0)
    args = parser.parse_args()

    broker = Broker()
    database_url, pg_name = fresh_database()
    env = {"GQL_FEED_BROADCAST_URL": broker.url, "GQL_FEED_WORKERS": str(args.workers)}
    if database_url:
        env["GQL_FEED_DATABASE_URL"] = database_url
    server: Server | None = None
    procs: list[mp.Process] = []
    try:
        server = Server(env)
        report = soak(server.url, args, broker, procs)
        report["database"] = "postgresql" if database_url else "sqlite"
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        if server is not None:
            server.stop()
        broker.stop()
        if pg_name:
            drop_database(pg_name)
    for key, value in report.items():
        print(f"{key:<26} {value}")
    print(json.dumps(report))
    bad = report["lost"] or report["duplicated"] or report["out_of_order"]
    raise SystemExit(1 if bad else 0)


def soak(
    url: str, args: argparse.Namespace, broker: Broker, procs: list[mp.Process]
) -> dict[str, Any]:
    token = login(url)
    ws_url = url.replace("http", "ws", 1) + "/graphql"
    pipes = []
    for i in range(args.procs):
        count = args.subscribers // args.procs + (1 if i < args.subscribers % args.procs else 0)
        parent, child = mp.Pipe()
        proc = mp.Process(
            target=subscriber_process,
            args=(ws_url, token, count, args.drop_rate, child),
            daemon=True,
        )
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    connect_started = time.monotonic()
    for pipe in pipes:
        if not pipe.poll(120):
            raise RuntimeError("subscribers did not connect within 120 s")
        pipe.recv()
    connect_seconds = time.monotonic() - connect_started

    http = httpx.Client(
        headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"}, timeout=60
    )
    published = published_while_down = failed = 0
    down_at = args.seconds / 2
    up_at = down_at + args.down_seconds
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < args.seconds:
        if broker.process is not None and down_at <= elapsed < up_at:
            broker.stop()
        elif broker.process is None and elapsed >= up_at:
            broker.start()
        data, files = create_post_form(f"Soak post {published}")
        body = http.post(f"{url}/graphql", data=data, files=files).json()
        if "errors" in body:
            failed += 1
            print("createPost failed:", body["errors"], file=sys.stderr)
            if failed > 10 and failed > published:
                raise RuntimeError("createPost keeps failing")
        else:
            published += 1
            published_while_down += broker.process is None
        time.sleep(max(0.0, start + (published + failed) / args.rate - time.monotonic()))
    if broker.process is None:
        broker.start()
    write_seconds = time.monotonic() - start

    settle_started = time.monotonic()
    for pipe in pipes:
        pipe.send((published, args.settle_seconds))
    tallies: list[Tally] = []
    for pipe in pipes:
        if not pipe.poll(args.settle_seconds + 30):
            raise RuntimeError("a subscriber process did not report")
        tallies.append(pipe.recv())
    settle_seconds = time.monotonic() - settle_started
    for proc in procs:
        proc.join(timeout=10)

    lost = duplicated = delivered = out_of_order = incomplete = 0
    expected = set(range(1, published + 1))
    closes: dict[int, int] = {}
    for tally in tallies:
        for code, times in tally.server_closes.items():
            closes[code] = closes.get(code, 0) + times
        for ids in tally.received:
            delivered += len(ids)
            duplicated += len(ids) - len(set(ids))
            missing = len(expected - set(ids))
            lost += missing
            incomplete += missing > 0
            out_of_order += sum(1 for a, b in itertools.pairwise(ids) if b <= a)
    errors = [error for tally in tallies for error in tally.errors]
    for error in errors[:5]:
        print("subscription ended:", error, file=sys.stderr)
    with contextlib.suppress(httpx.HTTPError):
        http.close()
    return {
        "seconds": round(write_seconds, 1),
        "workers": args.workers,
        "subscribers": args.subscribers,
        "connect_seconds": round(connect_seconds, 1),
        "published": published,
        "published_while_down": published_while_down,
        "create_failures": failed,
        "expected_deliveries": published * args.subscribers,
        "delivered": delivered,
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "incomplete_subscribers": incomplete,
        "connects": sum(tally.connects for tally in tallies),
        "random_drops": sum(tally.random_drops for tally in tallies),
        "server_closes": {str(code): times for code, times in sorted(closes.items())},
        "subscription_errors": len(errors),
        "broker_restarts": 1,
        "broker_down_seconds": args.down_seconds,
        "settle_seconds": round(settle_seconds, 1),
    }


if __name__ == "__main__":
    main()
