"""The files `make test` starts with (tests/helpers/suite_order.py) are files of this suite: a
renamed one would silently lose its place and could again be left running alone last."""

from __future__ import annotations

from tests.helpers.paths import REPO
from tests.helpers.suite_order import LONGEST_FIRST


def test_the_longest_files_exist() -> None:
    missing = [path for path in LONGEST_FIRST if not (REPO / path).is_file()]
    assert not missing, f"renamed or gone: update tests/helpers/suite_order.py: {missing}"
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
