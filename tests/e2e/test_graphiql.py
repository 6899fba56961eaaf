"""GraphiQL offline: headless Chromium may reach the server and nothing else. The page
loads (no CDN), a newcomer logs in from its login bar and runs the example subscription,
and an event from a post that another user creates appears in the result pane."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.helpers.browser import expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PASSWORD = "correct horse battery"  # what LiveServer.signup_and_login uses


def test_subscription_in_graphiql_without_internet(browser: Any, live_server: Any) -> None:
    email = f"newcomer-{uuid.uuid4().hex[:10]}@example.com"
    live_server.signup_and_login(email, "Newcomer")
    writer, _ = live_server.signup_and_login(None, "Writer")

    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(20_000)
    blocked: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and "sourceMappingURL" not in msg.text
            else None
        ),
    )
    page.goto("/graphql")
    expect(page.locator(".graphiql-container .graphiql-editors")).to_be_visible()

    login = page.locator("#login")
    login.locator('input[name="email"]').fill(email)
    login.locator('input[name="password"]').fill(PASSWORD)
    login.get_by_role("button", name="Log in").click()
    expect(page.locator("#who")).to_have_text("Newcomer")

    # The example in the editor is `subscription { postEvents { … } }`: run it.
    page.locator(".graphiql-execute-button").click()
    wait_for_a_subscription(live_server)
    title = f"Seen in GraphiQL {uuid.uuid4().hex[:6]}"
    live_server.create_post(writer, title)
    response = page.locator(".graphiql-response")
    expect(response).to_contain_text(title)
    expect(response).to_contain_text('"action": "CREATED"')
    page.locator(".graphiql-execute-button").click()  # stop

    assert blocked == [], blocked
    assert problems == [], problems
    context.close()


def wait_for_a_subscription(server: Any) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        if "gql_feed_live_subscriptions 1.0" in metrics:
            return
        time.sleep(0.1)
    raise AssertionError("GraphiQL's subscription never reached the server")
