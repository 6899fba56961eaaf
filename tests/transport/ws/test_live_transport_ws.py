"""postEvents over graphql-transport-ws, with the gql client and a raw one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.helpers.live import (
    IDS_ONLY,
    TRANSPORT_WS,
    actions_filter_narrows,
    gql_session,
    raw_client,
    request,
    signup,
    token_expiry_closes,
    two_users_see_every_change,
    wait_for_values,
    wait_until_idle,
)
from tests.helpers.server import LiveServer

# The keep-alive period these tests set, and how long a ping may take to come: a few
# periods, generous for a busy machine, yet far below the 15 s default.
KEEPALIVE = 0.3
KEEPALIVE_WAIT = KEEPALIVE * 10


async def test_two_users_see_created_updated_deleted_in_order(live_server: LiveServer) -> None:
    await two_users_see_every_change(live_server, TRANSPORT_WS)


async def test_actions_filter(live_server: LiveServer) -> None:
    await actions_filter_narrows(live_server, TRANSPORT_WS)


async def test_query_and_mutation_over_the_socket(live_server: LiveServer) -> None:
    token, user_id = await signup(live_server)
    async with gql_session(live_server, token, TRANSPORT_WS) as session:
        me = await session.execute(request("query { me { id name } }"))
        changed = await session.execute(
            request("mutation($s: String!) { updateStatus(status: $s) { id status } }", s="Live!")
        )
    assert me == {"me": {"id": user_id, "name": "Tester"}}
    assert changed == {"updateStatus": {"id": user_id, "status": "Live!"}}


async def test_raw_frames_are_text_with_next_then_complete(live_server: LiveServer) -> None:
    token, user_id = await signup(live_server)
    async with raw_client(live_server) as client:
        assert await client.init(token) == {"type": "connection_ack"}
        await client.send({"id": "q", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        assert await client.receive() == {
            "id": "q",
            "type": "next",
            "payload": {"data": {"me": {"id": user_id}}},
        }
        assert await client.receive() == {"id": "q", "type": "complete"}


async def test_validation_errors_come_as_one_error_message(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    async with gql_session(live_server, token, TRANSPORT_WS) as session:
        with pytest.raises(TransportQueryError) as raised:
            async for _ in session.subscribe(request("subscription { postEvents { nope } }")):
                pass
    assert raised.value.errors is not None
    assert raised.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_ping_is_answered_with_pong(live_server: LiveServer) -> None:
    async with raw_client(live_server) as client:
        await client.send({"type": "ping", "payload": {"at": 1}})
        assert await client.socket.recv() == '{"type":"pong","payload":{"at":1}}'


async def test_server_pings_every_keepalive_period(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_WS_KEEPALIVE_SECONDS=str(KEEPALIVE))
    token, _ = await signup(server)
    async with raw_client(server) as client:
        await client.init(token)
        # Each ping within a few periods (a generous bound for a busy machine), far
        # sooner than the 15 s default would send it.
        async with asyncio.timeout(KEEPALIVE_WAIT):
            assert await client.socket.recv() == '{"type":"ping"}'
        await client.send({"type": "pong"})
        async with asyncio.timeout(KEEPALIVE_WAIT):
            assert await client.socket.recv() == '{"type":"ping"}'


async def test_unsubscribing_frees_the_subscription(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    async with raw_client(live_server) as client:
        await client.init(token)
        await client.subscribe("a", IDS_ONLY)
        await client.subscribe("b", IDS_ONLY, {"actions": ["DELETED"]})
        await client.complete("a")
        await client.complete("b")
        await client.complete("never-started")
        values = await wait_for_values(live_server, subscriptions=0, connections=1)
        assert values["gql_feed_live_groups"] == 0
    await wait_until_idle(live_server)


async def test_expired_token_closes_with_4440(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    await token_expiry_closes(live_server_factory(GQL_FEED_TOKEN_TTL_SECONDS="2"), TRANSPORT_WS)
