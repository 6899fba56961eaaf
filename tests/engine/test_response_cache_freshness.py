"""When the response cache serves a kept answer, and when it executes instead, without a server.

A kept answer is served only once the event log says this process has seen every event
committed before the request; when the log cannot be read the query executes. What is
kept is bounded in bytes, `0` turns the cache off, and /metrics counts what it serves.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from graphql import parse
from prometheus_client import REGISTRY

from gql_feed.engine.analysis import analyse
from gql_feed.engine.executable import build_schema
from gql_feed.engine.response_cache import ResponseCache, ResponseKey
from gql_feed.events.hub import HubEvent
from tests.helpers.response_cache import Log, cache_on

SCHEMA = build_schema([])._schema
PAGE = analyse(SCHEMA, parse("query Page($n: Int!) { posts(perPage: $n) { totalPosts } }"))
KEY: ResponseKey = ("doc", None, b"{}", None)


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.mark.parametrize(("max_bytes", "kept"), [(0, False), (1, True), (1 << 20, True)])
def test_a_zero_budget_turns_the_cache_off_any_other_keeps(max_bytes: int, kept: bool) -> None:
    """Off, nothing is kept and no execution is shared either (both need a key)."""
    cache = cache_on(Log(), max_bytes)
    key = cache.key(PAGE, "Page", {"n": 5}, viewer_id=None)
    assert (key is not None) is kept


def test_the_key_is_per_variables_and_per_viewer_where_it_matters() -> None:
    cache = cache_on(Log())
    five = cache.key(PAGE, "Page", {"n": 5, "after": None}, viewer_id=1)
    assert five is not None
    assert cache.key(PAGE, "Page", {"after": None, "n": 5}, viewer_id=2) == five
    assert cache.key(PAGE, "Page", {"n": 6, "after": None}, viewer_id=1) != five
    assert cache.key(PAGE, "Page", None, viewer_id=1) != five
    emails = analyse(SCHEMA, parse("{ posts { posts { creator { email } } } }"))
    mine = cache.key(emails, None, None, viewer_id=1)
    assert mine is not None
    assert cache.key(emails, None, None, viewer_id=2) != mine
    assert cache.key(emails, None, None, viewer_id=1) == mine
    # Not kept at all: a field that changes without an event; an operation not in the document.
    status = analyse(SCHEMA, parse("{ posts { posts { creator { status } } } }"))
    assert cache.key(status, None, None, viewer_id=1) is None
    assert cache.key(PAGE, "Other", {"n": 5}, viewer_id=None) is None
    # Nor variables that are not JSON (an uploaded file's, say): they name no answer.
    assert cache.key(PAGE, "Page", {"n": object()}, viewer_id=None) is None


async def test_an_answer_within_the_budget_is_kept() -> None:
    """An answer weighs its bytes, its variables' and a small fixed overhead: a page of
    100 bytes with its variables fits in a kilobyte."""
    cache = cache_on(Log(), max_bytes=1024)
    key = cache.key(PAGE, "Page", {"n": 5, "padding": "p" * 40}, viewer_id=None)
    assert key is not None
    answer = b"a" * 100
    cache.land(key, cache.take_off(key), answer)
    assert await cache.lookup(key) == answer


async def test_an_answer_too_heavy_with_its_key_is_not_kept() -> None:
    """Its bytes alone (900) fit in a kilobyte; with its variables' (60) and the fixed
    overhead, it does not."""
    cache = cache_on(Log(), max_bytes=1024)
    key = cache.key(PAGE, "Page", {"n": 5, "padding": "p" * 40}, viewer_id=None)
    assert key is not None
    assert len(key[2]) == 60
    cache.land(key, cache.take_off(key), b"a" * 900)
    assert await cache.lookup(key) is None


async def test_an_event_heard_late_keeps_the_answers_computed_since() -> None:
    """This process notes its own event as it publishes it; the hub hands that event (and
    older ones, still on their way) on a moment later, and that must not drop the answers
    computed meanwhile."""
    log = Log()
    cache = cache_on(log)
    cache.note(2)
    log.newest_id = 2
    cache.land(KEY, cache.take_off(KEY), b"after event 2")
    for event_id in (1, 2):
        await cache.deliver(HubEvent(event_id, "{}", {}))  # type: ignore[typeddict-item]
        assert await cache.lookup(KEY) == b"after event 2"
    await cache.deliver(HubEvent(3, "{}", {}))  # type: ignore[typeddict-item]
    assert await cache.lookup(KEY) is None


async def test_an_answer_computed_across_an_event_takes_no_room() -> None:
    """Not kept, so it evicts no fresh answer from a full cache."""
    log = Log()
    cache = cache_on(log, max_bytes=400)
    fresh_key: ResponseKey = ("fresh", None, b"{}", None)
    stale = cache.take_off(KEY)
    log.newest_id = 1
    cache.note(1)  # an event while the stale execution ran
    cache.land(fresh_key, cache.take_off(fresh_key), b"f" * 200)
    cache.land(KEY, stale, b"s" * 200)  # the two would not fit together
    assert await cache.lookup(fresh_key) == b"f" * 200


async def test_an_execution_known_stale_is_not_joined_nor_checked() -> None:
    log = Log()
    cache = cache_on(log)
    cache.take_off(KEY)
    cache.note(1)
    assert await cache.join(KEY) is None
    assert log.reads == 0  # no need to ask the log


async def test_an_answer_is_served_and_counted_only_when_fresh() -> None:
    log = Log()
    cache = cache_on(log)
    hits = counted("gql_feed_response_cache_hits_total")
    cache.land(KEY, cache.take_off(KEY), b"page")
    assert await cache.lookup(KEY) == b"page"
    assert counted("gql_feed_response_cache_hits_total") == hits + 1
    log.newest_id = 3  # committed elsewhere; this process catches up, dropping the answer
    assert await cache.lookup(KEY) is None
    assert counted("gql_feed_response_cache_hits_total") == hits + 1


async def test_an_answer_is_not_served_until_the_hub_has_caught_up() -> None:
    """The hub's own bookkeeping is not relied upon: only events the cache itself has seen
    count. A hub that could not hand on the newer event leaves the query to execute."""
    log = Log()
    cache = cache_on(log)
    cache.land(KEY, cache.take_off(KEY), b"page")
    log.delivers = False
    log.newest_id = 3
    assert await cache.lookup(KEY) is None
    assert log.catch_ups == [3]
    flight = cache.take_off(KEY)
    assert await cache.join(KEY) is None
    cache.land(KEY, flight, b"page again")
    assert await cache.lookup(KEY) is None


async def test_a_hit_with_nothing_new_does_not_wait_on_the_hub() -> None:
    """The hub's catch-up takes its lock and may read the log: only when the log holds an
    event this process has not seen."""
    log = Log()
    cache = cache_on(log)
    cache.begin_at(4)
    log.newest_id = 4
    cache.land(KEY, cache.take_off(KEY), b"page")
    for _ in range(3):
        assert await cache.lookup(KEY) == b"page"
    assert log.catch_ups == []
    log.newest_id = 5
    assert await cache.lookup(KEY) is None
    assert log.catch_ups == [5]


async def test_a_log_read_begun_before_this_process_committed_still_serves() -> None:
    """The log's newest id was read just before this process committed event 5 (and noted
    it): the cache has seen more than that read asks for, so it serves, and does not wait
    on the hub."""
    log = Log()
    cache = cache_on(log)
    cache.note(5)
    cache.land(KEY, cache.take_off(KEY), b"after event 5")
    log.newest_id = 4  # what the read begun before the commit returns
    assert await cache.lookup(KEY) == b"after event 5"
    assert log.catch_ups == []


async def test_an_unreadable_log_means_executing_not_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = Log()
    cache = cache_on(log)
    cache.land(KEY, cache.take_off(KEY), b"page")
    log.failure = ConnectionError("database unreachable")
    with caplog.at_level(logging.WARNING, logger="gql_feed.engine.response_cache"):
        assert await cache.lookup(KEY) is None
        flight = cache.take_off(KEY)
        assert await cache.join(KEY) is None  # nor shared: executing is the safe way
    assert len(caplog.records) == 2
    for record in caplog.records:  # the log's error, with its traceback
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ConnectionError)
    log.failure = None
    cache.land(KEY, flight, b"page")
    assert await cache.lookup(KEY) == b"page"


async def joined(cache: ResponseCache, answer: bytes | None) -> bytes | None:
    """What a request arriving while an execution is under way gets, when it ends so."""
    flight = cache.take_off(KEY)
    joining = asyncio.create_task(cache.join(KEY))
    for _ in range(5):  # let it reach the execution's answer (no timing: turns of the loop)
        await asyncio.sleep(0)
    assert not joining.done()
    cache.land(KEY, flight, answer)
    return await joining


async def test_a_shared_answer_is_counted_a_failed_one_is_not() -> None:
    cache = cache_on(Log())
    assert await cache.join(KEY) is None  # nothing under way: nothing to share
    shared = counted("gql_feed_response_cache_shared_total")
    assert await joined(cache, None) is None  # failed: those who joined execute themselves
    assert counted("gql_feed_response_cache_shared_total") == shared
    assert await joined(cache, b"page") == b"page"
    assert counted("gql_feed_response_cache_shared_total") == shared + 1
