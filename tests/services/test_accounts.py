"""Accounts: signup rules, login, tokens, me/user/updateStatus (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from tests.helpers.asgi import PASSWORD, codes, gql, login, signup, user_with_token
from tests.helpers.server import TEST_SECRET

ME = "{ me { id name email status createdAt } }"


async def test_signup_login_and_me(client: httpx.AsyncClient) -> None:
    email = f"Mixed.{uuid.uuid4().hex[:6]}@Example.COM"
    user_id = await signup(client, email, "  Ann  ")
    body = await login(client, email.lower())
    payload = body["data"]["login"]
    assert payload["user"] == {"id": user_id, "email": email.lower()}
    expires = datetime.fromisoformat(payload["expiresAt"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)

    me = (await gql(client, ME, token=payload["token"]))["data"]["me"]
    assert me["name"] == "Ann"
    assert me["status"] == "I am new!"
    assert me["email"] == email.lower()


async def test_email_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    await signup(client, email)
    body = await gql(
        client,
        "mutation($i: SignupInput!) { signup(input: $i) { id } }",
        {"i": {"email": email.upper(), "name": "Bob", "password": PASSWORD}},
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "email" in body["errors"][0]["extensions"]["fields"]


async def test_signup_lists_each_bad_field(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        "mutation($i: SignupInput!) { signup(input: $i) { id } }",
        {"i": {"email": "not-an-email", "name": "   ", "password": "short"}},
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert set(body["errors"][0]["extensions"]["fields"]) == {"email", "name", "password"}


async def test_unknown_email_and_wrong_password_answer_alike(client: httpx.AsyncClient) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    await signup(client, email)
    wrong_password = await login(client, email, "wrong password!")
    unknown = await login(client, f"nobody-{email}")
    assert codes(wrong_password) == codes(unknown) == ["UNAUTHENTICATED"]
    assert wrong_password["errors"][0]["message"] == unknown["errors"][0]["message"]


async def test_update_status_and_user_query(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    body = await gql(
        client, 'mutation { updateStatus(status: "  Busy  ") { id status } }', token=token
    )
    assert body["data"]["updateStatus"] == {"id": user_id, "status": "Busy"}
    other_token, _ = await user_with_token(client, "Bob")
    seen = await gql(
        client,
        "query($id: ID!) { user(id: $id) { name status email } }",
        {"id": user_id},
        other_token,
    )
    assert seen["data"]["user"] == {"name": "Ann", "status": "Busy", "email": None}
    missing = await gql(client, '{ user(id: "999999") { id } }', token=token)
    assert missing["data"]["user"] is None
    blank = await gql(client, 'mutation { updateStatus(status: " ") { id } }', token=token)
    assert codes(blank) == ["BAD_USER_INPUT"]


def forged(claims: dict[str, object], key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


async def test_bad_tokens_are_unauthenticated(client: httpx.AsyncClient) -> None:
    _, user_id = await user_with_token(client)
    now = datetime.now(UTC)
    good = {"sub": user_id, "iss": "gql_feed", "aud": "gql_feed", "exp": now + timedelta(hours=1)}
    header, payload, _ = forged(good).split(".")
    tokens = {
        "expired": forged({**good, "exp": now - timedelta(seconds=5)}),
        "wrong key": forged(good, key="another-secret-0123456789abcdef0123456789"),
        "wrong issuer": forged({**good, "iss": "someone-else"}),
        "wrong audience": forged({**good, "aud": "someone-else"}),
        "wrong algorithm": forged(good, algorithm="HS512"),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "no signature": f"{header}.{payload}.",
        "malformed": "not.a.token",
        "garbage": "%%%",
    }
    for name, token in tokens.items():
        body = await gql(client, ME, token=token)
        assert codes(body) == ["UNAUTHENTICATED"], name
    no_token = await gql(client, ME)
    assert codes(no_token) == ["UNAUTHENTICATED"]
    response = await client.post(
        "/graphql", json={"query": ME}, headers={"authorization": "Basic abc"}
    )
    assert codes(response.json()) == ["UNAUTHENTICATED"]
