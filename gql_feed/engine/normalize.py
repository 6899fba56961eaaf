"""One normal form of a GraphQL document, shared by every cache and grouping that keys on it.

Two texts that differ only in whitespace, commas, comments or the way a string is quoted
parse to the same AST and print to the same text, so they share a response-cache entry, a
live subscription group, a document-cache entry. The key is a digest of that printed text:
fixed-size, whatever the document weighs.
"""

from __future__ import annotations

from hashlib import blake2b

from graphql import DocumentNode, print_ast


def normal_text(document: DocumentNode) -> str:
    """The document printed by graphql-core: no comments, one canonical layout."""
    return print_ast(document)


def document_key(document: DocumentNode) -> str:
    """A short, stable digest of the document's normal form."""
    return blake2b(normal_text(document).encode(), digest_size=16).hexdigest()
