"""The browser client end to end: two people in headless Chromium against a real server.

A writes, edits and deletes a post; B sees each change live, without reloading. Then the
server restarts under B: B's live indicator goes to "connecting", comes back to "live",
resumes its subscription, and still sees A's next post.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "correct horse battery staple"
LIVE_TIMEOUT_MS = 30_000  # a restart plus a few backoff steps


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def png(tmp_path: Path) -> Path:
    """A small but real PNG: a blue field with an orange square."""
    path = tmp_path / "square.png"
    image = Image.new("RGB", (160, 100), (40, 90, 200))
    ImageDraw.Draw(image).rectangle((50, 20, 110, 80), fill=(240, 140, 30))
    image.save(path, format="PNG")
    return path


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


def test_two_people_see_each_others_posts_live(browser: Any, live_server: Any, png: Path) -> None:
    alice = open_person(browser, live_server.url, "Alice")
    bob = open_person(browser, live_server.url, "Bobby")
    sign_up_and_log_in(alice)
    sign_up_and_log_in(bob)

    status = bob.page.locator("#status-form")
    status.locator('input[name="status"]').fill("Watching the feed")
    status.get_by_role("button", name="Update").click()
    expect(bob.page.locator("#current-status")).to_have_text("Watching the feed")

    # --- create: B sees it once, with its image, and cannot edit it
    title = f"Hello from Alice {uuid.uuid4().hex[:6]}"
    content = "A first post, with a picture of a square."
    post_id = create_post(alice, title, content, png)

    seen = bob.post(post_id)
    expect(seen).to_have_count(1)
    expect(seen.locator("h2")).to_have_text(title)
    expect(seen.locator("p.content")).to_have_text(content)
    expect(seen.locator("img")).to_have_attribute("alt", title)
    expect(seen.get_by_role("button", name="Edit")).to_have_count(0)
    expect(seen.get_by_role("button", name="Delete")).to_have_count(0)
    expect_image_loaded(bob, post_id)
    expect_image_loaded(alice, post_id)
    expect(alice.post(post_id).get_by_role("button", name="Edit")).to_have_count(1)
    expect(alice.post(post_id).get_by_role("button", name="Delete")).to_have_count(1)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    alice.page.screenshot(path=str(SCREENSHOTS / "alice-after-create.png"), full_page=True)
    bob.page.screenshot(path=str(SCREENSHOTS / "bobby-after-create.png"), full_page=True)

    # --- edit: B sees the new title in place
    new_title = f"Edited by Alice {uuid.uuid4().hex[:6]}"
    mine = alice.post(post_id)
    mine.get_by_role("button", name="Edit").click()
    editor = mine.locator("form.edit-post")
    editor.locator('input[name="title"]').fill(new_title)
    editor.get_by_role("button", name="Save").click()
    expect(editor).to_have_count(0)
    expect(seen.locator("h2")).to_have_text(new_title)
    expect(seen.locator("img")).to_have_attribute("alt", new_title)
    # By now A has received its own CREATED and UPDATED events too: still one copy each.
    expect(mine).to_have_count(1)
    expect(seen).to_have_count(1)

    # --- delete: it leaves both feeds
    alice.page.once("dialog", lambda dialog: dialog.accept())
    mine.get_by_role("button", name="Delete").click()
    expect(seen).to_have_count(0)
    expect(mine).to_have_count(0)

    # --- the server restarts under B: B reconnects and resumes
    record_live_states(bob)
    live_server.restart()
    bob.page.wait_for_function(
        "() => window.__liveStates.includes('connecting')", timeout=LIVE_TIMEOUT_MS
    )
    expect(bob.live_status).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)
    expect(alice.live_status).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)
    expect(seen).to_have_count(0)  # the replay did not bring the deleted post back

    second_title = f"After the restart {uuid.uuid4().hex[:6]}"
    second_id = create_post(alice, second_title, "Still here, still live.", png)
    expect(bob.post(second_id)).to_have_count(1)
    expect(bob.post(second_id).locator("h2")).to_have_text(second_title)
    expect_image_loaded(bob, second_id)
    expect(alice.post(second_id)).to_have_count(1)

    bob.page.screenshot(path=str(SCREENSHOTS / "bobby-after-restart.png"), full_page=True)
    assert not alice.errors, alice.errors
    assert not bob.errors, bob.errors
