"""postEvents over the legacy graphql-ws subprotocol (subscriptions-transport-ws)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.helpers.live import (
    IDS_ONLY,
    LEGACY_WS,
    actions_filter_narrows,
    create_post,
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
    await two_users_see_every_change(live_server, LEGACY_WS)


async def test_actions_filter(live_server: LiveServer) -> None:
    await actions_filter_narrows(live_server, LEGACY_WS)


async def test_query_over_the_socket_is_data_then_complete(live_server: LiveServer) -> None:
    token, user_id = await signup(live_server)
    async with gql_session(live_server, token, LEGACY_WS) as session:
        assert await session.execute(request("{ me { id } }")) == {"me": {"id": user_id}}
    async with raw_client(live_server, LEGACY_WS) as client:
        await client.init(token)
        await client.subscribe("q", "{ me { id } }")
        assert await client.receive() == {
            "id": "q",
            "type": "data",
            "payload": {"data": {"me": {"id": user_id}}},
        }
        assert await client.receive() == {"id": "q", "type": "complete"}


async def test_ack_is_followed_by_keep_alive(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_WS_KEEPALIVE_SECONDS=str(KEEPALIVE))
    token, _ = await signup(server)
    async with raw_client(server, LEGACY_WS) as client:
        await client.send({"type": "connection_init", "payload": {"authToken": token}})
        assert await client.socket.recv() == '{"type":"connection_ack"}'
        # Each `ka` within a few periods (a generous bound for a busy machine), far
        # sooner than the 15 s default would send it.
        for _ in range(2):
            async with asyncio.timeout(KEEPALIVE_WAIT):
                assert await client.socket.recv() == '{"type":"ka"}'


async def test_request_errors_come_as_data_then_complete(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    async with gql_session(live_server, token, LEGACY_WS) as session:
        with pytest.raises(TransportQueryError) as raised:
            async for _ in session.subscribe(request("subscription { postEvents { nope } }")):
                pass
    assert raised.value.errors is not None
    assert raised.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_stop_is_answered_with_complete_and_frees_everything(
    live_server: LiveServer,
) -> None:
    token, _ = await signup(live_server)
    async with raw_client(live_server, LEGACY_WS) as client:
        await client.init(token)
        await client.subscribe("1", IDS_ONLY)
        await wait_for_values(live_server, subscriptions=1)
        await client.complete("1")
        assert await client.receive() == {"id": "1", "type": "complete"}
        await wait_for_values(live_server, subscriptions=0, groups=0)


async def test_start_with_an_id_in_use_replaces_the_operation(live_server: LiveServer) -> None:
    """As subscriptions-transport-ws's server does: the new operation takes the id."""
    token, _ = await signup(live_server)
    async with raw_client(live_server, LEGACY_WS) as client:
        await client.init(token)
        await client.subscribe("1", IDS_ONLY, {"actions": ["DELETED"]})
        await client.subscribe("1", IDS_ONLY, {"actions": ["CREATED"]})
        await wait_for_values(live_server, subscriptions=1)
        post = await create_post(live_server, token, "Replaced subscription")
        [message] = await client.events(1)
        assert message["id"] == "1"
        assert message["payload"]["data"]["postEvents"]["post"]["id"] == post["id"]


async def test_connection_terminate_closes_normally(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    async with raw_client(live_server, LEGACY_WS) as client:
        await client.init(token)
        await client.subscribe("1", IDS_ONLY)
        await client.send({"type": "connection_terminate"})
        code, _ = await client.closed()
    assert code == 1000
    await wait_until_idle(live_server)


async def test_expired_token_closes_with_4440(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    await token_expiry_closes(live_server_factory(GQL_FEED_TOKEN_TTL_SECONDS="2"), LEGACY_WS)
