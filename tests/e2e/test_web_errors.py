"""The web client's error states in headless Chromium: what a person reads when a login
fails or a post lacks its image, and that the message goes once the image is chosen.
Screenshots of each state go to tests/e2e/screenshots/."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import screenshot
from tests.helpers.browser import expect
from tests.helpers.server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PASSWORD = "correct horse battery staple"


def test_error_states(chromium: Any, live_server: LiveServer, tmp_path: Path) -> None:
    context = chromium.new_context(viewport={"width": 1024, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.url)

    email = f"web-{uuid.uuid4().hex[:8]}@example.com"
    signup = page.locator("#signup-form")
    signup.locator('input[name="email"]').fill(email)
    signup.locator('input[name="name"]').fill("Wendy")
    signup.locator('input[name="password"]').fill(PASSWORD)
    signup.get_by_role("button", name="Sign up").click()
    expect(page.locator("#feed-view")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    # A wrong password: the server's words, without its code.
    login = page.locator("#login-form")
    login.locator('input[name="email"]').fill(email)
    login.locator('input[name="password"]').fill("not the password")
    login.get_by_role("button", name="Log in").click()
    summary = login.locator(".form-error")
    expect(summary).to_have_text("Invalid email or password.")
    expect(summary).to_have_attribute("data-code", "UNAUTHENTICATED")
    screenshot(page, "web-wrong-password")

    login.locator('input[name="password"]').fill(PASSWORD)
    login.get_by_role("button", name="Log in").click()
    expect(page.locator("#feed-view")).to_be_visible()

    # A post without its image: the field says so, and the summary asks for a correction.
    form = page.locator("#create-post")
    form.locator('input[name="title"]').fill("A post with no image yet")
    form.locator('[name="content"]').fill("Its image comes next.")
    form.get_by_role("button", name="Publish").click()
    field_error = form.locator(".field-error")
    expect(field_error).to_have_text("Choose an image for the post.")
    expect(form.locator(".form-error")).to_have_text("Please correct the marked fields.")
    screenshot(page, "web-missing-image")

    # Choosing the file answers both messages.
    image = tmp_path / "dot.png"
    Image.new("RGB", (120, 80), (200, 60, 40)).save(image)
    form.locator('input[name="image"]').set_input_files(str(image))
    expect(field_error).to_have_count(0)
    expect(form.locator(".form-error")).to_be_hidden()
    expect(form.locator('input[name="image"]')).not_to_have_attribute("aria-invalid", "true")
    expect(form.locator("img.preview")).to_be_visible()
    screenshot(page, "web-image-chosen")

    # The file picker is drawn like the page's own controls, not the browser's default.
    look = page.evaluate(
        """() => {
            const input = document.querySelector('#create-post input[type=file]');
            const button = getComputedStyle(input, '::file-selector-button');
            const accent = getComputedStyle(document.documentElement)
                .getPropertyValue('--accent').trim();
            return { frame: getComputedStyle(input).borderTopStyle,
                     buttonBorder: button.borderTopColor, buttonText: button.color, accent };
        }"""
    )
    assert look["frame"] == "dashed", look
    assert look["buttonBorder"] == look["buttonText"], look  # the accent, on both
    assert look["buttonText"] != "rgb(0, 0, 0)", look

    form.get_by_role("button", name="Publish").click()
    expect(page.locator("article.post").filter(has_text="A post with no image yet")).to_have_count(
        1
    )
    assert not errors, errors
