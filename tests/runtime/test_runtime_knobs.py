"""Process-wide knobs (the GIL switch interval, the collector) held by several apps at once.

Each app's lifespan holds them; two apps in one process (tests, an embedding server) must
not undo each other: the first to start applies them, the last to stop restores them.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from gql_feed.app import create_app
from gql_feed.config import Settings
from gql_feed.runtime import heap
from gql_feed.runtime.process_wide import ProcessWide
from gql_feed.runtime.switching import SWITCH_INTERVAL, prompt_threads
from tests.helpers.server import TEST_SECRET


class Knob:
    """A stand-in process setting that records what was done to it."""

    def __init__(self) -> None:
        self.value = "original"
        self.calls: list[str] = []

    def apply(self, value: str) -> Any:
        before = self.value
        self.value = value
        self.calls.append(f"apply {value}")

        def restore() -> None:
            self.value = before
            self.calls.append(f"restore {before}")

        return restore


def test_the_first_holder_applies_and_the_last_restores_in_any_order() -> None:
    knob = Knob()
    shared: ProcessWide[str] = ProcessWide("the knob", knob.apply)
    first = shared.held("fast")
    second = shared.held("fast")
    first.__enter__()
    second.__enter__()
    assert (knob.value, shared.holders) == ("fast", 2)
    first.__exit__(None, None, None)  # the first leaves before the second
    assert (knob.value, shared.holders) == ("fast", 1)
    second.__exit__(None, None, None)
    assert (knob.value, shared.holders, shared.value) == ("original", 0, None)
    assert knob.calls == ["apply fast", "restore original"]

    with shared.held("slow"):  # and once everyone left, a new holder applies again
        assert knob.value == "slow"
    assert knob.calls[-2:] == ["apply slow", "restore original"]


def test_a_later_holder_asking_for_other_values_gets_the_first_ones_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    knob = Knob()
    shared: ProcessWide[str] = ProcessWide("the knob", knob.apply)
    with shared.held("fast"), caplog.at_level(logging.WARNING), shared.held("slow"):
        assert knob.value == "fast"
    assert knob.value == "original"
    assert knob.calls == ["apply fast", "restore original"]
    assert "the knob is already 'fast'" in caplog.text


def test_holders_on_many_threads_apply_once_and_restore_once() -> None:
    knob = Knob()
    shared: ProcessWide[str] = ProcessWide("the knob", knob.apply)
    inside = threading.Barrier(8)

    def hold() -> None:
        with shared.held("fast"):
            inside.wait(timeout=10)

    with shared.held("fast"):
        threads = [threading.Thread(target=hold) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert knob.value == "fast"
    assert knob.calls == ["apply fast", "restore original"]


def test_nested_switch_intervals_keep_the_first_until_the_last_leaves() -> None:
    before = sys.getswitchinterval()
    with prompt_threads(0.0002):
        with prompt_threads(0.0002):
            assert sys.getswitchinterval() == pytest.approx(0.0002)
        assert sys.getswitchinterval() == pytest.approx(0.0002)  # not undone by the inner one
    assert sys.getswitchinterval() == before
    assert SWITCH_INTERVAL.holders == 0


def test_nested_collector_settings_stay_until_the_last_leaves() -> None:
    thresholds = gc.get_threshold()
    outer = heap.settled((30_000, 2, 2))
    inner = heap.settled((30_000, 2, 2))
    outer.__enter__()
    frozen = gc.get_freeze_count()
    later = [[number] for number in range(10_000)]  # tracked objects made after the freeze
    inner.__enter__()
    assert 0 < gc.get_freeze_count() < frozen + len(later)  # frozen once, not again
    outer.__exit__(None, None, None)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (30_000, 2, 2)
    inner.__exit__(None, None, None)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds


def app_settings(tmp_path: Path, name: str) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
        upload_dir=tmp_path / f"{name}-uploads",
        jwt_secret=TEST_SECRET,  # type: ignore[arg-type]
        gc_freeze=True,
        gc_thresholds=(25_000, 3, 3),
        switch_interval_seconds=0.0003,
        _env_file=None,  # type: ignore[call-arg]
    )


async def test_two_apps_in_one_process_do_not_undo_each_others_knobs(tmp_path: Path) -> None:
    """One app stops while another still serves: the knobs stay until the second stops."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    lifespans: list[AbstractAsyncContextManager[Any]] = []
    for name in ("first", "second"):
        app = create_app(app_settings(tmp_path, name))
        lifespans.append(app.router.lifespan_context(app))
    first, second = lifespans
    await first.__aenter__()
    try:
        await second.__aenter__()
    except BaseException:
        await first.__aexit__(None, None, None)
        raise
    try:
        assert sys.getswitchinterval() == pytest.approx(0.0003)
        assert gc.get_threshold() == (25_000, 3, 3)
    finally:
        await first.__aexit__(None, None, None)  # the first to start stops first
    try:
        assert sys.getswitchinterval() == pytest.approx(0.0003)
        assert gc.get_threshold() == (25_000, 3, 3)
        assert gc.get_freeze_count() > 0
    finally:
        await second.__aexit__(None, None, None)
    assert sys.getswitchinterval() == interval
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0
