"""Another client's cheap query, and the server's memory, while the live surfaces are abused.

A sibling of abuse.py for the streams and the pacing. Against one fresh server with the
default per-user caps, each attack runs while `{ __typename }` is sent every 20 ms from
another client, and the server's RSS is read every 20 ms too; a first row measures the same
with no attack. The attacks:

- slow readers: four streams (two SSE, two multipart) subscribed with 30 aliases of a
  post's `content`, never read, while a post is updated 150 times with 4.9 kB of content;
- reservations: one login PUTs 20 single-connection reservations, opens none, and POSTs
  30 operations of 60 kB to each;
- one login's groups: one login opens 60 SSE streams with distinct operation names;
- trickled bodies: 8 anonymous multipart requests sending a byte every half second for 5 s;
- deep pages: 8 clients reading distinct deep pages of `posts(page:)` on 200,000 posts.

Prints, per attack, the answers it got, the cheap query's p50, p99 and max, and the RSS
before and at its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, login, percentile

# The shipped per-user caps (common.Server raises them for the fan-out benches).
DEFAULT_CAPS = {
    "GQL_FEED_LIVE_MAX_STREAMS_PER_USER": "100",
    "GQL_FEED_LIVE_MAX_SUBSCRIPTIONS_PER_USER": "500",
    "GQL_FEED_LIVE_MAX_GROUPS_PER_USER": "50",
}
ALIASES = " ".join(f"c{n}: content" for n in range(30))
SSE = "text/event-stream"
MULTIPART = 'multipart/mixed;subscriptionSpec="1.0", application/json'
BIG_TABLE = 200_000

Attack = Callable[["Scene"], Awaitable[list[object]]]


class Scene:
    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.url = f"{server.url}/graphql"
        self.token = token
        self.auth = {"authorization": f"Bearer {token}"}
        self.post_id = ""


def stalled(port: int, token: str, accept: str, name: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    body = json.dumps({"query": f"subscription {name} {{ postEvents {{ post {{ {ALIASES} }} }} }}"})
    sock.sendall(
        (
            f"POST /graphql HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nAuthorization: Bearer "
            f"{token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            + body
        ).encode()
    )
    return sock


async def slow_readers(scene: Scene) -> list[object]:
    reader = login(scene.server.url)
    socks = [
        stalled(scene.server.port, reader, accept, f"S{n}")
        for n, accept in enumerate((SSE, SSE, MULTIPART, MULTIPART))
    ]
    await asyncio.sleep(1)
    statuses: list[object] = []
    async with httpx.AsyncClient(timeout=60) as http:
        for n in range(150):
            body = {
                "query": "mutation($id: ID!, $c: String!) "
                "{ updatePost(id: $id, input: {content: $c}) { id } }",
                "variables": {"id": scene.post_id, "c": f"{n:05d}" + "y" * 4_895},
            }
            statuses.append((await http.post(scene.url, json=body, headers=scene.auth)).status_code)
    for sock in socks:
        sock.close()
    return statuses


async def reservations(scene: Scene) -> list[object]:
    query = "subscription { postEvents { id } } #" + "x" * 60_000
    answers: list[object] = []
    async with httpx.AsyncClient(timeout=60) as http:
        tokens = []
        for _ in range(20):
            response = await http.put(scene.url, headers=scene.auth)
            answers.append(f"PUT {response.status_code}")
            if response.status_code == 201:
                tokens.append(response.text)
        for n in range(30):
            responses = await asyncio.gather(
                *(
                    http.post(
                        scene.url,
                        json={"query": query, "extensions": {"operationId": f"o{n}"}},
                        headers={**scene.auth, "x-graphql-event-stream-token": stream},
                    )
                    for stream in tokens
                )
            )
            answers += [f"POST {response.status_code}" for response in responses]
    return answers


def live_groups(url: str) -> int:
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("gql_feed_live_groups "):
            return int(float(line.split()[1]))
    return -1


async def one_login_groups(scene: Scene) -> list[object]:
    answers: list[object] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http:
        streams = []
        for n in range(60):
            body = {"query": f"subscription G{n} {{ postEvents {{ id }} }}"}
            request = http.build_request(
                "POST", scene.url, json=body, headers={**scene.auth, "accept": SSE}
            )
            response = await http.send(request, stream=True)
            streams.append(response)
            answers.append(response.status_code)
        answers.append(f"groups held {live_groups(scene.server.url)}")
        victim = login(scene.server.url)
        body = {"query": "subscription Victim { postEvents { id } }"}
        headers = {"authorization": f"Bearer {victim}", "accept": SSE}
        async with http.stream("POST", scene.url, json=body, headers=headers) as response:
            await asyncio.sleep(0.5)
            answers.append(f"victim {response.status_code}, groups {live_groups(scene.server.url)}")
        for response in streams:
            await response.aclose()
    return answers


async def trickled_bodies(scene: Scene) -> list[object]:
    async def one() -> str:
        _, writer = await asyncio.open_connection("127.0.0.1", scene.server.port)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\napollo-require-preflight: 1\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
        )
        for _ in range(10):
            await asyncio.sleep(0.5)
            writer.write(b"x")
        writer.close()
        return "trickled 5 s"

    return list(await asyncio.gather(*(one() for _ in range(8))))


async def deep_pages(scene: Scene) -> list[object]:
    query = "query($p: Int!) { posts(page: $p, perPage: 50) { totalPosts posts { id } } }"
    answers: list[object] = []
    async with httpx.AsyncClient(timeout=60) as http:

        async def reader(first: int) -> None:
            for page in range(first, first + 40, 8):
                body = {"query": query, "variables": {"p": page}}
                answer = (await http.post(scene.url, json=body, headers=scene.auth)).json()
                code = answer["errors"][0]["extensions"]["code"] if "errors" in answer else "ok"
                answers.append(code)

        await asyncio.gather(*(reader(start) for start in (10, 60, 110, 160, 190, 200, 300, 4000)))
    return answers


def fill(folder: Path) -> None:
    with sqlite3.connect(folder / "feed.db", timeout=30) as connection:
        connection.executemany(
            "INSERT INTO posts (title, content, image_name, creator_id, created_at, updated_at)"
            " VALUES (?, 'Some content', 'x.png', 1, '2026-12-01 00:00:00', '2026-12-01 00:00:00')",
            ((f"Post {n}",) for n in range(BIG_TABLE)),
        )


async def no_attack(scene: Scene) -> list[object]:
    await asyncio.sleep(3)
    return []


async def measure(scene: Scene, name: str, attack: Attack) -> None:
    latencies: list[float] = []
    before = scene.server.rss_mb()
    peak = before
    async with httpx.AsyncClient(timeout=120) as other:
        started = time.monotonic()
        attacking = asyncio.create_task(attack(scene))
        while not attacking.done():
            sent = time.monotonic()
            await other.post(scene.url, json={"query": "{ __typename }"})
            latencies.append(time.monotonic() - sent)
            peak = max(peak, scene.server.rss_mb())
            await asyncio.sleep(0.02)
        answers = Counter(await attacking)
        took = time.monotonic() - started
    print(
        f"{name:>16}: {dict(answers)} in {took:.1f} s; cheap query p50 "
        f"{percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms; RSS {before:.0f} -> peak {peak:.0f} MB",
        flush=True,
    )


async def run(server: Server) -> None:
    scene = Scene(server, login(server.url))
    async with httpx.AsyncClient(timeout=60) as http:
        data = {
            "operations": json.dumps(
                {
                    "query": "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
                    "variables": {"i": {"title": "Big post", "content": "x" * 10, "image": None}},
                }
            ),
            "map": json.dumps({"0": ["variables.i.image"]}),
        }
        from common import PNG

        answer = await http.post(
            scene.url,
            data=data,
            files={"0": ("dot.png", PNG, "image/png")},
            headers={**scene.auth, "apollo-require-preflight": "1"},
        )
        scene.post_id = answer.json()["data"]["createPost"]["id"]
    for name, attack in (
        ("no attack", no_attack),
        ("slow readers", slow_readers),
        ("reservations", reservations),
        ("one login groups", one_login_groups),
        ("trickled bodies", trickled_bodies),
    ):
        await measure(scene, name, attack)
    fill(server.folder)
    await measure(scene, "no attack, 200k", no_attack)
    await measure(scene, "deep pages", deep_pages)


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    server = Server(DEFAULT_CAPS)
    try:
        asyncio.run(run(server))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
