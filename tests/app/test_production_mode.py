"""Production mode (GQL_FEED_PRODUCTION=true): nothing about the schema or the server's
insides is given away, browsers are let in only from the configured origins, and the
server will not start with a weak signing key."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse, specified_rules, validate

from gql_feed.config import ConfigError, Settings
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import HideSuggestions
from gql_feed.services.posts import PostService
from tests.helpers.asgi import app_client, codes, gql, user_with_token
from tests.helpers.server import REAL_PASSWORD_COST, LiveServer, server_environ

ORIGIN = "https://app.example.com"

# Each typo has exactly one close name in the schema, which a suggestion would reveal.
TYPOS: list[tuple[str, dict[str, Any] | None]] = [
    ("{ me { nme } }", None),
    ("{ postz(id: 1) { id } }", None),
    ("{ posts(perPge: 2) { totalPosts } }", None),
    ('mutation { updatePost(id: "1", input: {titel: "x"}) { id } }', None),
    ("query($p: Strin) { __typename }", None),
    # Only found when the variable is coerced, at execution.
    (
        "mutation($i: UpdatePostInput!) { updatePost(id: 1, input: $i) { id } }",
        {"i": {"titel": "x"}},
    ),
]


async def test_introspection_is_off_in_production(settings: Settings) -> None:
    async with app_client(settings, production=True) as http:
        for query in (
            "{ __schema { types { name } } }",
            '{ __type(name: "User") { fields { name } } }',
            "query { ... on Query { __schema { queryType { name } } } }",
        ):
            body = await gql(http, query)
            assert "data" not in body, query
            assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}, query
            assert "introspection has been disabled" in body["errors"][0]["message"]
        # Clients (Apollo's cache) add __typename everywhere: that stays.
        assert await gql(http, "{ __typename }") == {"data": {"__typename": "Query"}}
    async with app_client(settings) as http:
        body = await gql(http, '{ __type(name: "User") { name } }')
        assert body == {"data": {"__type": {"name": "User"}}}


async def test_no_suggestions_in_production(settings: Settings) -> None:
    async with app_client(settings, production=True) as http:
        token, _ = await user_with_token(http)
        for query, variables in TYPOS:
            body = await gql(http, query, variables, token)
            assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}, body
            for error in body["errors"]:
                assert "Did you mean" not in error["message"], error
                assert error["message"].endswith("."), error
    # In development they help.
    async with app_client(settings) as http:
        token, _ = await user_with_token(http)
        for query, variables in TYPOS:
            body = await gql(http, query, variables, token)
            assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}, body
            assert any("Did you mean" in error["message"] for error in body["errors"]), body


def test_hide_suggestions_rule_reaches_graphql_core() -> None:
    """The WebSocket endpoint validates with the same rules but formats errors itself, so
    the rule (not only the HTTP error formatting) must keep the hints out."""
    schema = build_schema([])._schema
    document = parse(
        'query Q { me { nme } postz } mutation M { updatePost(id: 1, input: {titel: "x"}) { id } }'
    )
    plain = [error.message for error in validate(schema, document)]
    hidden = [
        error.message for error in validate(schema, document, [*specified_rules, HideSuggestions])
    ]
    assert len(plain) == len(hidden) >= 3
    assert all("Did you mean" in message for message in plain), plain
    assert not any("Did you mean" in message for message in hidden), hidden


async def test_graphiql_only_in_development(settings: Settings) -> None:
    html = {"accept": "text/html"}
    async with app_client(settings) as http:
        response = await http.get("/graphql", headers=html)
        assert response.status_code == 200
        assert "graphiql" in response.text.lower()
    async with app_client(settings, production=True) as http:
        response = await http.get("/graphql", headers=html)
        assert response.status_code == 404
        assert "graphiql" not in response.text.lower()


@pytest.mark.parametrize("production", [False, True])
async def test_internal_errors_are_masked(
    settings: Settings, production: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError('relation "posts" does not exist: SELECT secret FROM posts')

    monkeypatch.setattr(PostService, "page", broken)
    async with app_client(settings, production=production) as http:
        token, _ = await user_with_token(http)
        response = await http.post(
            "/graphql",
            json={"query": "{ posts { totalPosts } }"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        body = response.json()
        assert codes(body) == ["INTERNAL_SERVER_ERROR"]
        assert body["errors"][0]["message"] == "Internal server error."
        assert "SELECT" not in response.text
        assert "Traceback" not in response.text
        assert set(body["errors"][0]) == {"message", "locations", "path", "extensions"}


async def test_cors_origins_come_from_settings(settings: Settings) -> None:
    preflight = {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with app_client(settings, production=True, cors_origins=[ORIGIN]) as http:
        response = await http.options("/graphql", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        response = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": ORIGIN}
        )
        assert response.headers["access-control-allow-origin"] == ORIGIN
        # Another site gets no permission.
        evil = {**preflight, "origin": "https://evil.example"}
        response = await http.options("/graphql", headers=evil)
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        response = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": evil["origin"]}
        )
        assert "access-control-allow-origin" not in response.headers
    # A refusal still carries CORS headers, so the browser app can show it.
    async with app_client(settings, cors_origins=[ORIGIN], max_request_bytes=100) as http:
        response = await http.post(
            "/graphql",
            json={"query": "{ __typename }", "pad": "x" * 200},
            headers={"origin": ORIGIN},
        )
        assert response.status_code == 413
        assert response.headers["access-control-allow-origin"] == ORIGIN
    # No origins configured: no cross-origin browser access at all.
    async with app_client(settings) as http:
        response = await http.options("/graphql", headers=preflight)
        assert "access-control-allow-origin" not in response.headers


# The signing key.


def test_settings_demand_a_strong_key_in_production() -> None:
    def make(secret: str | None) -> Settings:
        return Settings(production=True, jwt_secret=secret, _env_file=None)  # type: ignore[arg-type, call-arg]

    for weak in (None, "", "x" * 31, "é" * 15):
        with pytest.raises(ConfigError, match="GQL_FEED_JWT_SECRET of at least 32 bytes"):
            make(weak)
    assert make("é" * 16).production  # 32 bytes in UTF-8
    # Development still generates its own key.
    assert Settings(jwt_secret=None, _env_file=None).production is False  # type: ignore[call-arg]


# The password hashes' cost.


def test_production_refuses_a_password_cost_below_owasps_least() -> None:
    """Development may hash cheaply (the tests' servers do); production mode refuses less
    than 19 MiB or fewer than 2 passes, and says which settings to raise."""

    def make(memory_kib: int, passes: int) -> Settings:
        return Settings(
            production=True,
            jwt_secret="k" * 32,  # type: ignore[arg-type]
            password_hash_memory_kib=memory_kib,
            password_hash_passes=passes,
            _env_file=None,  # type: ignore[call-arg]
        )

    for memory_kib, passes in ((19_455, 2), (19_456, 1), (32, 1)):
        with pytest.raises(ConfigError, match="GQL_FEED_PASSWORD_HASH_MEMORY_KIB=19456 and "):
            make(memory_kib, passes)
    assert make(19_456, 2).production
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.password_hash_memory_kib, defaults.password_hash_passes) == (65_536, 3)
    cheap = Settings(password_hash_memory_kib=32, password_hash_passes=1, _env_file=None)  # type: ignore[call-arg]
    assert cheap.production is False


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gql_feed", "serve", "--port", "1"],
        env=server_environ(GQL_FEED_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/feed.db", **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("secret", [None, "too-short-a-secret"])
def test_server_refuses_to_start_without_a_strong_key(tmp_path: Path, secret: str | None) -> None:
    env = {"GQL_FEED_PRODUCTION": "true"}
    if secret is not None:
        env["GQL_FEED_JWT_SECRET"] = secret
    result = serve(tmp_path, **env)
    assert result.returncode == 2
    assert "GQL_FEED_JWT_SECRET" in result.stderr
    assert "at least 32 bytes" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr  # says how to make one
    assert "Traceback" not in result.stderr
    assert secret is None or secret not in result.stderr
    assert not (tmp_path / "feed.db").exists()  # refused before touching anything
    assert not (tmp_path / ".gql_feed_secret").exists()


def test_bad_settings_are_reported_by_name(tmp_path: Path) -> None:
    result = serve(tmp_path, GQL_FEED_MAX_QUERY_DEPTH="deep")
    assert result.returncode == 2
    assert "GQL_FEED_MAX_QUERY_DEPTH" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_server(live_server_factory: Callable[..., LiveServer]) -> None:
    """A real server in production mode, with a strong key, starts and keeps its secrets."""
    server = live_server_factory(GQL_FEED_PRODUCTION="true", **REAL_PASSWORD_COST)
    token, _ = server.signup_and_login()
    body = server.graphql("{ __schema { queryType { name } } }", token=token)
    assert body.get("data") is None
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    body = server.graphql("{ me { nme } }", token=token)
    assert "Did you mean" not in body["errors"][0]["message"]
    assert server.graphql("{ me { id } }", token=token)["data"]["me"]["id"]
    response = httpx.get(server.graphql_url, headers={"accept": "text/html"})
    assert response.status_code == 404
