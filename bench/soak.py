"""Soak benchmark: several workers, many subscribers, steady writes, random disconnects
and resumes, one broker restart. Prints events published, delivered, lost and duplicated.

    python bench/soak.py [--seconds 60] [--subscribers 1000] [--rate 10] [--workers 2]

It starts its own Redis (on a port of its own, so it can restart it) and uses a fresh
PostgreSQL database when PostgreSQL answers on 127.0.0.1:5432 (else a SQLite file).
Every subscriber starts with `postEvents(after: "0")`, remembers the last id it got, and
when dropped comes back with `after:` that id; so each must end with every event exactly
once, in order. Lost and duplicated must both be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, create_post_form, free_port, login

QUERY = "subscription($after: ID) { postEvents(after: $after) { id action post { id } } }"


class Broker:
    """A Redis server of our own, on its own port, so that it can be restarted mid-run."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        redis = shutil.which("redis-server") or "redis-server"
        process = subprocess.Popen(
            [
                redis,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return process
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.process = self._start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


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


def subscriber_process(
    ws_url: str, token: str, count: int, drop_rate: float, pipe: Connection
) -> None:
    asyncio.run(_subscribers(ws_url, token, count, drop_rate, pipe))


async def _subscribers(
    ws_url: str, token: str, count: int, drop_rate: float, pipe: Connection
) -> None:
    received: list[list[int]] = [[] for _ in range(count)]
    stopping = asyncio.Event()
    reconnects = 0

    async def run_one(index: int) -> None:
        nonlocal reconnects
        while not stopping.is_set():
            after = str(received[index][-1]) if received[index] else "0"
            try:
                async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                    init = {"Authorization": f"Bearer {token}"}
                    await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                    while json.loads(await ws.recv())["type"] != "connection_ack":
                        pass
                    payload = {"query": QUERY, "variables": {"after": after}}
                    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                    # Each subscriber drops its own socket now and then, at random.
                    drop_at = time.monotonic() + random.expovariate(drop_rate)
                    while not stopping.is_set():
                        timeout = max(0.01, drop_at - time.monotonic())
                        try:
                            frame = await asyncio.wait_for(ws.recv(), timeout)
                        except TimeoutError:
                            break
                        message = json.loads(frame)
                        if message["type"] == "ping":
                            await ws.send('{"type":"pong"}')
                        elif message["type"] == "next":
                            received[index].append(
                                int(message["payload"]["data"]["postEvents"]["id"])
                            )
                        elif message["type"] in ("error", "complete"):
                            print("subscription ended:", message, file=sys.stderr)
                            return
            except (OSError, websockets.ConnectionClosed):
                await asyncio.sleep(0.2)
            reconnects += 1

    tasks = [asyncio.create_task(run_one(i)) for i in range(count)]
    pipe.send("started")
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "finish": stop dropping
    await asyncio.sleep(0)
    drop_rate = 0.0
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
    stopping.set()
    await asyncio.wait(tasks, timeout=10)
    pipe.send((received, reconnects))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10, help="posts per second")
    parser.add_argument(
        "--drop-rate", type=float, default=0.05, help="drops per subscriber per second"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--procs", type=int, default=2, help="subscriber client processes")
    args = parser.parse_args()

    broker = Broker()
    database_url, pg_name = fresh_database()
    env = {
        "GQL_FEED_BROADCAST_URL": broker.url,
        "GQL_FEED_WORKERS": str(args.workers),
    }
    if database_url:
        env["GQL_FEED_DATABASE_URL"] = database_url
    server = Server(env)
    try:
        report = soak(server.url, args, broker)
    finally:
        server.stop()
        broker.stop()
        if pg_name:
            drop_database(pg_name)
    for key, value in report.items():
        print(f"{key:<22} {value}")
    print(json.dumps(report))


def soak(url: str, args: argparse.Namespace, broker: Broker) -> dict[str, object]:
    token = login(url)
    ws_url = url.replace("http", "ws", 1) + "/graphql"
    pipes, procs = [], []
    for i in range(args.procs):
        count = args.subscribers // args.procs + (1 if i < args.subscribers % args.procs else 0)
        parent, child = mp.Pipe()
        proc = mp.Process(
            target=subscriber_process, args=(ws_url, token, count, args.drop_rate, child)
        )
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        pipe.recv()
    time.sleep(2)

    http = httpx.Client(
        headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"}, timeout=60
    )
    published = 0
    restarted = False
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < args.seconds:
        if not restarted and elapsed > args.seconds / 2:
            broker.restart()
            restarted = True
        data, files = create_post_form(f"soak {published}")
        body = http.post(f"{url}/graphql", data=data, files=files).json()
        if "errors" in body:
            raise RuntimeError(body["errors"])
        published += 1
        time.sleep(max(0.0, start + published / args.rate - time.monotonic()))
    for pipe in pipes:
        pipe.send("finish")
    time.sleep(5)  # let the last resumes replay and the last events arrive
    for pipe in pipes:
        pipe.send("stop")
    lost = duplicated = delivered = reconnects = out_of_order = 0
    expected = list(range(1, published + 1))
    for pipe in pipes:
        received, procs_reconnects = pipe.recv()
        reconnects += procs_reconnects
        for ids in received:
            delivered += len(ids)
            duplicated += len(ids) - len(set(ids))
            lost += len(set(expected) - set(ids))
            out_of_order += sum(1 for a, b in itertools.pairwise(ids) if b <= a)
    for proc in procs:
        proc.join(timeout=30)
    return {
        "seconds": args.seconds,
        "workers": args.workers,
        "subscribers": args.subscribers,
        "published": published,
        "delivered": delivered,
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "reconnects": reconnects,
        "broker_restarts": 1,
    }


if __name__ == "__main__":
    main()
