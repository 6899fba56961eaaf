"""The collector settings applied once the server has started."""

from __future__ import annotations

import gc

from gql_feed import heap


def test_settle_freezes_start_up_objects_and_unsettle_hands_them_back() -> None:
    threshold = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
        heap.unsettle()
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
