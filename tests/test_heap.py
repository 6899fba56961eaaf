"""The collector settings applied while the server runs."""

from __future__ import annotations

import gc

from gql_feed import heap


def test_settled_freezes_start_up_objects_and_restores_the_collector_after() -> None:
    thresholds = gc.get_threshold()
    with heap.settled():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *thresholds[1:])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds
