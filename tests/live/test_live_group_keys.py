"""Live groups that a client cannot fragment, and the caps on how many there may be."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from typing import Any

from tests.helpers.live import (
    LEGACY_WS,
    TRANSPORT_WS,
    RawClient,
    create_post,
    raw_client,
    signup,
    wait_for_values,
    wait_until_idle,
)
from tests.helpers.server import LiveServer

FEED = """
subscription Feed($actions: [PostAction!], $withTitle: Boolean!) {
  postEvents(actions: $actions) { id action post { id title @include(if: $withTitle) } }
}
"""


def disguised(n: int) -> tuple[str, dict[str, Any], str | None]:
    """The same operation and values as subscription `n` of many, written differently."""
    rng = random.Random(n)
    text = FEED
    if n % 2:
        text = text.replace(" {", "  {\n\t").replace("}", " ,}")
    if n % 3:
        text = f"# subscriber {n}\n" + text.replace("id action", f"id # {n}\n action")
    if n % 5 == 0:
        # Another operation beside it, and the name given to pick this one.
        text += "\nquery Other { __typename }\n"
    variables: dict[str, Any] = {
        "withTitle": True,
        # A single value for a list is coerced into a list of one.
        "actions": ["CREATED"] if n % 4 else "CREATED",
        f"junk{n}": {"n": n},
        "undeclared": n,
    }
    items = list(variables.items())
    rng.shuffle(items)
    name = "Feed" if n % 5 == 0 or n % 7 == 0 else None
    return text, dict(items), name


async def test_two_hundred_disguises_of_one_subscription_share_one_group(
    live_server: LiveServer,
) -> None:
    await wait_until_idle(live_server)
    token, _ = await signup(live_server)
    subscribers, per_connection = 200, 50
    async with AsyncExitStack() as stack:
        clients: list[RawClient] = []
        for c in range(subscribers // per_connection):
            client = await stack.enter_async_context(
                raw_client(live_server, TRANSPORT_WS if c % 2 else LEGACY_WS)
            )
            assert (await client.init(token))["type"] == "connection_ack"
            clients.append(client)
        start_types = {TRANSPORT_WS: "subscribe", LEGACY_WS: "start"}
        for n in range(subscribers):
            client = clients[n // per_connection]
            text, variables, name = disguised(n)
            payload: dict[str, Any] = {"query": text, "variables": variables}
            if name is not None:
                payload["operationName"] = name
            start = start_types[str(client.socket.subprotocol)]
            await client.send({"id": str(n), "type": start, "payload": payload})
        await wait_for_values(live_server, subscriptions=subscribers, groups=1)

        post = await create_post(live_server, token, "One group for all")
        received = [
            message for client in clients for message in await client.events(per_connection, 30)
        ]
        assert sorted(int(message["id"]) for message in received) == list(range(subscribers))
        payloads = [message["payload"] for message in received]
        assert all(payload == payloads[0] for payload in payloads)
        event = payloads[0]["data"]["postEvents"]
        assert event["action"] == "CREATED"
        assert event["post"] == {"id": post["id"], "title": "One group for all"}

        # What does change the events still makes a group of its own.
        other = clients[0]
        text, variables, _ = disguised(1)
        await other.subscribe("titles-off", text, {**variables, "withTitle": False})
        await wait_for_values(live_server, subscriptions=subscribers + 1, groups=2)
    await wait_until_idle(live_server)


async def refusal(client: RawClient, op_id: str) -> dict[str, Any]:
    """The error answering subscription `op_id`, in either subprotocol's framing."""
    message = await client.receive()
    assert message["id"] == op_id, message
    if message["type"] == "error":
        errors: list[dict[str, Any]] = message["payload"]
    else:  # legacy: a data message with the errors, then complete
        assert message["type"] == "data", message
        errors = message["payload"]["errors"]
        assert await client.receive() == {"id": op_id, "type": "complete"}
    assert len(errors) == 1, errors
    return errors[0]


def distinct(n: int) -> str:
    """A subscription that forms a group of its own (an alias makes another document)."""
    return f"subscription {{ e{n}: postEvents {{ post {{ id }} }} }}"


async def test_groups_per_connection_are_capped(
    live_server_factory: Any,
) -> None:
    server: LiveServer = await asyncio.to_thread(
        live_server_factory, GQL_FEED_WS_MAX_GROUPS_PER_CONNECTION="2"
    )
    token, _ = await signup(server)
    for subprotocol in (TRANSPORT_WS, LEGACY_WS):
        async with raw_client(server, subprotocol) as client:
            await client.init(token)
            await client.subscribe("a", distinct(0))
            await client.subscribe("b", distinct(1))
            await wait_for_values(server, subscriptions=2, groups=2)
            await client.subscribe("c", distinct(2))
            error = await refusal(client, "c")
            assert error["extensions"]["code"] == "TOO_MANY_GROUPS"
            assert "At most 2 distinct subscriptions per connection" in error["message"]
            # More subscribers in groups it holds are fine, and the socket stays open.
            await client.subscribe("a2", distinct(0))
            await client.subscribe("b2", distinct(1))
            await wait_for_values(server, subscriptions=4, groups=2)
            # Another connection may hold groups of its own.
            async with raw_client(server, subprotocol) as neighbour:
                await neighbour.init(token)
                await neighbour.subscribe("c", distinct(2))
                await wait_for_values(server, subscriptions=5, groups=3)
        await wait_until_idle(server)


async def test_groups_per_process_are_capped(live_server_factory: Any) -> None:
    server: LiveServer = await asyncio.to_thread(live_server_factory, GQL_FEED_LIVE_MAX_GROUPS="3")
    token, _ = await signup(server)
    async with raw_client(server) as first, raw_client(server) as second:
        await first.init(token)
        await second.init(token)
        for n in range(3):
            await first.subscribe(str(n), distinct(n))
        await wait_for_values(server, subscriptions=3, groups=3)
        await second.subscribe("new", distinct(3))
        error = await refusal(second, "new")
        assert error["extensions"]["code"] == "TOO_MANY_GROUPS"
        assert "already runs 3 distinct subscriptions" in error["message"]
        # Joining a group that exists needs no new one.
        await second.subscribe("shared", distinct(2))
        await wait_for_values(server, subscriptions=4, groups=3)
        # Once a group ends, there is room again.
        await first.complete("0")
        await wait_for_values(server, subscriptions=3, groups=2)
        await second.subscribe("new-again", distinct(3))
        await wait_for_values(server, subscriptions=4, groups=3)
        post = await create_post(server, token, "Capped")
        events = {message["id"]: message["payload"]["data"] for message in await second.events(2)}
        assert events == {
            "shared": {"e2": {"post": {"id": post["id"]}}},
            "new-again": {"e3": {"post": {"id": post["id"]}}},
        }
    await wait_until_idle(server)
