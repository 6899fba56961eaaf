"""The HTTP streams' pieces without a server: frames encoded once per group and event,
the slow-consumer rule on a body stream, each framing's ending, Accept negotiation."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import Headers

from gql_feed.live.close_codes import CloseCode
from gql_feed.live.connection import SLOW_CONSUMER_REASON
from gql_feed.live.ticker import Ticker
from gql_feed.transport.streams.multipart import MultipartFraming
from gql_feed.transport.streams.sse import SseFraming
from gql_feed.transport.streams.stream_connection import SharedFrames, StreamConnection
from gql_feed.transport.streams.streams import HttpStreams
from tests.helpers.live_fakes import FakeSocket, Released


def body_stream(
    framing: Any, limit: int = 3, byte_limit: int = 1 << 20
) -> tuple[StreamConnection, FakeSocket, Released]:
    socket, released = FakeSocket(), Released()
    conn = StreamConnection(socket.send, limit, released, framing, byte_limit)  # type: ignore[arg-type]
    return conn, socket, released


def test_a_frame_is_encoded_once_for_the_whole_group() -> None:
    frames = SharedFrames(SseFraming(), Ticker(15, 10))
    payload = '{"data":{"postEvents":{"id":"7"}}}'
    first = frames.next(7, payload)
    assert first == b'id: 7\nevent: next\ndata: {"data":{"postEvents":{"id":"7"}}}\n\n'
    assert frames.next(7, payload) is first  # the next member gets the same bytes
    assert frames.next(8, payload) is not first


def test_multipart_parts_end_with_the_next_boundary() -> None:
    framing = MultipartFraming()
    assert framing.next(3, '{"data":{}}') == (
        b'\r\nContent-Type: application/json\r\n\r\n{"payload":{"data":{}}}\r\n--graphql'
    )
    assert framing.keepalive == b"\r\nContent-Type: application/json\r\n\r\n{}\r\n--graphql"
    assert framing.ending(CloseCode.NORMAL, "") == b"--\r\n"
    fatal = framing.ending(CloseCode.TRY_AGAIN_LATER, "Slow consumer")
    assert fatal == (
        b"\r\nContent-Type: application/json\r\n\r\n"
        b'{"payload":null,"errors":[{"message":"Slow consumer",'
        b'"extensions":{"code":"SLOW_CONSUMER"}}]}\r\n--graphql--\r\n'
    )


async def test_a_slow_stream_is_ended_and_released_at_once() -> None:
    conn, socket, released = body_stream(SseFraming())
    socket.gate = asyncio.get_running_loop().create_future()
    for chunk in (b"in flight", b"q1", b"q2", b"q3"):
        conn.send_bytes(chunk)
    assert released.calls == 0
    conn.send_bytes(b"one too many")
    assert released.calls == 1
    socket.gate.set_result(None)
    await conn.flushed(1)
    assert [m["body"] for m in socket.sent] == [
        b"in flight",
        b": " + SLOW_CONSUMER_REASON.encode() + b"\n\n",
    ]
    assert [m.get("more_body") for m in socket.sent] == [True, False]


async def test_a_stream_is_a_slow_consumer_past_its_backlog_in_bytes() -> None:
    """Few frames but big ones: the byte bound ends the stream, not the frame count."""
    conn, socket, released = body_stream(SseFraming(), limit=500, byte_limit=10_000)
    socket.gate = asyncio.get_running_loop().create_future()
    conn.send_bytes(b"in flight")
    for _ in range(4):
        conn.send_bytes(b"x" * 2_500)  # 10,000 bytes queued: at the bound, still kept
    assert released.calls == 0
    conn.send_bytes(b"y")
    assert released.calls == 1
    socket.gate.set_result(None)
    await conn.flushed(1)
    assert [m["body"] for m in socket.sent] == [
        b"in flight",
        b": " + SLOW_CONSUMER_REASON.encode() + b"\n\n",
    ]


def test_the_accept_header_picks_the_transport() -> None:
    streams = HttpStreams.__new__(HttpStreams)
    streams.sse = "sse"  # type: ignore[assignment]
    streams.multipart = "multipart"  # type: ignore[assignment]
    for accept, chosen in (
        ("text/event-stream", "sse"),
        ("application/json, text/event-stream;q=0.9", "sse"),
        ('multipart/mixed;subscriptionSpec="1.0", application/json', "multipart"),
        (
            "multipart/mixed;boundary=graphql;subscriptionSpec=1.0,"
            "application/graphql-response+json,application/json;q=0.9",
            "multipart",
        ),
        ("multipart/mixed;deferSpec=20220824, application/json", None),
        ("application/json", None),
        ("", None),
    ):
        assert streams.frames_for(Headers({"accept": accept})) == chosen, accept
