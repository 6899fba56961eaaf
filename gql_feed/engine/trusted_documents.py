"""Trusted documents: a manifest of the operations an application sends, and nothing else.

A locked-down deployment lists its operations at build time, in Apollo's persisted-query
manifest or GraphQL Codegen's `{hash: document}`; only those run, found by id or by their
text (whitespace and comments aside). `gql-feed check-manifest` validates one before a
deploy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import strawberry
from graphql import GraphQLError, OperationDefinitionNode, parse, strip_ignored_characters

from gql_feed.config import ConfigError, Settings
from gql_feed.engine.document_refusals import DocumentNotAllowed, missing_query
from gql_feed.engine.document_validator import DocumentValidator

APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"


class ManifestError(ConfigError):
    """The trusted-documents manifest cannot be read; the message says which entry and why."""


@dataclass(frozen=True)
class TrustedDocument:
    id: str
    body: str
    name: str | None = None
    type: str | None = None


class TrustedDocuments:
    """The operations a manifest allows, found by id or by their text."""

    def __init__(self, documents: Sequence[TrustedDocument]) -> None:
        self.documents = list(documents)
        self._by_id = {document.id: document.body for document in documents}
        self._bodies = {document.body for document in documents}
        self._by_stripped: dict[str, str] = {}
        for document in documents:
            stripped = _stripped(document.body)
            if stripped is not None:
                self._by_stripped.setdefault(stripped, document.body)

    def __len__(self) -> int:
        return len(self.documents)

    @classmethod
    def load(cls, path: Path) -> TrustedDocuments:
        """Apollo's persisted-query manifest, or GraphQL Codegen's `{hash: document}`."""
        try:
            data = orjson.loads(path.read_bytes())
        except OSError as error:
            raise ManifestError(f"Cannot read trusted documents {path}: {error}") from error
        except orjson.JSONDecodeError as error:
            raise ManifestError(f"{path} is not JSON: {error}") from error
        return cls(_parse_manifest(data, str(path)))

    def body_of(self, key: str) -> str | None:
        return self._by_id.get(normalise_id(key))

    def matching(self, query: str) -> str | None:
        """The manifest's text for `query`, ignoring whitespace and comments."""
        if query in self._bodies:
            return query
        stripped = _stripped(query)
        return self._by_stripped.get(stripped) if stripped is not None else None

    def resolve(self, query: str | None, key: str | None) -> str:
        if key is not None:
            body = self.body_of(key)
            if body is None:
                raise DocumentNotAllowed(
                    f"Persisted query {key!r} is not in the trusted documents manifest."
                )
            if query and self.matching(query) != body:
                raise DocumentNotAllowed(
                    f"The query sent is not the trusted document {key!r} names."
                )
            return body
        if not query:
            raise missing_query()
        body = self.matching(query)
        if body is None:
            raise DocumentNotAllowed(
                "This operation is not in the trusted documents manifest; "
                "only the application's own operations run on this server."
            )
        return body


def normalise_id(key: str) -> str:
    """Codegen and the GraphQL-over-HTTP draft may spell an id `sha256:<hex>`."""
    return key.removeprefix("sha256:")


def _stripped(text: str) -> str | None:
    try:
        return strip_ignored_characters(text)
    except GraphQLError:
        return None


def _parse_manifest(data: object, source: str) -> list[TrustedDocument]:
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a JSON object")
    documents: list[TrustedDocument] = []
    if data.get("format") == APOLLO_MANIFEST_FORMAT:
        if data.get("version") != 1:
            raise ManifestError(f"{source}: unsupported manifest version {data.get('version')!r}")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ManifestError(f"{source}: `operations` must be a list")
        for index, entry in enumerate(operations):
            if not isinstance(entry, dict):
                raise ManifestError(f"{source}: operations[{index}] must be an object")
            id_, body = entry.get("id"), entry.get("body")
            if not isinstance(id_, str) or not id_ or not isinstance(body, str) or not body:
                raise ManifestError(f"{source}: operations[{index}] needs string `id` and `body`")
            name, type_ = entry.get("name"), entry.get("type")
            documents.append(
                TrustedDocument(
                    normalise_id(id_),
                    body,
                    name if isinstance(name, str) else None,
                    type_ if isinstance(type_, str) else None,
                )
            )
    elif "format" in data:
        raise ManifestError(f"{source}: unknown manifest format {data['format']!r}")
    else:
        for id_, body in data.items():
            if not isinstance(body, str) or not body:
                raise ManifestError(f"{source}: the document of {id_!r} must be a string")
            documents.append(TrustedDocument(normalise_id(id_), body))
    seen: dict[str, str] = {}
    for document in documents:
        if seen.setdefault(document.id, document.body) != document.body:
            raise ManifestError(f"{source}: id {document.id!r} names two different documents")
    return documents


def manifest_problems(
    manifest: TrustedDocuments, validator: DocumentValidator
) -> list[tuple[TrustedDocument, str]]:
    """Each document that would fail, with why (one entry per error)."""
    problems: list[tuple[TrustedDocument, str]] = []
    for document in manifest.documents:
        errors = validator.errors(document.body)
        problems.extend((document, _describe(error)) for error in errors)
        if errors:
            continue
        operations = [
            definition
            for definition in parse(document.body).definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        declared = _declared_mismatch(document, operations)
        if declared:
            problems.append((document, declared))
    return problems


def _declared_mismatch(
    document: TrustedDocument, operations: Iterable[OperationDefinitionNode]
) -> str | None:
    """Apollo's manifest names each operation and its type; a wrong one misleads reviewers."""
    if document.name is None and document.type is None:
        return None
    by_name = {op.name.value if op.name else None: op for op in operations}
    operation = by_name.get(document.name) if document.name else next(iter(by_name.values()), None)
    if operation is None:
        return f"the manifest names operation {document.name!r}, the document has none by it"
    actual = operation.operation.value
    if document.type is not None and document.type != actual:
        return f"the manifest says {document.type!r}, the operation is a {actual}"
    return None


def _describe(error: GraphQLError) -> str:
    where = ""
    if error.locations:
        location = error.locations[0]
        where = f" (line {location.line}, column {location.column})"
    return error.message + where


def check_manifest_command(path: Path, settings: Settings, schema: strawberry.Schema) -> int:
    """`gql-feed check-manifest PATH`: print what would fail; exit status 1 if anything does."""
    try:
        manifest = TrustedDocuments.load(path)
    except ManifestError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    problems = manifest_problems(manifest, DocumentValidator.for_settings(schema, settings))
    for document, problem in problems:
        label = document.id + (f" ({document.name})" if document.name else "")
        sys.stdout.write(f"FAIL {label}: {problem}\n")
    if problems:
        failing = len({id(document) for document, _ in problems})
        sys.stdout.write(f"{failing} of {len(manifest)} documents would fail.\n")
        return 1
    sys.stdout.write(f"All {len(manifest)} documents are valid against the schema.\n")
    return 0
