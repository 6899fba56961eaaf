"""Resumes racing writes through two servers, with the CPU deliberately contended.

Shared by the short form in the suite (`tests/live/test_resume_stress.py`) and the long form
in `bench/resume_stress.py`. One reader keeps resuming with `postEvents(after: <last id
it got>)`, on server A, then B, then A…, each time while writers make changes through
both servers, so the subscribe, the replay from the log and the switch to live
delivery all race the bus. Half of the rounds drop the reader mid-stream; the others
wait until the writes are done and the reader has every event, or `settle` seconds. The
servers poll the log only every minute, so an event that does not come within `settle`
is counted as lost: the poll would only hide it. Busy processes (pure Python loops,
one per core by default) compete with the servers for the CPU all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from tests.helpers.live import IDS_ONLY, SUBPROTOCOLS, raw_client
from tests.helpers.server import LiveServer, png_bytes
from tests.helpers.watchers import Watcher

# The log poll is the safety net for events the bus lost; slowed down so that nothing
# the stress sees came from it.
STRESS_ENV = {"GQL_FEED_EVENT_POLL_SECONDS": "60"}

CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }"
UPDATE = "mutation($id: ID!, $t: String!) { updatePost(id: $id, input: {title: $t}) { id } }"
DELETE = "mutation($id: ID!) { deletePost(id: $id) }"


@dataclass
class StressResult:
    resumes: int = 0
    writes: int = 0
    lost: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    out_of_order: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Summed over the servers' /metrics: how the events travelled.
    bus: dict[str, float] = field(default_factory=dict)

    def line(self, label: str) -> str:
        return (
            f"{label}: {self.resumes} resumes x {self.writes} writes in {self.seconds:.1f}s, "
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, "
            f"out of order {self.out_of_order}, problems {len(self.problems)}; "
            + ", ".join(f"{name} {value:g}" for name, value in self.bus.items())
        )


@contextlib.contextmanager
def busy_cpu(processes: int) -> Iterator[None]:
    """`processes` pure-Python busy loops beside the servers, for as long as the block runs."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


class Writers:
    """Changes through both servers: creates, edits and deletes of one user's posts."""

    def __init__(self, servers: tuple[LiveServer, ...], token: str, rng: random.Random) -> None:
        self.servers = servers
        self.headers = {"authorization": f"Bearer {token}", "apollo-require-preflight": "true"}
        self.rng = rng
        self.posts: list[str] = []
        self.made = 0  # events committed: one per successful change
        self.image = png_bytes()

    async def write(self, http: httpx.AsyncClient, count: int) -> None:
        for _ in range(count):
            server = self.rng.choice(self.servers)
            roll = self.rng.random()
            if not self.posts or roll < 0.4:
                self.posts.append(await self._create(http, server))
            elif roll < 0.8:
                # Taken out while it changes, so that the other writer cannot delete it meanwhile.
                post_id = self.posts.pop(self.rng.randrange(len(self.posts)))
                await self._call(http, server, UPDATE, {"id": post_id, "t": f"Edit {self.made}"})
                self.posts.append(post_id)
            else:
                post_id = self.posts.pop(self.rng.randrange(len(self.posts)))
                await self._call(http, server, DELETE, {"id": post_id})
            self.made += 1

    async def _create(self, http: httpx.AsyncClient, server: LiveServer) -> str:
        operations = {
            "query": CREATE,
            "variables": {"i": {"title": "Stress post", "content": "Racing", "image": None}},
        }
        response = await http.post(
            server.graphql_url,
            headers=self.headers,
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.i.image"]}),
            },
            files={"0": ("dot.png", self.image, "image/png")},
        )
        body = response.json()
        if "errors" in body:
            raise AssertionError(body)
        post_id: str = body["data"]["createPost"]["id"]
        return post_id

    async def _call(
        self, http: httpx.AsyncClient, server: LiveServer, query: str, variables: dict[str, str]
    ) -> None:
        response = await http.post(
            server.graphql_url, headers=self.headers, json={"query": query, "variables": variables}
        )
        body = response.json()
        if "errors" in body:
            raise AssertionError(body)


async def resume_stress(
    servers: tuple[LiveServer, LiveServer],
    token: str,
    rounds: int,
    writes_per_round: int,
    settle: float = 10.0,
    seed: int = 13,
) -> StressResult:
    """Run `rounds` resumes, each racing `writes_per_round` changes by two writers."""
    rng = random.Random(seed)
    result = StressResult()
    started = time.monotonic()
    writers = Writers(servers, token, rng)
    last_seen = 0
    async with httpx.AsyncClient(timeout=60) as http:
        for number in range(rounds):
            server = servers[number % 2]
            subprotocol = rng.choice(SUBPROTOCOLS)
            drop_early = number % 2 == 0 and number != rounds - 1
            after = last_seen
            async with raw_client(server, subprotocol) as client:
                ack = await client.init(token)
                if ack.get("type") != "connection_ack":
                    raise AssertionError(ack)
                await client.subscribe("stress", IDS_ONLY, {"after": str(after)})
                watcher = Watcher(client, f"round {number} on {server.port}/{subprotocol}")
                half = writes_per_round // 2
                writing = asyncio.gather(
                    writers.write(http, half), writers.write(http, writes_per_round - half)
                )
                try:
                    if drop_early:
                        await asyncio.sleep(rng.uniform(0.0, 0.3))
                    else:
                        await writing
                        deadline = time.monotonic() + settle
                        while watcher.last_id < writers.made and time.monotonic() < deadline:
                            if watcher.problem or watcher.close_code:
                                break
                            await asyncio.sleep(0.02)
                finally:
                    await watcher.stop()
            await writing
            result.resumes += 1
            if watcher.problem or (watcher.close_code not in (None, 1000)):
                result.problems.append(f"{watcher}: {watcher.problem} {watcher.close_code}")
            tally(result, after, watcher.ids, None if drop_early else writers.made)
            last_seen = watcher.last_id or after
    result.writes = writers.made
    result.seconds = time.monotonic() - started
    result.bus = await bus_figures(servers)
    return result


BUS_FIGURES = {
    "gql_feed_bus_publish_failures_total": "publish failures",
    "gql_feed_bus_reconnects_total": "bus reconnects",
    "gql_feed_events_caught_up_total": "events read from the log by a hub",
}


async def bus_figures(servers: tuple[LiveServer, ...]) -> dict[str, float]:
    totals = dict.fromkeys(BUS_FIGURES.values(), 0.0)
    async with httpx.AsyncClient(timeout=30) as http:
        for server in servers:
            text = (await http.get(f"{server.url}/metrics")).text
            for line in text.splitlines():
                name, _, value = line.partition(" ")
                if name in BUS_FIGURES:
                    totals[BUS_FIGURES[name]] += float(value)
    return totals


def tally(result: StressResult, after: int, ids: list[int], complete_upto: int | None) -> None:
    """Count what one resumed subscription got wrong: ids twice, skipped, or out of order.

    `complete_upto`: the round waited for every event up to this id; those missing are lost.
    """
    got: set[int] = set()
    previous = after
    for event_id in ids:
        if event_id <= after or event_id in got:
            result.duplicated.append(event_id)
        elif event_id < previous:
            result.out_of_order += 1
        elif event_id > previous + 1:
            result.lost.extend(i for i in range(previous + 1, event_id) if i not in got)
        got.add(event_id)
        previous = max(previous, event_id)
    if complete_upto is not None:
        result.lost.extend(range(previous + 1, complete_upto + 1))
