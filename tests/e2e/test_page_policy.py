"""The web client still works, whole, under the Content-Security-Policy `/` is served with.

A browser enforces the policy, so this is the test that it allows everything the page
needs (its scripts and styles, fetch and the WebSocket to its own origin, images from
/uploads, the preview of a chosen file) and that nothing the page does is reported as a
violation.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import browser as ui

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_page_works_under_its_policy(browser: Any, live_server: Any, png: Path) -> None:
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    name = "Carol"
    person = ui.Person(name=name, email=f"carol-{uuid.uuid4().hex[:10]}@example.com", page=page)
    page.on("pageerror", lambda error: person.errors.append(str(error)))
    page.on("console", lambda msg: print(f"[{name} console.{msg.type}] {msg.text}"))

    response = page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert response.headers["x-frame-options"] == "DENY"

    ui.sign_up_and_log_in(person)  # fetch to /graphql, and the WebSocket goes live
    post_id = ui.create_post(
        person, f"Under the policy {uuid.uuid4().hex[:6]}", "Still works.", png
    )
    ui.expect_image_loaded(person, post_id)

    # An injected inline script is exactly what the policy stops.
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__injected = true";
            document.body.append(script);
        }"""
    )
    page.wait_for_function("() => window.__cspViolations.length > 0")
    assert page.evaluate("() => window.__injected") is None
    violations = page.evaluate("() => window.__cspViolations")
    assert violations == ["script-src-elem inline"], violations
    assert not person.errors, person.errors
    context.close()
