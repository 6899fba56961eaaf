"""Grouped fan-out: one execution per group per event, each subscriber gets its own shape."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from tests.helpers.live import (
    IDS_ONLY,
    LEGACY_WS,
    POST_EVENTS,
    TRANSPORT_WS,
    collect,
    create_post,
    delete_post,
    gql_session,
    raw_client,
    signup,
    update_post,
    wait_for_subscriptions,
    wait_for_values,
    wait_until_idle,
)
from tests.helpers.server import LiveServer

WITH_EMAIL = """
subscription Mine { postEvents { id action post { id creator { id email } } } }
"""
TITLES = "subscription Titles { postEvents { action post { title } } }"


async def test_each_subscriber_gets_what_its_own_operation_asks(live_server: LiveServer) -> None:
    """Different selections, filters, users and both subprotocols, on one server.

    The gauge shows the grouping: the same text and variables share a group whatever
    the subprotocol or user, unless the operation selects a viewer-dependent field.
    """
    await wait_until_idle(live_server)
    alice, alice_id = await signup(live_server)
    bob, _ = await signup(live_server)
    plans: list[tuple[str, str, str, int, dict[str, Any]]] = [
        # (name, token, subprotocol, events expected, query and variables)
        ("full-tws", alice, TRANSPORT_WS, 4, {"query": POST_EVENTS}),
        ("full-legacy", bob, LEGACY_WS, 4, {"query": POST_EVENTS}),
        ("updates", bob, LEGACY_WS, 1, {"query": IDS_ONLY, "actions": ["UPDATED"]}),
        (
            "no-updates",
            alice,
            TRANSPORT_WS,
            3,
            {"query": IDS_ONLY, "actions": ["CREATED", "DELETED"]},
        ),
        ("titles", bob, TRANSPORT_WS, 4, {"query": TITLES}),
        ("email-alice", alice, TRANSPORT_WS, 4, {"query": WITH_EMAIL}),
        ("email-bob", bob, LEGACY_WS, 4, {"query": WITH_EMAIL}),
    ]
    async with AsyncExitStack() as stack:
        tasks = {}
        for name, token, subprotocol, count, spec in plans:
            session = await stack.enter_async_context(gql_session(live_server, token, subprotocol))
            variables = {k: v for k, v in spec.items() if k != "query"}
            tasks[name] = asyncio.create_task(collect(session, spec["query"], count, **variables))
        await wait_for_subscriptions(live_server, len(plans))
        # full-tws + full-legacy share; the email ones are split by viewer.
        await wait_for_values(live_server, groups=6)

        post = await create_post(live_server, alice, "Grouped post", "Grouped content")
        await update_post(live_server, alice, post["id"], "Grouped post, edited")
        await delete_post(live_server, alice, post["id"])
        sentinel = await create_post(live_server, alice, "Grouped sentinel")
        got = dict(
            zip(tasks, await asyncio.wait_for(asyncio.gather(*tasks.values()), 30), strict=True)
        )

    first_id = int(got["full-tws"][0]["id"])
    ids = [str(first_id + n) for n in range(4)]
    assert got["full-tws"] == got["full-legacy"]
    assert [e["id"] for e in got["full-tws"]] == ids
    assert set(got["full-tws"][0]) == {"id", "action", "occurredAt", "post"}
    assert got["full-tws"][0]["post"]["creator"] == {"id": alice_id, "name": "Tester"}
    assert got["updates"] == [
        {"id": ids[1], "action": "UPDATED", "post": {"id": post["id"]}},
    ]
    assert got["no-updates"] == [
        {"id": ids[0], "action": "CREATED", "post": {"id": post["id"]}},
        {"id": ids[2], "action": "DELETED", "post": {"id": post["id"]}},
        {"id": ids[3], "action": "CREATED", "post": {"id": sentinel["id"]}},
    ]
    assert got["titles"] == [
        {"action": "CREATED", "post": {"title": "Grouped post"}},
        {"action": "UPDATED", "post": {"title": "Grouped post, edited"}},
        {"action": "DELETED", "post": {"title": "Grouped post, edited"}},
        {"action": "CREATED", "post": {"title": "Grouped sentinel"}},
    ]
    for name in ("email-alice", "email-bob"):
        assert [e["id"] for e in got[name]] == ids
        # Events carry no email (not even for the author's own view): never leaked.
        assert all(e["post"]["creator"] == {"id": alice_id, "email": None} for e in got[name])
    await wait_until_idle(live_server)


async def test_two_hundred_subscribers_receive_a_burst_in_order(live_server: LiveServer) -> None:
    await wait_until_idle(live_server)
    # Four logins: one may hold at most GQL_FEED_LIVE_MAX_STREAMS_PER_USER (100) streams.
    tokens = [(await signup(live_server))[0] for _ in range(4)]
    token = tokens[0]
    subscribers, burst = 200, 20
    async with AsyncExitStack() as stack:
        tasks = []
        for n in range(subscribers):
            subprotocol = TRANSPORT_WS if n % 2 else LEGACY_WS
            session = await stack.enter_async_context(
                gql_session(live_server, tokens[n % 4], subprotocol)
            )
            tasks.append(asyncio.create_task(collect(session, IDS_ONLY, burst)))
        await wait_for_subscriptions(live_server, subscribers)
        posts = await asyncio.gather(
            *(create_post(live_server, token, f"Burst post {n}") for n in range(burst))
        )
        results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    created = {post["id"] for post in posts}
    expected = results[0]
    ids = [int(event["id"]) for event in expected]
    assert ids == list(range(ids[0], ids[0] + burst))
    assert {event["post"]["id"] for event in expected} == created
    assert all(result == expected for result in results)
    await wait_until_idle(live_server)


async def test_opening_and_closing_many_subscriptions_leaves_nothing(
    live_server: LiveServer,
) -> None:
    await wait_until_idle(live_server)
    token, _ = await signup(live_server)
    for round_ in range(3):
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    raw_client(live_server, TRANSPORT_WS if n % 2 else LEGACY_WS)
                )
                for n in range(10)
            ]
            for client in clients:
                await client.init(token)
                for op in range(10):
                    actions = [["CREATED"], ["UPDATED"], None][op % 3]
                    await client.subscribe(f"{round_}-{op}", IDS_ONLY, {"actions": actions})
            await wait_for_values(live_server, connections=10, subscriptions=100, groups=3)
            # Half end by unsubscribing, the rest by dropping the socket.
            for client in clients:
                for op in range(5):
                    await client.complete(f"{round_}-{op}")
            await wait_for_values(live_server, subscriptions=50)
        await wait_until_idle(live_server)
