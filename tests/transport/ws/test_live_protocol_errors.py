"""Every protocol violation gets its close code (or error), and never hurts other clients."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from gql_feed.app import create_app
from gql_feed.config import Settings
from gql_feed.transport.ws.transport_ws import TransportWsProtocol
from tests.helpers.live import (
    IDS_ONLY,
    LEGACY_WS,
    SUBPROTOCOLS,
    TRANSPORT_WS,
    RawClient,
    create_post,
    raw_client,
    signup,
    wait_for_values,
)
from tests.helpers.server import REAL_PASSWORD_COST, TEST_SECRET, LiveServer

both = pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)


@pytest.fixture(scope="module")
def token(live_server: LiveServer) -> str:
    return live_server.signup_and_login()[0]


async def close_code(server: LiveServer, subprotocol: str, *messages: object) -> tuple[int, str]:
    async with raw_client(server, subprotocol) as client:
        for message in messages:
            if isinstance(message, bytes):
                await client.socket.send(message)
            else:
                await client.send(message)  # type: ignore[arg-type]
        return await client.closed()


def init(token: str) -> dict[str, object]:
    return {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}


def start(subprotocol: str, op_id: str | None = "1", payload: object = None) -> dict[str, object]:
    message: dict[str, object] = {
        "type": "subscribe" if subprotocol == TRANSPORT_WS else "start",
        "payload": {"query": IDS_ONLY} if payload is None else payload,
    }
    if op_id is not None:
        message["id"] = op_id
    return message


# Connecting.


@pytest.mark.parametrize("offered", [None, ["graphql-wrong"]])
async def test_unknown_or_missing_subprotocol_is_4406(
    live_server: LiveServer, offered: list[str] | None
) -> None:
    async with raw_client(live_server, *(offered or [None])) as client:
        if offered is None:
            assert client.socket.subprotocol is None
        code, reason = await client.closed()
    assert (code, reason) == (4406, "Subprotocol not acceptable")


@both
async def test_bad_token_is_4403(live_server: LiveServer, subprotocol: str) -> None:
    async with raw_client(live_server, subprotocol) as client:
        await client.send(init("not-a-token"))
        if subprotocol == LEGACY_WS:
            refusal = await client.receive()
            assert refusal == {"type": "connection_error", "payload": {"message": "Invalid token."}}
        code, reason = await client.closed()
    assert code == 4403
    assert reason == "Forbidden: Invalid token."


@both
@pytest.mark.parametrize("payload", [{}, None, {"Authorization": "Basic abc"}, {"token": 5}])
async def test_missing_or_malformed_token_is_4403(
    live_server: LiveServer, subprotocol: str, payload: object
) -> None:
    code, reason = await close_code(
        live_server, subprotocol, {"type": "connection_init", "payload": payload}
    )
    assert code == 4403
    assert reason.startswith("Forbidden:")


@both
async def test_raw_token_and_header_forms_are_accepted(
    live_server: LiveServer, subprotocol: str, token: str
) -> None:
    for payload in (
        {"authorization": f"Bearer {token}"},
        {"authToken": token},
        {"token": token},
        {"headers": {"Authorization": f"Bearer {token}"}},
    ):
        async with raw_client(live_server, subprotocol) as client:
            assert (await client.init(None, payload))["type"] == "connection_ack"
    async with raw_client(
        live_server, subprotocol, additional_headers={"Authorization": f"Bearer {token}"}
    ) as client:
        assert (await client.init(None, {}))["type"] == "connection_ack"


@both
async def test_init_timeout_is_4408(
    shared_server_factory: Callable[..., LiveServer], subprotocol: str
) -> None:
    server = shared_server_factory(GQL_FEED_WS_INIT_TIMEOUT_SECONDS="0.5")
    async with raw_client(server, subprotocol) as client:
        code, reason = await client.closed(timeout=5)
    assert (code, reason) == (4408, "Connection initialisation timeout")


@both
async def test_second_init_is_4429(live_server: LiveServer, subprotocol: str, token: str) -> None:
    async with raw_client(live_server, subprotocol) as client:
        assert (await client.init(token))["type"] == "connection_ack"
        await client.send(init(token))
        code, reason = await client.closed()
    assert (code, reason) == (4429, "Too many initialisation requests")


# Malformed messages.


@both
@pytest.mark.parametrize(
    "message",
    ["not json", "[1, 2]", '{"id": "1"}', '{"type": 5}', '{"type": "next", "id": "1"}', b"\x00"],
)
async def test_malformed_message_is_4400(
    live_server: LiveServer, subprotocol: str, message: str | bytes
) -> None:
    code, reason = await close_code(live_server, subprotocol, message)
    assert code == 4400
    assert reason.startswith(("Invalid message", "Messages must be text"))


@both
@pytest.mark.parametrize(
    ("op_id", "payload"),
    [
        (None, None),
        ("", None),
        ("1", "a string"),
        ("1", {"query": 5}),
        ("1", {"query": IDS_ONLY, "variables": []}),
    ],
)
async def test_malformed_subscribe_is_4400(
    live_server: LiveServer, subprotocol: str, token: str, op_id: str | None, payload: object
) -> None:
    code, _ = await close_code(
        live_server, subprotocol, init(token), start(subprotocol, op_id, payload)
    )
    assert code == 4400


@both
async def test_message_too_big_is_1009(
    live_server: LiveServer, subprotocol: str, token: str
) -> None:
    huge = {"query": IDS_ONLY + " " * 70_000}
    code, reason = await close_code(
        live_server, subprotocol, init(token), start(subprotocol, "1", huge)
    )
    assert code == 1009
    assert reason == "Message larger than 65536 bytes"


# Out of order.


@both
async def test_subscribe_before_init_is_4401(live_server: LiveServer, subprotocol: str) -> None:
    async with raw_client(live_server, subprotocol) as client:
        await client.send(start(subprotocol))
        if subprotocol == LEGACY_WS:
            error = await client.receive()
            assert error["type"] == "error"
            assert error["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
        code, reason = await client.closed()
    assert (code, reason) == (4401, "Unauthorized")


async def test_duplicate_id_is_4409(live_server: LiveServer, token: str) -> None:
    """graphql-transport-ws only: the legacy protocol replaces the operation instead."""
    code, reason = await close_code(
        live_server,
        TRANSPORT_WS,
        init(token),
        start(TRANSPORT_WS, "dup"),
        start(TRANSPORT_WS, "dup"),
    )
    assert (code, reason) == (4409, "Subscriber for dup already exists")


# Refused operations: an error for that operation, the connection goes on.


@both
async def test_too_many_subscriptions_is_an_error_for_that_one(
    shared_server_factory: Callable[..., LiveServer], subprotocol: str
) -> None:
    server = shared_server_factory(GQL_FEED_WS_MAX_SUBSCRIPTIONS="2")
    token, _ = await signup(server)
    async with raw_client(server, subprotocol) as client:
        await client.init(token)
        for op_id in ("1", "2", "3"):
            await client.subscribe(op_id, IDS_ONLY)
        refused = await refusal(client)
        assert refused["id"] == "3"
        assert _codes(refused) == ["TOO_MANY_SUBSCRIPTIONS"]
        post = await create_post(server, token, "Still subscribed")
        delivered = await client.events(2)
        assert {m["id"] for m in delivered} == {"1", "2"}
        assert {m["payload"]["data"]["postEvents"]["post"]["id"] for m in delivered} == {post["id"]}


@both
async def test_uploads_over_the_socket_are_refused(
    live_server: LiveServer, subprotocol: str, token: str
) -> None:
    mutation = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }"
    async with raw_client(live_server, subprotocol) as client:
        await client.init(token)
        await client.subscribe(
            "up", mutation, {"i": {"title": "Over the socket", "content": "Nope", "image": "x"}}
        )
        refused = await refusal(client)
    assert refused["id"] == "up"
    assert _codes(refused) == ["BAD_USER_INPUT"]


@both
async def test_missing_query_is_an_error(
    live_server: LiveServer, subprotocol: str, token: str
) -> None:
    async with raw_client(live_server, subprotocol) as client:
        await client.init(token)
        await client.send(start(subprotocol, "q", {}))
        refused = await refusal(client)
    assert refused["id"] == "q"
    assert _codes(refused) == ["BAD_REQUEST"]


@both
async def test_bad_clients_never_affect_a_good_one(
    live_server: LiveServer, subprotocol: str, token: str
) -> None:
    async with raw_client(live_server, subprotocol) as good:
        await good.init(token)
        await good.subscribe("good", IDS_ONLY)
        await wait_for_values(live_server, subscriptions=1)
        bad_sessions = [
            close_code(live_server, subprotocol, "garbage"),
            close_code(live_server, subprotocol, init("forged")),
            close_code(live_server, subprotocol, start(subprotocol)),
            close_code(live_server, subprotocol, init(token), init(token)),
            close_code(live_server, subprotocol, init(token), start(subprotocol, "1", "x")),
        ]
        codes = [code for code, _ in await asyncio.gather(*bad_sessions)]
        assert codes == [4400, 4403, 4401, 4429, 4400]
        post = await create_post(live_server, token, "After the storm")
        [message] = await good.events(1)
    assert message["id"] == "good"
    assert message["payload"]["data"]["postEvents"]["post"]["id"] == post["id"]


async def refusal(client: RawClient) -> dict[str, Any]:
    """An operation's request errors: one `error`, or legacy's `data` then `complete`."""
    message = await client.receive()
    if message["type"] == "data":
        assert await client.receive() == {"id": message["id"], "type": "complete"}
    return message


def _codes(message: dict[str, object]) -> list[str]:
    """Error codes of an operation's error, in either subprotocol's framing."""
    if message["type"] == "error":
        errors = message["payload"]
    else:
        assert message["type"] == "data", message
        errors = message["payload"]["errors"]  # type: ignore[index]
    return [error["extensions"]["code"] for error in errors]  # type: ignore[index, union-attr]


# Internal errors: masked for the client, logged for us.


def test_unexpected_exception_is_4500_with_a_masked_reason(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(self: TransportWsProtocol, message: object) -> None:
        raise RuntimeError("secret: the database password is hunter2")

    monkeypatch.setattr(TransportWsProtocol, "handle_ping", broken)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}",
        upload_dir=tmp_path / "uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=False,  # the collector belongs to pytest here
        _env_file=None,  # type: ignore[call-arg]
    )
    with warnings.catch_warnings():
        # starlette suggests httpx2 for its test client; httpx still does the job here.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    app = create_app(settings)
    with (
        TestClient(app) as http,
        http.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as socket,
        caplog.at_level(logging.ERROR),
    ):
        socket.send_json({"type": "ping"})
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 4500
    assert closed.value.reason == "Internal server error"
    assert "hunter2" in caplog.text


@both
async def test_production_mode_rules_hold_over_the_socket(
    shared_server_factory: Callable[..., LiveServer], subprotocol: str
) -> None:
    """No introspection, and no "Did you mean …?" hints that would spell out the schema."""
    server = shared_server_factory(GQL_FEED_PRODUCTION="true", **REAL_PASSWORD_COST)
    token, _ = await signup(server)
    async with raw_client(server, subprotocol) as client:
        await client.init(token)
        await client.subscribe("typo", IDS_ONLY, {"actions": ["DELETD"]})
        typo = await refusal(client)
        await client.subscribe("field", "subscription { postEvents { titel } }")
        field = await refusal(client)
        await client.subscribe("schema", "{ __schema { types { name } } }")
        schema = await refusal(client)
    for message in (typo, field, schema):
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors
        assert all("Did you mean" not in error["message"] for error in errors)
    assert set(_codes(schema)) == {"GRAPHQL_VALIDATION_FAILED"}
