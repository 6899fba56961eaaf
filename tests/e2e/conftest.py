"""The browser, a picture to upload, and the folder screenshots go to, for the end-to-end
tests. The browser is found and launched as `tests.helpers.browser` says: without it the
tests skip, except under REQUIRE_SERVICES=1, where they fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.helpers.browser import launched

# Git-ignored: written by each run, for a person to look at.
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def chromium(browser: Any) -> Any:
    """The same browser, by the name the GraphiQL and error-state tests use."""
    return browser


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@pytest.fixture
def png(tmp_path: Path) -> Path:
    """A small but real PNG: a blue field with an orange square."""
    path = tmp_path / "square.png"
    image = Image.new("RGB", (160, 100), (40, 90, 200))
    ImageDraw.Draw(image).rectangle((50, 20, 110, 80), fill=(240, 140, 30))
    image.save(path, format="PNG")
    return path
