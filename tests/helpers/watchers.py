"""Subscribers that read in the background, for tests with several server processes.

A `Watcher` is one `postEvents` subscription on one server, over a raw protocol client
(either subprotocol), that records every event id it receives, in arrival order, until
the socket closes. Tests then wait, with a deadline, until each has some last id, and
compare the whole list with what must have arrived: every id once, in id order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.helpers.live import IDS_ONLY, RawClient, raw_client
from tests.helpers.server import TLS, LiveServer


@dataclass(frozen=True, slots=True)
class Seen:
    id: int
    action: str
    post_id: str


class Watcher:
    def __init__(self, client: RawClient, label: str) -> None:
        self.client = client
        self.label = label
        self.events: list[Seen] = []
        self.close_code: int | None = None
        self.problem: str | None = None
        self._reader = asyncio.create_task(self._read())

    @property
    def ids(self) -> list[int]:
        return [event.id for event in self.events]

    @property
    def last_id(self) -> int:
        return self.events[-1].id if self.events else 0

    async def _read(self) -> None:
        try:
            while True:
                message = self.client.decode(await self.client.socket.recv())
                kind = message.get("type")
                if kind in ("ka", "ping", "pong"):
                    continue
                data = message.get("payload", {}).get("data") if kind in ("next", "data") else None
                if data is None:
                    self.problem = f"unexpected message {message}"
                    return
                event = data["postEvents"]
                self.events.append(Seen(int(event["id"]), event["action"], event["post"]["id"]))
        except websockets.ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else 1006

    async def stop(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def __repr__(self) -> str:
        return f"<Watcher {self.label}: {len(self.events)} events, last {self.last_id}>"


@asynccontextmanager
async def watching(
    server: LiveServer, token: str, subprotocol: str, after: int | None = None, label: str = ""
) -> AsyncIterator[Watcher]:
    """A subscription to every post event on `server`, from `after` when given."""
    async with raw_client(server, subprotocol) as client:
        ack = await client.init(token)
        assert ack["type"] == "connection_ack", ack
        variables = {} if after is None else {"after": str(after)}
        await client.subscribe("watch", IDS_ONLY, variables)
        watcher = Watcher(client, label or f"{server.port}/{subprotocol}")
        try:
            yield watcher
        finally:
            await watcher.stop()


async def open_watchers(
    stack: AsyncExitStack,
    places: Iterable[tuple[LiveServer, str]],
    token: str,
    after: int | None = None,
) -> list[Watcher]:
    return [
        await stack.enter_async_context(watching(server, token, subprotocol, after))
        for server, subprotocol in places
    ]


async def wait_until_all_have(
    watchers: list[Watcher],
    last_id: int,
    timeout: float = 30.0,
    alongside: Iterable[asyncio.Task[None]] = (),
) -> None:
    """Until every watcher has received `last_id` (or something after it).

    A failure of one of the `alongside` tasks (writers, say) is raised at once.
    """
    deadline = time.monotonic() + timeout
    while not all(watcher.last_id >= last_id for watcher in watchers):
        for task in alongside:
            if task.done() and task.exception() is not None:
                task.result()
        broken = [w for w in watchers if w.problem or w.close_code]
        if broken:
            details = [(w, w.problem, w.close_code) for w in broken]
            raise AssertionError(f"watchers ended early: {details}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not every watcher reached event {last_id}: {watchers}")
        await asyncio.sleep(0.02)


def assert_exactly_once_in_order(watchers: list[Watcher], first: int, last: int) -> None:
    """Each watcher has every id from `first` to `last`, once, in id order; nothing else."""
    expected = list(range(first, last + 1))
    for watcher in watchers:
        ids = watcher.ids
        if ids != expected:
            doubled = sorted({i for i in ids if ids.count(i) > 1})
            missing = sorted(set(expected) - set(ids))
            raise AssertionError(
                f"{watcher}: missing {missing}, doubled {doubled}, "
                f"out of order {ids != sorted(ids)}; got {ids}"
            )


def assert_per_post_order(watcher: Watcher) -> None:
    """Causal order within each post: CREATED, then UPDATEs, then maybe DELETED."""
    by_post: dict[str, list[str]] = {}
    for event in watcher.events:
        by_post.setdefault(event.post_id, []).append(event.action)
    for post_id, actions in by_post.items():
        body = actions[1:-1] if actions[-1] == "DELETED" else actions[1:]
        assert actions[0] == "CREATED", (post_id, actions)
        assert all(action == "UPDATED" for action in body), (post_id, actions)


# The operations endpoints.


def ready(server: LiveServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.url}/ready", timeout=10, verify=TLS)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def wait_until_ready_is(server: LiveServer, status: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got, body = await asyncio.to_thread(ready, server)
        if got == status:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"/ready stayed {got} {body}, expected {status}")
        await asyncio.sleep(0.1)


# Worker processes of one `gql-feed serve --workers N`, seen through /proc (Linux).


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid …": comm may hold spaces, so split after the ')'.
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def established_sockets(pid: int, port: int) -> int:
    """How many established TCP connections on local `port` process `pid` holds."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in (Path(f"/proc/{pid}/fd")).iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rpartition(":")[2], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count
