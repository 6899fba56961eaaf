"""Writes first (engine/priority.py): while a write runs, reads start a few per loop turn."""

from __future__ import annotations

import asyncio
import sys
from itertools import pairwise

import pytest

from gql_feed.engine.priority import WritesFirst
from gql_feed.runtime.switching import SWITCH_INTERVAL_SECONDS, prompt_threads


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_reads_start_at_once_when_nothing_is_written() -> None:
    gate = WritesFirst(reads_per_turn=1)
    started: list[int] = []

    async def read(n: int) -> None:
        await gate.read()
        started.append(n)

    await asyncio.gather(*(read(n) for n in range(50)))
    assert started == list(range(50))
    assert not gate._waiting


async def test_while_writing_reads_start_a_few_per_turn_in_arrival_order() -> None:
    gate = WritesFirst(reads_per_turn=2)
    started: list[tuple[int, int]] = []  # (turn, read)
    turn = 0

    async def read(n: int) -> None:
        await gate.read()
        started.append((turn, n))

    async with gate.write():
        readers = [asyncio.create_task(read(n)) for n in range(7)]
        while turn < 12:
            turn += 1
            await asyncio.sleep(0)
        await asyncio.gather(*readers)
    per_turn: dict[int, int] = {}
    for when, _ in started:
        per_turn[when] = per_turn.get(when, 0) + 1
    assert [n for _, n in started] == list(range(7))  # nobody overtakes
    assert max(per_turn.values()) <= 2
    assert len(per_turn) >= 4  # spread over turns, none starved


async def test_a_fraction_is_one_read_every_few_turns() -> None:
    gate = WritesFirst(reads_per_turn=0.25)
    started: list[int] = []  # the turn each read started in
    turn = 0

    async def read() -> None:
        await gate.read()
        started.append(turn)

    async with gate.write():
        readers = [asyncio.create_task(read()) for _ in range(5)]
        while turn < 30:
            turn += 1
            await asyncio.sleep(0)
        await asyncio.gather(*readers)
    assert len(started) == 5
    gaps = [later - earlier for earlier, later in pairwise(started)]
    assert min(gaps) >= 3  # one every fourth turn, give or take the turn a release lands in


async def test_the_end_of_the_last_write_lets_every_waiting_read_go() -> None:
    gate = WritesFirst(reads_per_turn=1)
    done = 0

    async def read() -> None:
        nonlocal done
        await gate.read()
        done += 1

    async with gate.write():
        readers = [asyncio.create_task(read()) for _ in range(20)]
        await turns(1)
        assert done <= 1
    await turns(3)
    assert done == 20
    await asyncio.gather(*readers)


async def test_a_cancelled_read_gives_its_place_to_the_next() -> None:
    gate = WritesFirst(reads_per_turn=1)
    started: list[int] = []

    async def read(n: int) -> None:
        await gate.read()
        started.append(n)

    async with gate.write():
        readers = [asyncio.create_task(read(n)) for n in range(4)]
        await turns(1)
        readers[1].cancel()
        readers[2].cancel()
        await turns(10)
        assert started == [0, 3]
    with pytest.raises(asyncio.CancelledError):
        await readers[1]
    assert not gate._waiting


def test_reads_per_turn_must_be_more_than_zero() -> None:
    with pytest.raises(ValueError, match="more than 0"):
        WritesFirst(reads_per_turn=0)


def test_threads_get_the_gil_back_promptly_while_serving() -> None:
    before = sys.getswitchinterval()
    with prompt_threads():
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_SECONDS)
    assert sys.getswitchinterval() == before
