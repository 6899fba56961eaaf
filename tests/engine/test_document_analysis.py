"""One document cache: a text is parsed once, and what the engine learns about it (its
facts, its validated live operation) is worked out once and kept with that parse, for
HTTP and live operations alike."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import parse

from gql_feed.compat.strawberry import graphql_schema
from gql_feed.config import Settings
from gql_feed.engine import document_validator, parsing
from gql_feed.engine.analysis import analyse, analysis
from gql_feed.engine.documents import DocumentCache, Invalid, Operation
from gql_feed.engine.executable import build_schema
from gql_feed.engine.extensions import DocumentChecks, schema_extensions
from gql_feed.engine.persisted import PersistedDocuments
from gql_feed.engine.response_cache import ResponseCache
from gql_feed.live.operations import Operations, Request
from tests.helpers.server import TEST_SECRET

FEED = """
subscription Feed($after: ID) { postEvents(after: $after) { id post { title creator { email } } } }
"""


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_secret=TEST_SECRET, _env_file=None)  # type: ignore[arg-type, call-arg]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text graphql-core's parser is handed, by the document parser or by the checks
    before a document is registered."""
    seen: list[str] = []
    real = parsing.parse

    def counting(text: str, **options: Any) -> Any:
        seen.append(text)
        return real(text, **options)

    monkeypatch.setattr(parsing, "parse", counting)
    monkeypatch.setattr(document_validator, "parse", counting)
    return seen


async def test_facts_and_execution_share_one_parse(settings: Settings, parses: list[str]) -> None:
    checks = DocumentChecks.for_settings(settings)
    schema = build_schema(schema_extensions(settings, checks))
    text = "query Page { __typename }"
    document = analysis(graphql_schema(schema), await checks.parser.parsed(text))
    operation = document.operation("Page")
    assert operation is not None
    assert operation.cacheable
    cache = ResponseCache(1 << 20, lambda: None, hub=None)  # type: ignore[arg-type, return-value]
    assert cache.key(document, "Page", {}, 7) == (document.key, "Page", b"{}", None)
    result = await schema.execute(text)
    assert result.data == {"__typename": "Query"}
    assert parses == [text]
    # Asked again, the same facts, not worked out again.
    assert analysis(graphql_schema(schema), await checks.parser.parsed(text)) is document


async def test_live_operations_come_from_the_same_cache(
    settings: Settings, parses: list[str]
) -> None:
    checks = DocumentChecks.for_settings(settings)
    schema = build_schema(schema_extensions(settings, checks))
    services = SimpleNamespace(settings=settings, hub=None)
    ops = Operations(schema, services, settings, PersistedDocuments(None), checks.parser)  # type: ignore[arg-type]
    first = await ops.prepare(Request(FEED))
    assert isinstance(first, Operation)
    assert await ops.prepare(Request(FEED)) is first
    facts = analysis(graphql_schema(schema), await checks.parser.parsed(FEED)).operation(None)
    assert first.facts is facts
    assert first.viewer_dependent
    assert first.after_only_variables == {"after"}
    assert parses == [FEED]
    assert len(checks.parser.cache) == 1


async def test_what_the_parser_forgets_is_analysed_afresh(settings: Settings) -> None:
    parser = parsing.DocumentParser(settings.max_query_bytes, settings.max_query_tokens, 4096)
    schema = graphql_schema(build_schema([]))
    text = "{ posts { totalPosts } }"
    kept = analysis(schema, await parser.parsed(text))
    for index in range(50):
        await parser.parse(f"{{ __typename }} # {index} " + "x" * 200)
    assert text not in parser.cache
    assert analysis(schema, await parser.parsed(text)) is not kept


@pytest.mark.parametrize(
    ("one", "two", "same"),
    [
        ("{ posts { totalPosts } }", "query {\n posts { totalPosts, } # count\n}", True),
        # Other operations beside it, fragments in another order: the same operation.
        (
            "query A { post(id: 1) { ...P ...Q } } fragment P on Post { id } "
            "fragment Q on Post { title }",
            "fragment Q on Post { title } query B { __typename } "
            "query A { post(id: 1) { ...P ...Q } } fragment P on Post { id }",
            True,
        ),
        ("query A { posts { totalPosts } }", "query A { posts { page } }", False),
    ],
)
def test_an_operations_key_is_its_normal_form(one: str, two: str, same: bool) -> None:
    schema = graphql_schema(build_schema([]))
    name = "A" if "query A" in one else None
    first = analyse(schema, parse(one)).operation(name)
    second = analyse(schema, parse(two)).operation(name)
    assert first is not None
    assert second is not None
    assert (first.key == second.key) is same


async def test_naming_operations_a_document_lacks_keeps_nothing(settings: Settings) -> None:
    """What is kept with a document is bounded by the document, whatever names clients send."""
    checks = DocumentChecks.for_settings(settings)
    schema = build_schema(schema_extensions(settings, checks))
    services = SimpleNamespace(settings=settings, hub=None)
    ops = Operations(schema, services, settings, PersistedDocuments(None), checks.parser)  # type: ignore[arg-type]
    for index in range(50):
        refused = await ops.prepare(Request(FEED, f"Nope{index}"))
        assert isinstance(refused, Invalid)
    assert isinstance(await ops.prepare(Request(FEED, "Feed")), Operation)
    document = analysis(graphql_schema(schema), await checks.parser.parsed(FEED))
    assert list(document.memo) == [(DocumentCache, "Feed")]


async def test_a_document_registered_by_hash_is_parsed_once(
    settings: Settings, parses: list[str]
) -> None:
    checks = DocumentChecks.for_settings(settings)
    schema = build_schema(schema_extensions(settings, checks))
    documents = PersistedDocuments.from_settings(settings, schema, checks.parser)
    text = "{ posts { totalPosts } }"
    extensions = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(text.encode()).hexdigest()}
    }
    assert await documents.resolve(text, extensions) == text  # checked, then registered
    assert await documents.resolve(None, extensions) == text
    result = await schema.execute(text)
    assert result.errors  # posts needs a login: it ran, from the parse registration made
    assert parses == [text]
