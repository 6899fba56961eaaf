"""Fan-out benchmark: N live subscribers, E posts; how fast does each post reach all of them?

Subscribers run in separate client processes (so the clients' own work does not slow
the server's event loop) and only timestamp raw frames on arrival; decoding happens
after the run. Timestamps use CLOCK_MONOTONIC, which all processes on a machine share.

    python bench/fanout.py --n 2000 --events 10 [--proto graphql-ws|sse] [--url http://…]

`--proto sse` subscribes over Server-Sent Events instead (one HTTP/1.1 stream each, the
same subscription, so the same group as WebSocket subscribers would join).

Prints: fan-out-complete median and max (trigger sent → last subscriber has the event),
delivery p50/p99 over all deliveries, the server's own time per fan-out (its /metrics:
from the hub handing over the event to the last socket write), the server's CPU per
event (createPost, fan-out and writes, from /proc), time to connect and
subscribe N, server RSS per live subscriber, createPost round trip, and lost/duplicated
deliveries (both must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, create_post_form, fanout_seconds, login, percentile, tree_cpu_s

QUERY = (
    "subscription { postEvents { action post { id title content imageUrl createdAt "
    "creator { id name } } } }"
)


TITLE = re.compile(rb'"title":"([^"]*)"')


def client_process(ws_url: str, token: str, proto: str, count: int, pipe: Connection) -> None:
    """Open `count` subscribers, report when subscribed, record frames until told to stop."""
    if proto == "sse":
        asyncio.run(_sse_clients(ws_url.replace("ws", "http", 1), token, count, pipe))
    else:
        asyncio.run(_clients(ws_url, token, proto, count, pipe))


async def _sse_clients(url: str, token: str, count: int, pipe: Connection) -> None:
    """SSE subscribers on raw HTTP/1.1 connections: a `data:` line per event, timestamped
    when the read that completes it returns (keep-alive comments are skipped)."""
    parts = urlsplit(url)
    request = (
        f"GET {parts.path}?query={quote(QUERY)} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Accept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    titles: list[tuple[float, int, str]] = []

    async def one(index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        return reader, writer

    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for offset in range(0, count, 100):
        streams += await asyncio.gather(*(one(i) for i in range(offset, min(count, offset + 100))))

    async def listen(index: int, reader: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await reader.read(65536):
            at = time.monotonic()
            pending += chunk
            end = pending.rfind(b"\n\n")
            if end < 0:
                continue
            complete, pending = pending[: end + 2], pending[end + 2 :]
            titles.extend((at, index, t.decode()) for t in TITLE.findall(complete))

    tasks = [asyncio.create_task(listen(i, reader)) for i, (reader, _) in enumerate(streams)]
    pipe.send("subscribed")
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
    for task in tasks:
        task.cancel()
    for _, writer in streams:
        writer.close()
    pipe.send(titles)


async def _clients(ws_url: str, token: str, proto: str, count: int, pipe: Connection) -> None:
    received: list[tuple[float, int, str]] = []
    start = "subscribe" if proto == "graphql-transport-ws" else "start"

    async def one(index: int) -> websockets.ClientConnection:
        ws = await websockets.connect(ws_url, subprotocols=[proto], max_size=None, compression=None)  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        while json.loads(await ws.recv())["type"] != "connection_ack":
            pass
        await ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": QUERY}}))
        return ws

    sockets: list[websockets.ClientConnection] = []
    for offset in range(0, count, 100):
        sockets += await asyncio.gather(*(one(i) for i in range(offset, min(count, offset + 100))))

    async def listen(index: int, ws: websockets.ClientConnection) -> None:
        try:
            async for frame in ws:
                text = frame if isinstance(frame, str) else frame.decode()
                if '"ping"' in text and '"type":"ping"' in text.replace(" ", ""):
                    await ws.send('{"type":"pong"}')
                    continue
                received.append((time.monotonic(), index, text))
        except websockets.ConnectionClosed:
            pass

    tasks = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
    pipe.send("subscribed")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # "stop"
    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()
    titles: list[tuple[float, int, str]] = []
    for at, index, text in received:
        message = json.loads(text)
        event = (message.get("payload") or {}).get("data", {}).get("postEvents")
        if event:
            titles.append((at, index, event["post"]["title"]))
    pipe.send(titles)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument(
        "--proto",
        default="graphql-transport-ws",
        choices=["graphql-transport-ws", "graphql-ws", "sse"],
    )
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--url", help="an already running server (default: start a fresh one)")
    args = parser.parse_args()

    server = None if args.url else Server()
    url = args.url or server.url  # type: ignore[union-attr]
    try:
        run(url, server, args)
    finally:
        if server:
            server.stop()


def run(url: str, server: Server | None, args: argparse.Namespace) -> None:
    token = login(url)
    ws_url = url.replace("http", "ws", 1) + "/graphql"
    http = httpx.Client(
        headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"}, timeout=60
    )
    rss_before = server.rss_mb() if server else None

    def trigger(title: str) -> float:
        data, files = create_post_form(title)
        t0 = time.monotonic()
        body = http.post(f"{url}/graphql", data=data, files=files).json()
        if "errors" in body:
            raise RuntimeError(body["errors"])
        return t0

    pipes, procs = [], []
    share = [
        args.n // args.procs + (1 if i < args.n % args.procs else 0) for i in range(args.procs)
    ]
    t_open = time.monotonic()
    for count in share:
        parent, child = mp.Pipe()
        proc = mp.Process(target=client_process, args=(ws_url, token, args.proto, count, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        pipe.recv()
    open_ms = (time.monotonic() - t_open) * 1000
    time.sleep(0.5)  # let the last subscribe messages land before the first trigger

    trigger("warmup")
    time.sleep(1.0 + args.n / 2000)
    rss_live = server.rss_mb() if server else None
    fanouts_before = fanout_seconds(url)
    cpu_before = tree_cpu_s(server.process.pid) if server else 0.0
    starts: dict[str, float] = {}
    trips: list[float] = []
    for e in range(args.events):
        title = f"event-{e}"
        starts[title] = trigger(title)
        trips.append((time.monotonic() - starts[title]) * 1000)
        time.sleep(0.25 + args.n / 8000)  # let one fan-out finish before the next
    time.sleep(1.0 + args.n / 2000)
    fanouts_after = fanout_seconds(url)
    cpu_spent = tree_cpu_s(server.process.pid) - cpu_before if server else None
    # None when the figures come from another worker than the fan-outs (--url, --workers).
    fanned_out = fanouts_after[0] - fanouts_before[0]
    server_fanout_ms = (
        round((fanouts_after[1] - fanouts_before[1]) / fanned_out * 1000, 2) if fanned_out else None
    )

    deliveries: list[tuple[float, int, str]] = []
    for proc_index, pipe in enumerate(pipes):
        pipe.send("stop")
        for at, index, title in pipe.recv():
            deliveries.append((at, proc_index * 1_000_000 + index, title))
    for proc in procs:
        proc.join(timeout=30)

    latencies: list[float] = []
    done: list[float] = []
    lost = duplicated = 0
    for title, t0 in starts.items():
        mine = [(at, who) for at, who, t in deliveries if t == title]
        who = [w for _, w in mine]
        lost += args.n - len(set(who))
        duplicated += len(who) - len(set(who))
        lat = [(at - t0) * 1000 for at, _ in mine]
        latencies += lat
        if lat:
            done.append(max(lat))
    result = {
        "n": args.n,
        "events": args.events,
        "proto": args.proto,
        "fanout_done_median_ms": round(percentile(done, 50), 2),
        "fanout_done_max_ms": round(max(done), 2),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "server_fanout_ms": server_fanout_ms,
        # CPU, unlike time, hardly depends on what else runs: compares builds on a busy machine.
        "server_cpu_ms_per_event": round(cpu_spent * 1000 / args.events, 1)
        if cpu_spent is not None
        else None,
        "open_ms": round(open_ms, 1),
        "trigger_median_ms": round(percentile(trips, 50), 2),
        "kb_per_sub": round((rss_live - rss_before) * 1024 / args.n, 1) if server else None,  # type: ignore[operator]
        "lost": lost,
        "duplicated": duplicated,
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
