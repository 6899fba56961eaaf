"""Another client's `{ __typename }` and the server's memory, without and with each attack.

Replays, one after the other against one server, each attack of the hostile-client
rounds: the fragment fan-out, a float size around the cost, megabytes of variables, slow
SSE and multipart readers, unopened single-connection reservations, one login filling
the per-process caps, writes-first pacing (a trickled multipart body, ticket loops),
deep pages, and the smaller points (new big documents for the response cache, GETs at
the URL limit, aliased `__schema`); then the earlier ones (padded 5.5 MB queries,
queries at GQL_FEED_MAX_QUERY_BYTES, the costly batch). Each attack runs for a few
seconds (`--seconds`) and at most `--requests` requests, on loopback only; before it a
quiet second measures the same cheap query. Prints per attack: the cheap query's p99
quiet and under attack (and its worst), the server's RSS quiet and at its peak under
attack, and what the attack's requests were answered. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from common import PNG, Server, login, percentile, tree_rss_mb

CHEAP = {"query": "{ __typename }"}
QUIET_SECONDS = 1.0
PADDING = 5_500_000
MAX_QUERY_BYTES = 64 * 1024
CONTENT = "x" * 4_900
CREATE = "mutation ($i: CreatePostInput!) { createPost(input: $i) { id } }"


def fan_out(levels: int) -> str:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return " ".join(["{ ...F0 }", *fragments, f"fragment F{levels} on Query {{ __typename }}"])


FAN_OUT = fan_out(20)
FLOAT_PAGES = (
    "query($n: Int!) { "
    + " ".join(
        f"a{i}: posts(perPage: $n) {{ posts {{ id content creator {{ name }} }} }}"
        for i in range(30)
    )
    + " }"
)
PAGES = (
    "query Pages { "
    + " ".join(
        f"p{i}: posts(perPage: 50) {{ posts {{ content creator {{ name }} }} }}" for i in range(30)
    )
    + " }"
)
WIDE_EVENTS = (
    "subscription { postEvents { "
    + " ".join(f"a{i}: post {{ content }}" for i in range(30))
    + " } }"
)
SCHEMAS = "{ " + " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(16)) + " }"


@dataclass
class Attack:
    """What one attack needs, and when it must stop."""

    base: str
    token: str
    until: float
    max_requests: int
    http: httpx.AsyncClient
    answers: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    @property
    def graphql(self) -> str:
        return f"{self.base}/graphql"

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def running(self) -> bool:
        return time.monotonic() < self.until and self.sent < self.max_requests

    def bearer(self, **more: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", **more}

    def note(self, response: httpx.Response) -> None:
        self.answers[_summary(response)] += 1

    async def post(self, body: object, headers: dict[str, str] | None = None) -> None:
        self.sent += 1
        self.note(await self.http.post(self.graphql, json=body, headers=headers))

    async def workers(self, count: int, work: Callable[[int], Awaitable[None]]) -> None:
        async def loop(worker: int) -> None:
            while self.running():
                await work(worker)

        await asyncio.gather(*(loop(worker) for worker in range(count)))


def _summary(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.headers.get('content-type', '')}"
    bodies = body if isinstance(body, list) else [body]
    codes = sorted(
        {e.get("extensions", {}).get("code", "?") for b in bodies for e in b.get("errors") or []}
    )
    return f"{response.status_code} {'/'.join(codes) or 'data'}"


def raw_socket(port: int, request: bytes) -> socket.socket:
    """A loopback connection with a small receive buffer that sends `request` and is
    then never read: whatever the server answers waits in its own buffers."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    sock.setblocking(False)
    return sock


def sse_request(query: str, token: str, name: str | None = None) -> bytes:
    target = "/graphql?query=" + quote(query) + (f"&operationName={name}" if name else "")
    return (
        f"GET {target} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n"
        f"authorization: Bearer {token}\r\n\r\n"
    ).encode()


async def create_posts(attack: Attack, count: int) -> None:
    for index in range(count):
        operations = {"query": CREATE, "variables": {"i": {"title": f"Post {index}"}}}
        operations["variables"]["i"].update(content=CONTENT, image=None)
        await attack.http.post(
            attack.graphql,
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.i.image"]}),
            },
            files={"0": ("dot.png", PNG, "image/png")},
            headers=attack.bearer(**{"apollo-require-preflight": "1"}),
        )


# The attacks (numbers as in the hostile-clients issue).


async def fragment_fan_out(attack: Attack) -> None:
    async def one(_: int) -> None:
        await attack.post({"query": FAN_OUT + f" # {uuid.uuid4().hex}"})

    await attack.workers(2, one)


async def float_cost(attack: Attack) -> None:
    async def one(_: int) -> None:
        await attack.post({"query": FLOAT_PAGES, "variables": {"n": 50.0}}, attack.bearer())

    await attack.workers(2, one)


BIG_VARIABLES = [
    orjson.dumps({"query": "{ __typename }", "variables": {"junk": [[]] * 1_700_000}}),
    orjson.dumps({"query": "{ __typename }", "variables": {"junk": [0] * 2_500_000}}),
]


async def big_variables(attack: Attack) -> None:
    async def one(worker: int) -> None:
        attack.sent += 1
        headers = {"content-type": "application/json"}
        body = BIG_VARIABLES[worker % 2]
        attack.note(await attack.http.post(attack.graphql, content=body, headers=headers))

    await attack.workers(2, one)


async def slow_readers(attack: Attack) -> None:
    multipart = orjson.dumps({"query": WIDE_EVENTS})
    readers = [
        raw_socket(attack.port, sse_request(WIDE_EVENTS, attack.token)),
        raw_socket(
            attack.port,
            (
                "POST /graphql HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
                'accept: multipart/mixed;subscriptionSpec="1.0"\r\n'
                f"authorization: Bearer {attack.token}\r\ncontent-length: {len(multipart)}\r\n\r\n"
            ).encode()
            + multipart,
        ),
    ]
    try:
        while attack.running():
            attack.sent += 1
            await create_posts(attack, 1)  # each event: 30 x 4.9 KB to each reader
        attack.answers["posts created"] = attack.sent
    finally:
        for reader in readers:
            reader.close()


async def unopened_reservations(attack: Attack) -> None:
    tokens = []
    for _ in range(20):
        response = await attack.http.put(attack.graphql, headers=attack.bearer())
        attack.note(response)
        tokens.append(response.text)
    query = "subscription { postEvents { id } } #" + "x" * 60_000

    async def one(worker: int) -> None:
        index = attack.sent
        headers = attack.bearer(**{"x-graphql-event-stream-token": tokens[index % len(tokens)]})
        await attack.post({"query": query, "extensions": {"operationId": f"op{index}"}}, headers)

    await attack.workers(4, one)


async def fill_the_caps(attack: Attack, streams: int) -> None:
    opened = []
    try:
        for index in range(streams):
            if not attack.running():
                break
            attack.sent += 1
            query = f"subscription S{index} {{ postEvents {{ id }} }}"
            opened.append(raw_socket(attack.port, sse_request(query, attack.token, f"S{index}")))
        attack.answers[f"streams opened by one login: {len(opened)}"] += 1
        other = login(attack.base)
        reader, writer = await asyncio.open_connection("127.0.0.1", attack.port)
        writer.write(sse_request("subscription { postEvents { id } }", other))
        first = b""
        settle = time.monotonic() + 2
        while b"event:" not in first and time.monotonic() < settle:
            try:
                first += await asyncio.wait_for(reader.read(4096), settle - time.monotonic())
            except TimeoutError:
                break
        status = first.split(b" ", 2)[1].decode() if first.startswith(b"HTTP") else "none"
        refused = b"TOO_MANY_GROUPS" in first
        verdict = f"{status} {'TOO_MANY_GROUPS' if refused else 'subscribed'}"
        attack.answers[f"another user's subscription: {verdict}"] += 1
        writer.close()
    finally:
        for sock in opened:
            sock.close()


async def writes_first(attack: Attack) -> None:
    boundary = "bench"
    head = (
        "POST /graphql HTTP/1.1\r\nhost: bench\r\napollo-require-preflight: 1\r\n"
        f"content-type: multipart/form-data; boundary={boundary}\r\n"
        "content-length: 100000\r\n\r\n"
    ).encode()
    _, trickle = await asyncio.open_connection("127.0.0.1", attack.port)
    trickle.write(head + f"--{boundary}\r\n".encode())

    async def one(worker: int) -> None:
        if worker == 0:
            trickle.write(b"x" * 10)  # a slow body, never finished
            attack.sent += 1
            await asyncio.sleep(0.1)
            return
        await attack.post({"query": "mutation { streamTicket }"}, attack.bearer())

    try:
        await attack.workers(5, one)
    finally:
        trickle.close()


async def deep_pages(attack: Attack) -> None:
    async def one(worker: int) -> None:
        page = 1 + (attack.sent * 7 + worker) % 400
        query = f"{{ posts(page: {page}, perPage: 50) {{ totalPosts posts {{ id }} }} }}"
        await attack.post({"query": query}, attack.bearer())

    await attack.workers(8, one)


async def new_big_documents(attack: Attack) -> None:
    async def one(_: int) -> None:
        words = " ".join(uuid.uuid4().hex for _ in range(200))  # 6.6 KB
        query = "{ posts { posts { id title } } }\n# " + words
        await attack.post({"query": query}, attack.bearer())

    await attack.workers(2, one)


async def long_gets(attack: Attack) -> None:
    async def one(worker: int) -> None:
        size = 60_000 if worker % 2 else 70_000
        target = "/graphql?query={__typename}%23" + "x" * size
        reader, writer = await asyncio.open_connection("127.0.0.1", attack.port)
        writer.write(
            f"GET {target} HTTP/1.1\r\nhost: b\r\napollo-require-preflight: 1\r\n"
            "connection: close\r\n\r\n".encode()
        )
        try:
            answer = await asyncio.wait_for(reader.read(), 30)
        except (ConnectionResetError, TimeoutError):
            answer = b"reset"
        writer.close()
        attack.sent += 1
        status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP") else "reset"
        kind = "json" if b"application/json" in answer else "text"
        attack.answers[f"{size // 1000} KB GET: {status} {kind}"] += 1

    await attack.workers(2, one)


async def aliased_schemas(attack: Attack) -> None:
    async def one(_: int) -> None:
        await attack.post({"query": SCHEMAS})

    await attack.workers(2, one)


PADDED = [
    "{__typename}" + " " * PADDING,
    "{__typename}\n#" + "x" * PADDING,
    '{ user(id: """' + "x" * PADDING + '""") { id } }',
]
PADDED_BODIES = [orjson.dumps({"query": PADDED[i % 3] + f" #{i}"}) for i in range(6)]


async def padded(attack: Attack) -> None:
    async def one(worker: int) -> None:
        attack.sent += 1
        body = PADDED_BODIES[attack.sent % len(PADDED_BODIES)]
        headers = {"content-type": "application/json"}
        attack.note(await attack.http.post(attack.graphql, content=body, headers=headers))

    await attack.workers(3, one)


async def at_the_bound(attack: Attack) -> None:
    async def one(_: int) -> None:
        query = f"{{__typename}}\n# {uuid.uuid4().hex} " + "x" * (MAX_QUERY_BYTES - 60)
        await attack.post({"query": query})

    await attack.workers(8, one)


async def costly_batch(attack: Attack) -> None:
    async def one(_: int) -> None:
        await attack.post([{"query": PAGES} for _ in range(10)], attack.bearer())

    await attack.workers(5, one)


# Measuring.


async def cheap_queries(
    http: httpx.AsyncClient, url: str, rss: Callable[[], float | None], done: Callable[[], bool]
) -> tuple[list[float], float | None]:
    """Latencies of the cheap query sent every 20 ms until `done`, and the peak RSS."""
    latencies: list[float] = []
    peak = rss()
    while not done():
        sent = time.monotonic()
        with contextlib.suppress(httpx.TimeoutException):  # counted as the time given up after
            await http.post(url, json=CHEAP)
        latencies.append(time.monotonic() - sent)
        now = rss()
        if now is not None and (peak is None or now > peak):
            peak = now
        await asyncio.sleep(0.02)
    return latencies, peak


def _ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:8.0f}" if values else "       -"


def _mb(value: float | None) -> str:
    return f"{value:8.0f}" if value is not None else "       -"


async def measure(
    name: str, base: str, token: str, run: Callable[[Attack], Awaitable[None]], args: Any
) -> None:
    url = f"{base}/graphql"
    rss: Callable[[], float | None] = args.rss
    async with httpx.AsyncClient(timeout=30) as other, httpx.AsyncClient(timeout=60) as http:
        quiet_until = time.monotonic() + QUIET_SECONDS
        quiet, quiet_rss = await cheap_queries(
            other, url, rss, lambda: time.monotonic() > quiet_until
        )
        attack = Attack(base, token, time.monotonic() + args.seconds, args.requests, http)
        task = asyncio.create_task(run(attack))
        await asyncio.sleep(0.05)
        loud, peak = await cheap_queries(other, url, rss, task.done)
        try:
            await task
        except Exception as error:  # an attack that broke off still says what it got
            attack.answers[f"attack stopped: {type(error).__name__}"] += 1
    answers = ", ".join(f"{k} x{v}" for k, v in attack.answers.most_common(4))
    print(
        f"{name:<26}{_ms(quiet, 99)}{_ms(loud, 99)}{_ms(loud, 100)}"
        f"{_mb(quiet_rss)}{_mb(peak)}  {answers}",
        flush=True,
    )


async def run(base: str, args: Any) -> None:
    token = login(base)
    async with httpx.AsyncClient(timeout=60) as http:
        seeding = Attack(base, token, time.monotonic() + 600, 0, http)
        await create_posts(seeding, args.posts)
    streams = args.streams
    attacks: list[tuple[str, Callable[[Attack], Awaitable[None]]]] = [
        ("1 fragment fan-out", fragment_fan_out),
        ("2 float around the cost", float_cost),
        ("3 5 MB of variables", big_variables),
        ("4 slow SSE+multipart", slow_readers),
        ("5 unopened reservations", unopened_reservations),
        ("6 one login, many streams", lambda attack: fill_the_caps(attack, streams)),
        ("7 trickle + tickets", writes_first),
        ("8 deep pages", deep_pages),
        ("9 new 6.6 KB documents", new_big_documents),
        ("9 60/70 KB GETs", long_gets),
        ("9 16 aliased __schema", aliased_schemas),
        ("padded 5.5 MB", padded),
        ("at the query bound", at_the_bound),
        ("costly batch", costly_batch),
    ]
    print(
        f"{'attack':<26}{'p99 ms':>8}{'p99 ms':>8}{'max ms':>8}{'RSS MB':>8}{'RSS MB':>8}  answers"
    )
    print(f"{'':<26}{'quiet':>8}{'attack':>8}{'attack':>8}{'quiet':>8}{'peak':>8}")
    for name, attack in attacks:
        if args.only and not any(word in name for word in args.only):
            continue
        await measure(name, base, token, attack, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a server already running (RSS is then not read)")
    parser.add_argument("--seconds", type=float, default=4.0, help="each attack's length")
    parser.add_argument("--requests", type=int, default=2_000, help="each attack's most")
    parser.add_argument("--posts", type=int, default=100, help="posts created first")
    parser.add_argument("--streams", type=int, default=1_100, help="attack 6's streams")
    parser.add_argument("--only", nargs="*", help="attacks whose name holds one of these")
    args = parser.parse_args()
    server = None if args.url else Server()
    args.rss = (lambda: tree_rss_mb(server.process.pid)) if server else (lambda: None)
    try:
        asyncio.run(run(args.url or server.url, args))  # type: ignore[union-attr]
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
