"""Headless Chromium for the end-to-end tests, and what a person does on the web client.

The browser is looked up the way .ci/run checks for it (`command -v chromium`), on the
PATH. Without playwright or Chromium the browser tests skip, except under
REQUIRE_SERVICES=1 (CI), where they fail instead of hiding.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.services import required

PASSWORD = "correct horse battery staple"
LIVE_TIMEOUT_MS = 30_000  # a restart plus a few backoff steps
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(message: str) -> None:
    """Skip, or fail under REQUIRE_SERVICES=1: CI must never pass by skipping the browser."""
    if required():
        pytest.fail(message + " and REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message, allow_module_level=True)


try:
    from playwright import sync_api
except ImportError as error:  # pragma: no cover - only where the dev extra is missing
    unavailable(f"playwright is not installed ({error})")

expect = sync_api.expect


def chromium() -> str:
    """Chromium's path, found on the PATH as .ci/run finds it."""
    path = shutil.which("chromium")
    if path is None:
        unavailable("chromium is not on the PATH: apt-get install -y chromium")
        raise AssertionError("unreachable")
    return path


@contextmanager
def launched() -> Iterator[Any]:
    """One headless Chromium for a module's tests."""
    executable = chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Person:
    """One browser context with its page, and the script errors the page raised."""

    name: str
    email: str
    page: Any
    errors: list[str] = field(default_factory=list)

    def post(self, post_id: str) -> Any:
        return self.page.locator(f'article.post[data-post-id="{post_id}"]')

    @property
    def live_status(self) -> Any:
        return self.page.locator("#live-status")


def open_person(browser: Any, base_url: str, name: str) -> Person:
    context = browser.new_context(base_url=base_url, viewport={"width": 1024, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    person = Person(
        name=name, email=f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.com", page=page
    )
    page.on("pageerror", lambda error: person.errors.append(str(error)))
    # Printed, so a failing run shows what the page logged.
    page.on("console", lambda msg: print(f"[{name} console.{msg.type}] {msg.text}"))
    page.goto("/")
    return person


def sign_up_and_log_in(person: Person) -> None:
    """Signs up (which logs in), logs out, fails one login, then logs in for real."""
    page = person.page
    signup = page.locator("#signup-form")
    signup.locator('input[name="email"]').fill(person.email)
    signup.locator('input[name="name"]').fill(person.name)
    signup.locator('input[name="password"]').fill(PASSWORD)
    signup.get_by_role("button", name="Sign up").click()
    expect(page.locator("#feed-view")).to_be_visible()
    expect(page.locator("#account-name")).to_have_text(person.name)

    page.get_by_role("button", name="Log out").click()
    login = page.locator("#login-form")
    expect(login).to_be_visible()
    expect(person.live_status).to_have_attribute("data-state", "offline")

    # A refused login is reported on the form, not swallowed.
    login.locator('input[name="email"]').fill(person.email)
    login.locator('input[name="password"]').fill(PASSWORD + " but wrong")
    login.get_by_role("button", name="Log in").click()
    expect(login.locator(".form-error")).to_be_visible()
    expect(login.locator(".form-error")).not_to_be_empty()

    login.locator('input[name="password"]').fill(PASSWORD)
    login.get_by_role("button", name="Log in").click()
    expect(page.locator("#feed-view")).to_be_visible()
    expect(page.locator("#login-form")).to_be_hidden()
    expect(person.live_status).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)


def create_post(person: Person, title: str, content: str, image: Path) -> str:
    """Creates a post through the form and returns its id, read off the new article."""
    page = person.page
    form = page.locator("#create-post")
    form.locator('input[name="title"]').fill(title)
    form.locator('[name="content"]').fill(content)
    form.locator('input[name="image"]').set_input_files(str(image))
    expect(form.locator("img.preview")).to_be_visible()  # previewed before the upload
    form.get_by_role("button", name="Publish").click()
    article = page.locator("article.post").filter(has=page.get_by_role("heading", name=title))
    try:
        expect(article).to_have_count(1)
    except AssertionError as error:
        # Say what the page said: the form's error and the message region.
        shown = form.locator(".form-error").text_content(), page.locator("#messages").text_content()
        raise AssertionError(f"{person.name}'s post did not appear; page said {shown}") from error
    expect(form.locator('input[name="title"]')).to_have_value("")  # the form was reset
    post_id = article.get_attribute("data-post-id")
    assert post_id
    return post_id


def expect_image_loaded(person: Person, post_id: str) -> None:
    person.post(post_id).locator("img").scroll_into_view_if_needed()
    person.page.wait_for_function(
        """id => {
            const img = document.querySelector(`article.post[data-post-id="${id}"] img`);
            return Boolean(img && img.complete && img.naturalWidth > 0);
        }""",
        arg=post_id,
    )


def record_live_states(person: Person) -> None:
    """Keeps every data-state the indicator takes, so a brief "connecting" is not missed."""
    person.page.evaluate(
        """() => {
            const el = document.getElementById("live-status");
            window.__liveStates = [el.dataset.state];
            new MutationObserver(() => window.__liveStates.push(el.dataset.state))
                .observe(el, { attributes: true, attributeFilter: ["data-state"] });
        }"""
    )
