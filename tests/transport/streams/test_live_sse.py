"""GraphQL over Server-Sent Events against a real server: event ids, Last-Event-ID resume,
stream tickets, keep-alives, request errors in the stream, and groups shared with the
WebSocket. The clients are raw (an EventSource-style reader) or `curl -N`; the real
graphql-sse client runs in tests/clients/test_stream_clients.py."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import httpx
import pytest

from tests.helpers.live import create_post, raw_client, signup, wait_for_values, wait_until_idle
from tests.helpers.server import LiveServer
from tests.helpers.services import redis_url, required, unique_channel
from tests.helpers.streams import EVENTS, SSE, SseEvent, sse, stream_ticket


def event_of(message: SseEvent) -> dict[str, str]:
    assert message.event == "next", message
    event: dict[str, str] = message.json()["data"]["postEvents"]
    return event


async def test_another_users_post_arrives_with_its_event_id(live_server: LiveServer) -> None:
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    async with sse(live_server, token=reader, method="POST") as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.response.headers["cache-control"] == "no-cache, no-store"
        await wait_for_values(live_server, subscriptions=1)
        post = await create_post(live_server, writer, "Over SSE")
        message = await stream.next()
        event = event_of(message)
        assert message.id == event["id"]
        assert event["action"] == "CREATED"
        assert event["post"] == {
            "id": post["id"],
            "title": "Over SSE",
            "creator": {"name": "Tester"},
        }
    await wait_until_idle(live_server)


async def test_eventsource_reconnect_with_last_event_id_misses_nothing(
    live_server: LiveServer,
) -> None:
    """What a browser's EventSource does by itself: the same URL (ticket and all), its
    cookies, and Last-Event-ID. Posts created while it was away arrive, once, in order."""
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    ticket = await stream_ticket(live_server, reader)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as browser:
        async with sse(live_server, ticket=ticket, client=browser) as stream:
            assert "gql_feed_stream_" in stream.response.headers["set-cookie"]
            assert "HttpOnly" in stream.response.headers["set-cookie"]
            await wait_for_values(live_server, subscriptions=1)
            await create_post(live_server, writer, "Before")
            assert event_of(await stream.next())["post"]["title"] == "Before"
            last_id = stream.last_event_id
        await wait_until_idle(live_server)
        missed = [await create_post(live_server, writer, f"Missed {n}") for n in range(3)]
        async with sse(live_server, ticket=ticket, client=browser, last_event_id=last_id) as stream:
            assert stream.response.status_code == 200
            replayed = [event_of(await stream.next()) for _ in missed]
            assert [e["post"]["id"] for e in replayed] == [p["id"] for p in missed]
            assert [int(e["id"]) for e in replayed] == [int(last_id or 0) + n for n in range(1, 4)]
            live = await create_post(live_server, writer, "Live again")
            marker = await create_post(live_server, writer, "Marker")
            # Nothing twice: every event up to a later marker, in order, each once.
            rest = [event_of(await stream.next())["post"]["id"] for _ in range(2)]
            assert rest == [live["id"], marker["id"]]
    # The URL alone (found in a log, say) opens nothing: the ticket is spent.
    async with sse(live_server, ticket=ticket) as stranger:
        assert stranger.response.status_code == 401
        body = await stranger.response.aread()
        assert b"UNAUTHENTICATED" in body
    await wait_until_idle(live_server)


async def test_tickets_are_not_tokens_and_need_a_login(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    ticket = await stream_ticket(live_server, token)
    me = await asyncio.to_thread(live_server.graphql, "{ me { id } }", None, ticket)
    assert me["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with sse(live_server, ticket=token) as stream:
        assert stream.response.status_code == 401
    anonymous = await asyncio.to_thread(live_server.graphql, "mutation { streamTicket }")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with sse(live_server) as stream:
        assert stream.response.status_code == 401
        body = (await stream.response.aread()).decode()
        assert "streamTicket" in body
        assert "UNAUTHENTICATED" in body


async def test_request_errors_are_events_then_complete(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    for query, code in (
        ("subscription { postEvents { nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ me { id } }", "BAD_REQUEST"),
    ):
        async with sse(live_server, query=query, token=token) as stream:
            message = await stream.next()
            assert message.event == "next"
            assert message.json()["errors"][0]["extensions"]["code"] == code
            complete = await stream.next()
            assert (complete.event, complete.data) == ("complete", "")
            await stream.ended()
    async with sse(live_server, token=token, last_event_id="999999") as stream:
        message = await stream.next()
        assert message.json()["errors"][0]["extensions"]["code"] == "EVENT_LOG_EXPIRED"
        assert (await stream.next()).event == "complete"
    async with sse(live_server, token=token, last_event_id="soon") as stream:
        assert stream.response.status_code == 400
    plain = await asyncio.to_thread(
        httpx.post,
        live_server.graphql_url,
        content=b'{"query": "subscription { postEvents { id } }"}',
        headers={"accept": SSE, "content-type": "text/plain", "authorization": f"Bearer {token}"},
    )
    assert plain.status_code == 415
    assert plain.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    await wait_until_idle(live_server)


async def test_sse_and_websocket_subscribers_share_one_group(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    async with raw_client(live_server) as socket, sse(live_server, token=token) as stream:
        assert (await socket.init(token))["type"] == "connection_ack"
        await socket.subscribe("1", EVENTS)
        await wait_for_values(live_server, subscriptions=2, groups=1, connections=2)
        post = await create_post(live_server, writer, "Shared")
        over_ws = (await socket.receive())["payload"]["data"]["postEvents"]
        over_sse = event_of(await stream.next())
        assert over_ws == over_sse
        assert over_sse["post"]["id"] == post["id"]
    await wait_until_idle(live_server)


async def test_keepalive_comments_and_an_expired_login_end_the_stream(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    # A token lives 1 to 2 s at the least TTL (its `exp` is in whole seconds).
    server = live_server_factory(
        GQL_FEED_WS_KEEPALIVE_SECONDS="0.1", GQL_FEED_TOKEN_TTL_SECONDS="2"
    )
    token, _ = await signup(server)
    async with sse(server, token=token) as stream:
        # No events: only comments, until the login expires and the server ends the
        # stream without `complete` (so a client reconnects with a fresh ticket), saying
        # why in a last comment.
        await stream.ended(timeout=10)
        assert stream.comments >= 5
        assert stream.remarks == ["Token expired: log in again"]
    await wait_until_idle(server)


async def test_curl_receives_events(live_server: LiveServer) -> None:
    if shutil.which("curl") is None:
        if required():
            pytest.fail("curl is needed")
        pytest.skip("curl is not installed")
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sN",
        live_server.graphql_url,
        "-H",
        f"authorization: Bearer {reader}",
        "-H",
        "accept: text/event-stream",
        "--json",
        '{"query": "subscription { postEvents { id action post { title } } }"}',
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        assert await asyncio.wait_for(process.stdout.readline(), 10) == b":\n"
        await wait_for_values(live_server, subscriptions=1)
        await create_post(live_server, writer, "Seen by curl")
        lines: list[bytes] = []
        while not lines or not lines[-1].startswith(b"data: "):
            line = await asyncio.wait_for(process.stdout.readline(), 10)
            if line not in (b":\n", b"\n"):  # keep-alive comments
                lines.append(line)
        assert lines[0].startswith(b"id: ")
        assert lines[1] == b"event: next\n"
        assert b'"title":"Seen by curl"' in lines[2]
    finally:
        process.kill()
        await process.wait()
    await wait_until_idle(live_server)


async def test_a_restart_ends_the_stream_and_last_event_id_resumes_it(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory()
    reader, _ = await signup(server)
    writer, _ = await signup(server)
    async with sse(server, token=reader) as stream:
        await wait_for_values(server, subscriptions=1)
        await create_post(server, writer, "Before the restart")
        assert event_of(await stream.next())["post"]["title"] == "Before the restart"
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        await stream.ended(timeout=15)  # ended by the server, without `complete`
        await stopping
    await asyncio.to_thread(server.start)
    missed = [await create_post(server, writer, f"While away {n}") for n in range(2)]
    async with sse(server, token=reader, last_event_id=stream.last_event_id) as stream:
        replayed = [event_of(await stream.next()) for _ in missed]
        assert [e["post"]["id"] for e in replayed] == [p["id"] for p in missed]


@pytest.mark.redis
async def test_a_ticket_spent_on_one_process_is_refused_by_another(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """With the Redis bus, spent tickets are shared: the URL cannot open a second stream
    on another process behind the load balancer either."""
    bus = {"GQL_FEED_BROADCAST_URL": redis_url(), "GQL_FEED_BROADCAST_CHANNEL": unique_channel()}
    a = live_server_factory(**bus)
    b = live_server_factory(**bus)
    token, _ = await signup(a)  # both servers share the key, so b accepts a's tokens
    ticket = await stream_ticket(a, token)
    async with sse(a, ticket=ticket) as first:
        assert first.response.status_code == 200
        async with sse(b, ticket=ticket) as second:
            assert second.response.status_code == 401
            assert b"already used" in await second.response.aread()
