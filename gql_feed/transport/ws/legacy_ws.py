"""The legacy `graphql-ws` subprotocol (subscriptions-transport-ws, older Apollo clients).

It differs from graphql-transport-ws in names (start/stop, data, ka, connection_terminate),
in refusing a token with a `connection_error` message before closing, in the server's
one-way `ka` keep-alive, and in what the reference server does with request errors: a
`data` message carrying them, then `complete`. Like the reference server, a `start` with
an id still in use replaces that operation. Unlike it, nothing runs before
`connection_init` has been accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, NotRequired, TypedDict

from graphql import GraphQLError

from gql_feed.engine.requests import OperationPayload
from gql_feed.engine.results import json_text, payload_text
from gql_feed.live.close_codes import CloseCode, CloseConnection
from gql_feed.services.errors import FeedError
from gql_feed.transport.ws.messages import (
    bad,
    message_id,
    operation_payload,
    optional_object,
)
from gql_feed.transport.ws.protocol import LiveProtocol

KEEP_ALIVE = json_text({"type": "ka"})
INIT_FIRST = "Send connection_init (and wait for connection_ack) before start."


class ConnectionInitMessage(TypedDict):
    type: Literal["connection_init"]
    payload: NotRequired[dict[str, Any] | None]


class StartMessage(TypedDict):
    id: str
    type: Literal["start"]
    payload: OperationPayload


class StopMessage(TypedDict):
    id: str
    type: Literal["stop"]


class ConnectionTerminateMessage(TypedDict):
    type: Literal["connection_terminate"]


class LegacyWsProtocol(LiveProtocol):
    __slots__ = ()
    subprotocol = "graphql-ws"
    next_type = "data"

    def dispatch(self, message: dict[str, Any]) -> Awaitable[None] | None:
        match message["type"]:
            case "connection_init":
                return self.handle_connection_init(
                    {"type": "connection_init", "payload": optional_object(message, "payload")}
                )
            case "start":
                self.handle_start(
                    {
                        "id": message_id(message),
                        "type": "start",
                        "payload": operation_payload(message),
                    }
                )
            case "stop":
                self.handle_stop({"id": message_id(message), "type": "stop"})
            case "connection_terminate":
                self.handle_connection_terminate({"type": "connection_terminate"})
            case other:
                raise bad(f"unexpected message type {other!r}")
        return None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        self.check_init()
        try:
            await self.authenticate(message.get("payload"))
        except FeedError as refusal:
            self.send_json({"type": "connection_error", "payload": {"message": refusal.message}})
            raise CloseConnection(CloseCode.FORBIDDEN, f"Forbidden: {refusal.message}") from None
        self.send_json({"type": "connection_ack"})
        self.connection.send_text(KEEP_ALIVE)

    def handle_start(self, message: StartMessage) -> None:
        op_id = message["id"]
        claims = self.claims
        if claims is None:
            self.send_json(
                {
                    "id": op_id,
                    "type": "error",
                    "payload": {"message": INIT_FIRST, "extensions": {"code": "UNAUTHENTICATED"}},
                }
            )
            raise CloseConnection(CloseCode.UNAUTHORIZED, "Unauthorized")
        self.stop(op_id)
        self.start(op_id, message["payload"], claims)

    def handle_stop(self, message: StopMessage) -> None:
        if self.stop(message["id"]):
            self.send_complete(message["id"])

    def handle_connection_terminate(self, message: ConnectionTerminateMessage) -> None:
        self.connection.close(CloseCode.NORMAL, "Terminated by the client")

    def keepalive(self) -> None:
        if self.claims is not None:
            self.connection.send_text(KEEP_ALIVE)

    def send_error(self, op_id: str, errors: list[GraphQLError]) -> None:
        self.connection.send_text(
            self.next_prefix(op_id) + payload_text(None, errors, self.settings.production) + "}"
        )
        self.send_complete(op_id)
