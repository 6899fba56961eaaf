"""Concurrent misses of one query share one execution, but only a fresh one.

While writers keep dropping the kept answers, readers of the same page would each execute
it again; `ResponseCache.join` lets them share the execution already under way, provided
no event had committed between its start and their arrival (checked against the log).
"""

from __future__ import annotations

import asyncio

from gql_feed.engine.response_cache import ResponseKey
from tests.helpers.response_cache import Log, cache_on

KEY: ResponseKey = ("doc", None, b"{}", None)


async def test_a_request_arriving_meanwhile_shares_the_answer() -> None:
    log = Log()
    cache = cache_on(log)
    flight = cache.take_off(KEY)
    joined = asyncio.create_task(cache.join(KEY))
    await asyncio.sleep(0.01)
    assert not joined.done(), "it waits for the execution under way"
    cache.land(KEY, flight, b'{"data":1}')
    assert await joined == b'{"data":1}'
    assert await cache.lookup(KEY) == b'{"data":1}'  # and the answer is kept


async def test_no_sharing_across_an_event_this_process_knows() -> None:
    log = Log()
    cache = cache_on(log)
    flight = cache.take_off(KEY)
    log.newest_id = 1
    cache.note(1)  # this process committed an event after the execution began
    assert await cache.join(KEY) is None
    cache.land(KEY, flight, b"old")
    assert await cache.lookup(KEY) is None  # nor kept


async def test_no_sharing_across_an_event_of_another_process_not_yet_delivered() -> None:
    log = Log()
    cache = cache_on(log)
    flight = cache.take_off(KEY)
    log.newest_id = 5  # committed elsewhere; its bus message has not arrived here
    assert await cache.join(KEY) is None
    assert cache.known_event_id == 5  # the check caught the hub up
    cache.land(KEY, flight, b"old")
    assert await cache.lookup(KEY) is None  # an answer older than event 5 is not kept


async def test_a_failed_execution_leaves_those_who_joined_to_execute() -> None:
    log = Log()
    cache = cache_on(log)
    flight = cache.take_off(KEY)
    joined = asyncio.create_task(cache.join(KEY))
    await asyncio.sleep(0.01)
    cache.land(KEY, flight, None)
    assert await joined is None
    assert cache.flights == {}
