"""schema.graphql at the repo root is what the code serves; `make schema` rewrites it."""

from __future__ import annotations

from gql_feed.app import export_schema
from tests.helpers.paths import REPO

SCHEMA_FILE = REPO / "schema.graphql"


def test_schema_file_matches_code() -> None:
    assert SCHEMA_FILE.read_text() == export_schema(), (
        "schema.graphql has drifted from the code: run `make schema` and commit it."
    )


def test_every_object_type_has_an_id_for_normalized_caches() -> None:
    sdl = export_schema()
    for name, heading in (
        ("User", "type User implements Node {"),
        ("Post", "type Post implements Node {"),
        ("PostEvent", "type PostEvent {"),
    ):
        block = sdl.split(heading, 1)[1].split("}", 1)[0]
        assert "id: ID!" in block, name
    assert "node(id: ID!): Node" in sdl
    assert "nodes(ids: [ID!]!): [Node]!" in sdl
