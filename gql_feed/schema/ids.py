"""Ids a client sees: unique across types, as Relay's Global Object Identification asks.

A user or a post is known by a global id, the base64 of `<Type>:<number>` (`Post:12` is
`UG9zdDoxMg==`), the form graphql-relay and strawberry's relay use. An event keeps its
plain number: it is a position in the event log, what `postEvents(after:)` and
`Last-Event-ID` take, and no global id is ever all digits, so no two objects of different
types share an id. Relay's and urql's caches, keyed by `id` alone, then never merge a post
with an event.

Arguments naming a user or a post take the global id, or, for clients from before global
ids, the plain number: inside, ids stay the database's integers.
"""

from __future__ import annotations

import base64
import binascii

import strawberry

from gql_feed.services.errors import NotFound

NODE_TYPES = frozenset({"User", "Post"})
LARGEST = 2**63 - 1


def global_id(type_name: str, number: int) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{type_name}:{number}".encode()).decode())


def decode_global_id(value: str) -> tuple[str, int] | None:
    """(type, number) of a well-formed global id of a node type; None otherwise."""
    try:
        text = base64.b64decode(value.encode("ascii"), validate=True).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        return None
    type_name, colon, digits = text.partition(":")
    if not colon or type_name not in NODE_TYPES or not digits.isdigit() or not digits.isascii():
        return None
    number = int(digits)
    if number < 1 or number > LARGEST:
        return None
    return type_name, number


def parse_id(value: strawberry.ID | str, type_name: str, field: str = "id") -> int:
    """The number of a `type_name` named by its global id or its plain number (the ids
    before global ids); anything else, another type's id included, is simply not found."""
    text = str(value)
    decoded = decode_global_id(text)
    if decoded is not None and decoded[0] == type_name:
        return decoded[1]
    if text.isdigit() and text.isascii():
        number = int(text)
        if 1 <= number <= LARGEST:
            return number
    raise NotFound(f"No object with {field} {value!r}.")


def number_of(value: str) -> int | None:
    """The number inside a user's or a post's global id (None if it is not one)."""
    decoded = decode_global_id(value)
    return decoded[1] if decoded is not None else None
