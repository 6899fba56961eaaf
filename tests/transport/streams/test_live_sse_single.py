"""GraphQL over SSE in single-connection mode against a real server: a reservation, one
stream, operations POSTed to it and stopped by DELETE, and every refusal with its code.
The real graphql-sse client in this mode runs in tests/clients/test_stream_clients.py; the
reservation and the operations on two processes in tests/app/test_scale_out.py."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from redis.asyncio import Redis

from tests.helpers.live import create_post, signup, wait_for_values, wait_until_idle
from tests.helpers.server import LiveServer
from tests.helpers.services import redis_url, unique_channel
from tests.helpers.streams import (
    EVENTS,
    SSE,
    TOKEN_HEADER,
    SseStream,
    code_of,
    result_of,
    single,
    stream_ticket,
)

CREATED = "subscription { postEvents(actions: [CREATED]) { id action post { id title } } }"


async def test_operations_share_one_stream_and_delete_stops_one(
    live_server: LiveServer,
) -> None:
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    async with single(reader) as client:
        reserved = await client.reserve(live_server)
        assert reserved.status_code == 201
        assert reserved.headers["content-type"].startswith("text/plain")
        async with client.stream(live_server) as stream:
            assert stream.response.status_code == 200
            assert stream.response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert (await client.start(live_server, "all")).status_code == 202
            assert (await client.start(live_server, "created", CREATED)).status_code == 202
            await wait_for_values(live_server, subscriptions=2)
            post = await create_post(live_server, writer, "One stream")
            results = dict([result_of(await stream.next()), result_of(await stream.next())])
            assert set(results) == {"all", "created"}
            assert results["all"]["post"] == {
                "id": post["id"],
                "title": "One stream",
                "creator": {"name": "Tester"},
            }
            assert results["created"]["id"] == results["all"]["id"]

            stopped = await client.stop(live_server, "all")
            assert stopped.status_code == 200
            complete = await stream.next()
            assert (complete.event, complete.json()) == ("complete", {"id": "all"})
            await wait_for_values(live_server, subscriptions=1)
            second = await create_post(live_server, writer, "Only one left")
            operation_id, event = result_of(await stream.next())
            assert (operation_id, event["post"]["id"]) == ("created", second["id"])
            # The id is free again once stopped.
            assert (await client.start(live_server, "all")).status_code == 202
            await wait_for_values(live_server, subscriptions=2)
    await wait_until_idle(live_server)


async def test_an_operation_sent_before_the_stream_opens_waits_for_it(
    live_server: LiveServer,
) -> None:
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    async with single(reader) as client:
        await client.reserve(live_server)
        assert (await client.start(live_server, "early")).status_code == 202
        async with client.stream(live_server) as stream:
            await wait_for_values(live_server, subscriptions=1)
            post = await create_post(live_server, writer, "Waited for")
            operation_id, event = result_of(await stream.next())
            assert (operation_id, event["post"]["id"]) == ("early", post["id"])
    await wait_until_idle(live_server)


async def test_an_operation_refused_once_running_ends_with_its_errors(
    live_server: LiveServer,
) -> None:
    """A resume point the log does not hold is found out by the stream's process: the
    operation gets its errors and its complete there, and the others go on."""
    reader, _ = await signup(live_server)
    async with single(reader) as client:
        await client.reserve(live_server)
        async with client.stream(live_server) as stream:
            assert (await client.start(live_server, "live")).status_code == 202
            late = 'subscription { postEvents(after: "999999") { id } }'
            assert (await client.start(live_server, "late", late)).status_code == 202
            refused = await stream.next()
            assert refused.event == "next"
            data = refused.json()
            assert data["id"] == "late"
            assert data["payload"]["errors"][0]["extensions"]["code"] == "EVENT_LOG_EXPIRED"
            complete = await stream.next()
            assert (complete.event, complete.json()) == ("complete", {"id": "late"})
            await wait_for_values(live_server, subscriptions=1)
            # Its id is free again.
            assert (await client.start(live_server, "late")).status_code == 202
    await wait_until_idle(live_server)


async def test_refusals_are_coded(live_server: LiveServer) -> None:
    reader, _ = await signup(live_server)
    other, _ = await signup(live_server)
    async with single(reader) as client:
        # Unknown token: for operations, for the stream, for DELETE.
        client.stream_token = "no-such-reservation"
        unknown = await client.start(live_server, "a")
        assert (unknown.status_code, code_of(unknown)) == (404, "NOT_FOUND")
        async with client.stream(live_server) as stream:
            assert stream.response.status_code == 404
            assert code_of(await _read(stream.response)) == "NOT_FOUND"
        assert (await client.stop(live_server, "a")).status_code == 404

        anonymous = await client.http.put(live_server.graphql_url)
        assert (anonymous.status_code, code_of(anonymous)) == (401, "UNAUTHENTICATED")
        await client.reserve(live_server)
        no_login = await client.http.post(
            live_server.graphql_url,
            json={"query": EVENTS, "extensions": {"operationId": "a"}},
            headers={TOKEN_HEADER: client.stream_token},
        )
        assert (no_login.status_code, code_of(no_login)) == (401, "UNAUTHENTICATED")
        # A reservation is its owner's: another login cannot use it.
        async with single(other) as thief:
            thief.stream_token = client.stream_token
            stolen = await thief.start(live_server, "a")
            assert (stolen.status_code, code_of(stolen)) == (404, "NOT_FOUND")

        missing_id = await client.start(live_server, None)
        assert (missing_id.status_code, code_of(missing_id)) == (400, "BAD_REQUEST")
        invalid = await client.start(live_server, "a", "subscription { nope }")
        assert (invalid.status_code, code_of(invalid)) == (400, "GRAPHQL_VALIDATION_FAILED")
        query = await client.start(live_server, "a", "{ posts { totalPosts } }")
        assert (query.status_code, code_of(query)) == (400, "BAD_REQUEST")
        not_json = await client.http.post(
            live_server.graphql_url,
            content=b"query=x",
            headers={**client.auth, TOKEN_HEADER: client.stream_token},
        )
        assert not_json.status_code == 415

        assert (await client.start(live_server, "a")).status_code == 202
        again = await client.start(live_server, "a")
        assert (again.status_code, code_of(again)) == (409, "BAD_REQUEST")
        async with client.stream(live_server) as first:
            assert first.response.status_code == 200
            async with client.stream(live_server) as second:
                assert second.response.status_code == 409
                assert code_of(await _read(second.response)) == "BAD_REQUEST"
            await wait_for_values(live_server, subscriptions=1)
        # The stream ended, and its reservation with it.
        await wait_until_idle(live_server)
        gone = await client.start(live_server, "b")
        assert (gone.status_code, code_of(gone)) == (404, "NOT_FOUND")
    await wait_until_idle(live_server)


async def test_eventsource_opens_the_stream_with_token_and_ticket(
    live_server: LiveServer,
) -> None:
    """A page's EventSource sends no headers: the token and a stream ticket in the URL."""
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    async with single(reader) as client:
        await client.reserve(live_server)
        bare = await client.http.get(
            live_server.graphql_url, params={"token": client.stream_token}, headers={"accept": SSE}
        )
        assert (bare.status_code, code_of(bare)) == (401, "UNAUTHENTICATED")
        ticket = await stream_ticket(live_server, reader)
        params = {"token": client.stream_token, "ticket": ticket}
        async with client.http.stream(
            "GET", live_server.graphql_url, params=params, headers={"accept": SSE}
        ) as response:
            assert response.status_code == 200
            stream = SseStream(response)
            assert (await client.start(live_server, "page")).status_code == 202
            await wait_for_values(live_server, subscriptions=1)
            post = await create_post(live_server, writer, "To a page")
            operation_id, event = result_of(await stream.next())
            assert (operation_id, event["post"]["id"]) == ("page", post["id"])
    await wait_until_idle(live_server)


async def test_too_many_operations_on_one_stream(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_WS_MAX_SUBSCRIPTIONS="2")
    reader, _ = await signup(server)
    async with single(reader) as client:
        await client.reserve(server)
        for n in range(2):
            assert (await client.start(server, f"op{n}")).status_code == 202
        full = await client.start(server, "op2")
        assert (full.status_code, code_of(full)) == (400, "TOO_MANY_SUBSCRIPTIONS")


async def _read(response: httpx.Response) -> httpx.Response:
    await response.aread()
    return response


@pytest.mark.redis
async def test_a_command_whose_notice_was_lost_runs_at_the_next_keepalive(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """Redis pub/sub is at most once: a command left in the reservation's inbox with no
    notice (as when the notice was published while a connection was down) is still read."""
    channel = unique_channel()
    server = live_server_factory(
        GQL_FEED_BROADCAST_URL=redis_url(),
        GQL_FEED_BROADCAST_CHANNEL=channel,
        GQL_FEED_WS_KEEPALIVE_SECONDS="1",
    )
    reader, _ = await signup(server)
    writer, _ = await signup(server)
    redis = Redis.from_url(redis_url())
    try:
        async with single(reader) as client:
            await client.reserve(server)
            async with client.stream(server) as stream:
                inbox = f"{channel}:sse:{client.stream_token}:inbox"
                command = {"start": "quiet", "query": EVENTS, "operationName": None}
                await redis.rpush(inbox, json.dumps({**command, "variables": {}}))
                await wait_for_values(server, subscriptions=1)
                post = await create_post(server, writer, "Found anyway")
                operation_id, event = result_of(await stream.next())
                assert (operation_id, event["post"]["id"]) == ("quiet", post["id"])
        await wait_until_idle(server)
        assert await redis.keys(f"{channel}:sse:*") == []
    finally:
        await redis.aclose()
