"""The browser client end to end: two people in headless Chromium against a real server.

A writes, edits and deletes a post; B sees each change live, without reloading. Then the
server restarts under B: B's live indicator goes to "connecting", comes back to "live",
resumes its subscription, and still sees A's next post.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.browser import (
    LIVE_TIMEOUT_MS,
    create_post,
    expect,
    expect_image_loaded,
    open_person,
    record_live_states,
    sign_up_and_log_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SCREENSHOTS = Path(__file__).parent / "screenshots"


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
