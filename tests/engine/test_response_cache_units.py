"""The response cache's rules, without a server: which documents may be kept and how, and
the shared read of the log's newest id."""

from __future__ import annotations

import asyncio

import pytest
from graphql import parse

from gql_feed.engine.analysis import analyse
from gql_feed.engine.executable import build_schema
from gql_feed.storage.log_version import LogVersion

SCHEMA = build_schema([])._schema


def facts(text: str, name: str | None = None) -> tuple[bool, bool]:
    operation = analyse(SCHEMA, parse(text)).operation(name)
    assert operation is not None
    return operation.cacheable, operation.viewer_dependent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{ posts { posts { id title creator { id name } } } }", (True, False)),
        ("{ posts { posts { creator { email } } } }", (True, True)),
        ("{ posts { posts { creator { status } } } }", (False, False)),
        # The viewer themself: never kept, and were it ever kept, kept per viewer.
        ("{ me { id } }", (False, True)),
        ('{ user(id: "1") { name } }', (False, False)),
        ('mutation { deletePost(id: "1") }', (False, False)),
        # Through a fragment, as much as directly.
        (
            "{ feed { edges { node { creator { ...U } } } } } fragment U on User { status }",
            (
                False,
                False,
            ),
        ),
        ("{ post(id: 1) { ...P } } fragment P on Post { creator { email } }", (True, True)),
    ],
)
def test_what_may_be_kept(text: str, expected: tuple[bool, bool]) -> None:
    assert facts(text) == expected


def test_operations_of_one_document_are_judged_apart() -> None:
    text = "query A { posts { totalPosts } } query B { me { id } }"
    assert facts(text, "A") == (True, False)
    assert facts(text, "B") == (False, True)
    assert analyse(SCHEMA, parse(text)).operation(None) is None


def test_same_document_same_key_whatever_its_layout() -> None:
    one = analyse(SCHEMA, parse("{ posts { totalPosts } }"))
    two = analyse(SCHEMA, parse("query {\n  posts {\n    totalPosts # count\n  }\n}"))
    assert one.key == two.key


async def test_a_caller_only_joins_a_read_that_begins_after_it_asked() -> None:
    """Callers that ask while a read is under way get the next read, not that one: only a
    read begun after a caller asked can have seen what committed before it asked."""
    version = 0
    reads = 0
    gate = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        seen = version
        await gate.wait()
        gate.clear()
        return seen

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    log = LogVersion(read)
    first = asyncio.create_task(log.newest())
    await settle()
    assert reads == 1
    version = 5  # commits after the first read began
    late = [asyncio.create_task(log.newest()) for _ in range(3)]
    await settle()
    gate.set()
    assert await first == 0
    await settle()
    assert reads == 2
    gate.set()
    assert [await task for task in late] == [5, 5, 5]
    assert reads == 2
