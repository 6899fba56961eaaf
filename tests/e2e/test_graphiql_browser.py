"""GraphiQL in headless Chromium at 1,280 by 800 pixels: sign up from its bar, run the welcome
document as it stands (a subscription over Server-Sent Events), see an event arrive, and
stop it, quietly. Screenshots of each state go to tests/e2e/screenshots/."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import screenshot
from tests.helpers.browser import expect
from tests.helpers.server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PASSWORD = "correct horse battery staple"


def open_graphiql(chromium: Any, server: LiveServer) -> tuple[Any, list[str]]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/graphql")
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    return page, errors


def results_text(page: Any) -> str:
    text: str = page.locator(".result-window").inner_text()
    return text


def test_sign_up_subscribe_and_stop(chromium: Any, live_server: LiveServer) -> None:
    page, errors = open_graphiql(chromium, live_server)
    bar = page.locator("#login")

    # Nothing of the welcome document is cut at the editor's edge.
    overflow = page.evaluate(
        """() => {
            const scroller = document.querySelector('.graphiql-query-editor .CodeMirror-scroll');
            return scroller.scrollWidth - scroller.clientWidth;
        }"""
    )
    assert overflow <= 0, f"the welcome document is {overflow}px wider than its editor"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280

    # A wrong password is refused in words.
    bar.get_by_placeholder("Email").fill(f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    bar.get_by_placeholder("Password").fill("not the password")
    bar.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_have_text("Invalid email or password.")
    screenshot(page, "graphiql-wrong-password")

    # Sign up from the bar: that logs in too.
    email = f"graphiql-{uuid.uuid4().hex[:8]}@example.com"
    bar.get_by_placeholder("Email").fill(email)
    bar.get_by_placeholder("Password").fill(PASSWORD)
    bar.get_by_placeholder("Name (to sign up)").fill("Grace")
    bar.get_by_role("button", name="Sign up").click()
    expect(page.locator("#who")).to_have_text("Grace")
    expect(page.locator("#login-fields")).to_be_hidden()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.locator("#login-error")).to_be_empty()
    screenshot(page, "graphiql-signed-up")

    # The welcome document runs as it stands: one subscription, streaming.
    page.locator(".graphiql-execute-button").click()
    token, _ = live_server.signup_and_login(name="Poster")
    title = f"Seen in GraphiQL {uuid.uuid4().hex[:6]}"
    # The stream may open a moment after the click: post until the event shows.
    for _ in range(20):
        live_server.create_post(token, title)
        try:
            expect(page.locator(".result-window")).to_contain_text(title, timeout=1_500)
            break
        except AssertionError:
            continue
    expect(page.locator(".result-window")).to_contain_text('"action": "CREATED"')
    screenshot(page, "graphiql-subscription-running")

    # Stop: the subscription ends, its last results stay, and no error replaces them.
    page.locator(".graphiql-execute-button").click()
    page.wait_for_timeout(1_000)
    shown = results_text(page)
    assert "AbortError" not in shown
    assert "error" not in shown.lower(), shown
    assert title in shown
    screenshot(page, "graphiql-stopped")
    live_server.create_post(token, "After the stop, not shown")
    page.wait_for_timeout(1_000)
    assert "After the stop" not in results_text(page)
    assert not errors, errors


def test_signing_up_needs_a_name(chromium: Any, live_server: LiveServer) -> None:
    page, errors = open_graphiql(chromium, live_server)
    bar = page.locator("#login")
    bar.get_by_placeholder("Email").fill(f"noname-{uuid.uuid4().hex[:8]}@example.com")
    bar.get_by_placeholder("Password").fill(PASSWORD)
    bar.get_by_role("button", name="Sign up").click()
    expect(page.locator("#login-error")).to_have_text("Enter a name to sign up.")
    assert not errors, errors
