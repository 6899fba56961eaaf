"""The browser and a picture to upload, shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.helpers.browser import launched


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as chromium:
        yield chromium


@pytest.fixture
def png(tmp_path: Path) -> Path:
    """A small but real PNG: a blue field with an orange square."""
    path = tmp_path / "square.png"
    image = Image.new("RGB", (160, 100), (40, 90, 200))
    ImageDraw.Draw(image).rectangle((50, 20, 110, 80), fill=(240, 140, 30))
    image.save(path, format="PNG")
    return path
