"""The `spans` fixture (tests/helpers/spans.py) for every test of this folder."""

from tests.helpers.spans import spans  # noqa: F401
