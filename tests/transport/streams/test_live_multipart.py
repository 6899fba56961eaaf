"""Apollo's multipart HTTP subscriptions against a real server, checked byte for byte:
the content type echoing `subscriptionSpec`, CRLF parts each followed at once by the next
boundary, the `{}` heartbeat, and a fatal error as `{"payload": null, "errors": [...]}`
before the final boundary. Apollo Client itself runs in tests/clients/test_stream_clients.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.helpers.live import create_post, signup, wait_for_values, wait_until_idle
from tests.helpers.server import LiveServer
from tests.helpers.streams import MULTIPART, multipart

PART = b"\r\nContent-Type: application/json\r\n\r\n"
BOUNDARY = b"\r\n--graphql"
HEARTBEAT = PART + b"{}" + BOUNDARY


async def test_events_arrive_as_payload_parts(live_server: LiveServer) -> None:
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    async with multipart(live_server, reader) as stream:
        assert stream.response.status_code == 200
        assert (
            stream.response.headers["content-type"]
            == 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'
        )
        await wait_for_values(live_server, subscriptions=1)
        post = await create_post(live_server, writer, "Over multipart")
        part = await stream.next_payload()
        event = part["payload"]["data"]["postEvents"]
        assert list(part) == ["payload"]
        assert (event["action"], event["post"]["id"]) == ("CREATED", post["id"])
        assert event["post"]["creator"] == {"name": "Tester"}
        # The part was handed on, so the next boundary came with it: Apollo Client needs
        # it to see the part's end, so it must not wait for the next event or heartbeat.
        assert bytes(stream.raw).startswith(BOUNDARY)
        # The heartbeat: an empty object, every 5 seconds.
        assert await stream.next_part(timeout=8) == {}
    await wait_until_idle(live_server)


async def test_the_body_is_byte_exact(live_server: LiveServer) -> None:
    reader, _ = await signup(live_server)
    writer, _ = await signup(live_server)
    query = "subscription { postEvents { action post { title } } }"
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http,
        http.stream(
            "POST",
            live_server.graphql_url,
            json={"query": query},
            headers={"accept": MULTIPART, "authorization": f"Bearer {reader}"},
        ) as response,
    ):
        await wait_for_values(live_server, subscriptions=1)
        await create_post(live_server, writer, "Exact again")
        expected = (
            BOUNDARY
            + PART
            + b'{"payload":{"data":{"postEvents":{"action":"CREATED","post":{"title":"Exact again"}}}}}'
            + BOUNDARY
        )
        received = b""
        chunks = response.aiter_raw()
        while b"Exact again" not in received or not received.endswith(BOUNDARY):
            received += await asyncio.wait_for(chunks.__anext__(), 10)
        assert received.replace(HEARTBEAT, b"") == expected
    await wait_until_idle(live_server)


async def test_request_errors_end_the_stream(live_server: LiveServer) -> None:
    token, _ = await signup(live_server)
    async with multipart(live_server, token, "subscription { postEvents { nope } }") as stream:
        part = await stream.next_payload()
        assert part["payload"]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert await stream.rest() == BOUNDARY + b"--\r\n"
    async with (
        httpx.AsyncClient() as http,
        http.stream(
            "POST",
            live_server.graphql_url,
            json={"query": "subscription { postEvents { id } }"},
            headers={"accept": MULTIPART},
        ) as response,
    ):
        assert response.status_code == 401
        body = await response.aread()
        assert b'"code":"UNAUTHENTICATED"' in body


async def test_a_query_accepting_json_too_is_answered_as_json(live_server: LiveServer) -> None:
    """Apollo's Accept names application/json beside multipart: a query is no stream."""
    async with httpx.AsyncClient() as http:
        response = await http.post(
            live_server.graphql_url,
            json={"query": "{ me { id } }"},
            headers={"accept": MULTIPART},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["data"] is None  # a field error: execution ran, so `data` is there
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_expired_login_is_a_fatal_error_part(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(GQL_FEED_TOKEN_TTL_SECONDS="2")
    token, _ = await signup(server)
    async with multipart(server, token) as stream:
        rest = await stream.rest(timeout=10)
    assert rest.startswith(BOUNDARY + PART)
    assert rest.endswith(b'"extensions":{"code":"UNAUTHENTICATED"}}]}' + BOUNDARY + b"--\r\n")
    assert b'{"payload":null,"errors":[{"message":"Token expired: log in again"' in rest
    await wait_until_idle(server)
