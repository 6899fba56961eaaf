"""Who a request or a live connection belongs to: the token from `connection_init`, the
upgrade request or an HTTP request's header, or a stream ticket; and refusal of a missing,
bad or malformed one, or of a user that is gone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gql_feed.engine.admission import (
    MISSING_CREDENTIAL,
    MISSING_TOKEN,
    NEEDS_BEARER,
    bearer,
    connection_init,
    http_context,
    required_bearer,
    stream_owner,
    token_claims,
)
from gql_feed.services.accounts import ACCOUNT_GONE
from gql_feed.services.errors import Unauthenticated
from gql_feed.services.known_users import KnownUsers
from gql_feed.services.tickets import Admission
from gql_feed.services.tokens import TokenService

SECRET = "admission-test-secret-0123456789abcdef0123456789"
# Issued when the module is collected, run perhaps many minutes later: a day to live.
TOKENS = TokenService(SECRET, "gql_feed", "gql_feed", ttl_seconds=86_400)
ANN, _ = TOKENS.issue(1)
BOB, _ = TOKENS.issue(2)
GONE, _ = TOKENS.issue(3)
FORGED, _ = TokenService(
    "forged-secret-0123456789abcdef0123456789", "gql_feed", "gql_feed", 60
).issue(1)


def who(payload: dict[str, Any] | None, header: str | None = None) -> int:
    return token_claims(TOKENS, payload, header).user_id


def refusal(payload: dict[str, Any] | None, header: str | None = None) -> str:
    with pytest.raises(Unauthenticated) as raised:
        token_claims(TOKENS, payload, header)
    return raised.value.message


@pytest.mark.parametrize(
    "payload",
    [
        {"Authorization": f"Bearer {ANN}"},
        {"authorization": f"bearer {ANN}"},
        {"AUTHORIZATION": f"Bearer {ANN}"},
        {"headers": {"Authorization": f"Bearer {ANN}"}},
        {"headers": {"authorization": f"Bearer {ANN}"}},
        {"authToken": ANN},
        {"authToken": f"  Bearer {ANN} "},
        {"authToken": f"bearer {ANN}"},
        {"token": ANN},
        {"token": f" {ANN}\n"},
    ],
)
def test_where_a_token_may_be(payload: dict[str, Any]) -> None:
    assert who(payload) == 1


def test_the_upgrade_requests_header_when_the_payload_has_none() -> None:
    assert who(None, f"Bearer {ANN}") == 1
    assert who({}, f"Bearer {ANN}") == 1
    assert who({"other": "thing"}, f"Bearer {ANN}") == 1


def test_what_wins_when_there_are_several() -> None:
    assert who({"Authorization": f"Bearer {ANN}"}, f"Bearer {BOB}") == 1
    assert who({"authToken": ANN}, f"Bearer {BOB}") == 1
    assert who({"Authorization": f"Bearer {ANN}", "authToken": BOB, "token": BOB}) == 1
    assert who({"authToken": ANN, "token": BOB}) == 1
    assert who({"headers": {"Authorization": f"Bearer {ANN}"}, "authToken": BOB}) == 1
    assert (
        who({"Authorization": f"Bearer {ANN}", "headers": {"Authorization": f"Bearer {BOB}"}}) == 1
    )


def test_no_token_at_all() -> None:
    for payload in (None, {}, {"headers": "Bearer x"}, {"headers": {}}, {"Authorization": ""}):
        assert refusal(payload) == MISSING_TOKEN
    assert refusal({}, "") == MISSING_TOKEN


def test_bad_tokens_are_refused_wherever_they_are() -> None:
    assert refusal({"Authorization": f"Bearer {FORGED}"}) == "Invalid token."
    assert refusal({"headers": {"Authorization": f"Bearer {FORGED}"}}) == "Invalid token."
    assert refusal({"authToken": FORGED}) == "Invalid token."
    assert refusal({"token": FORGED}) == "Invalid token."
    assert refusal(None, f"Bearer {FORGED}") == "Invalid token."
    # A bad token in the payload is not rescued by a good one in the header.
    assert refusal({"authToken": FORGED}, f"Bearer {ANN}") == "Invalid token."
    assert refusal({"Authorization": f"Bearer {FORGED}"}, f"Bearer {ANN}") == "Invalid token."


def test_malformed_values_are_named() -> None:
    assert refusal({"Authorization": 12}) == "Authorization must be 'Bearer <token>'."
    assert refusal({"headers": {"authorization": None}}) == (
        "Authorization must be 'Bearer <token>'."
    )
    assert refusal({"Authorization": ANN}) == "The Authorization header must be 'Bearer <token>'."
    assert refusal(None, f"Basic {ANN}") == "The Authorization header must be 'Bearer <token>'."
    for key in ("authToken", "token"):
        for value in (12, "", "   ", ["x"], {"a": 1}):
            assert refusal({key: value}) == f"{key} must be a token string."
    assert refusal({"authToken": "Bearer "}) == "Invalid token."


def test_only_authorization_is_an_authorization() -> None:
    assert who({1: "Bearer x", "authToken": ANN}) == 1  # type: ignore[dict-item]
    assert who({"accept": "text/plain", "apollo": 1, "authToken": ANN}) == 1
    assert who({"headers": {"accept": "*/*", "Authorization": f"Bearer {ANN}"}}) == 1


class Tickets:
    """Stream tickets that name whom they were issued to, the first use setting a cookie."""

    def __init__(self) -> None:
        self.admitted: list[str] = []

    async def admit(self, ticket: str, cookies: dict[str, str]) -> Admission:
        self.admitted.append(ticket)
        claims = TOKENS.verify({"ann": ANN, "gone": GONE}[ticket])
        return Admission(claims, None if cookies else ("resume", ticket, 60))


def known_services() -> Any:
    """Users 1 (Ann) and 2 (Bob) exist; user 3 was removed."""
    known = KnownUsers(db=None, ttl_seconds=60)  # type: ignore[arg-type]
    known.remember(1)
    known.remember(2)
    known.remember(3, exists=False)
    return SimpleNamespace(
        tokens=TOKENS, tickets=Tickets(), accounts=SimpleNamespace(known_users=known)
    )


async def refused(admission: Any) -> str:
    with pytest.raises(Unauthenticated) as raised:
        await admission
    return raised.value.message


async def test_an_http_bearer_header_names_the_user_or_is_refused() -> None:
    services = known_services()
    assert await bearer(services, None) is None  # no header: no one, not a refusal
    assert await bearer(services, "") is None
    assert await bearer(services, f"Bearer {ANN}") == TOKENS.verify(ANN)
    assert await refused(bearer(services, f"Bearer {FORGED}")) == "Invalid token."
    assert await refused(bearer(services, f"Bearer {GONE}")) == ACCOUNT_GONE
    assert await refused(required_bearer(services, None)) == NEEDS_BEARER
    assert await required_bearer(services, f"Bearer {BOB}") == TOKENS.verify(BOB)
    assert await refused(required_bearer(services, f"Bearer {GONE}")) == ACCOUNT_GONE


async def test_an_http_operation_with_a_bad_token_keeps_the_error_for_the_fields_later() -> None:
    """`login` and `signup` still work beside a dead token: only what needs a login fails."""
    services = known_services()
    good = await http_context(services, f"Bearer {ANN}", "client-a")
    assert (good.claims, good.token_error, good.client) == (TOKENS.verify(ANN), None, "client-a")
    anonymous = await http_context(services, None, "client-b")
    assert (anonymous.claims, anonymous.token_error) == (None, None)
    for header, message in (
        (f"Bearer {FORGED}", "Invalid token."),
        (f"Bearer {GONE}", ACCOUNT_GONE),
    ):
        dead = await http_context(services, header, "client-c")
        assert dead.claims is None
        assert isinstance(dead.token_error, Unauthenticated)
        assert dead.token_error.message == message


async def test_a_stream_is_opened_by_a_bearer_header_or_else_a_ticket() -> None:
    services = known_services()
    # A header wins: the ticket is not even spent.
    assert await stream_owner(services, f"Bearer {BOB}", "ann", {}) == (TOKENS.verify(BOB), None)
    assert services.tickets.admitted == []
    assert await refused(stream_owner(services, f"Bearer {FORGED}", "ann", {})) == (
        "Invalid token."
    )
    # A ticket, its cookie set on a first use only.
    assert await stream_owner(services, None, "ann", {}) == (
        TOKENS.verify(ANN),
        ("resume", "ann", 60),
    )
    assert await stream_owner(services, "", "ann", {"resume": "ann"}) == (TOKENS.verify(ANN), None)
    assert await refused(stream_owner(services, None, "gone", {})) == ACCOUNT_GONE
    assert services.tickets.admitted == ["ann", "ann", "gone"]
    for header, ticket in ((None, None), ("", "")):
        assert await refused(stream_owner(services, header, ticket, {})) == MISSING_CREDENTIAL


async def test_a_user_that_is_gone_is_refused_like_a_bad_token() -> None:
    services = known_services()
    claims = await connection_init(services, {"authToken": ANN}, None)
    assert claims == TOKENS.verify(ANN)
    with pytest.raises(Unauthenticated) as raised:
        await connection_init(services, {"authToken": GONE}, None)
    assert raised.value.message == ACCOUNT_GONE
    with pytest.raises(Unauthenticated) as raised:
        await connection_init(services, {"authToken": FORGED}, None)
    assert raised.value.message == "Invalid token."
