"""The web client's page carries headers that keep other sites and injected code out."""

from __future__ import annotations

import httpx

from gql_feed.config import Settings
from tests.helpers.asgi import app_client


def directives(policy: str) -> dict[str, str]:
    return {
        name: value.strip()
        for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))
    }


async def test_the_page_has_its_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == "'none'"
    # Only the page's own scripts and styles: nothing inline, nothing from elsewhere.
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_images_may_come_from_the_public_url(settings: Settings) -> None:
    """`imageUrl`s are absolute, on GQL_FEED_PUBLIC_URL, which may be another origin."""
    async with app_client(settings, public_url="https://media.example.com/feed/") as http:
        policy = directives((await http.get("/")).headers["content-security-policy"])
    assert policy["img-src"].split() == ["'self'", "https://media.example.com", "blob:", "data:"]


async def test_graphiql_has_a_policy_of_its_own(client: httpx.AsyncClient) -> None:
    """GraphiQL's editor needs inline styles, which the page's policy forbids: it gets its
    own, which still runs only this server's scripts and cannot be framed."""
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert policy != (await client.get("/")).headers["content-security-policy"]
