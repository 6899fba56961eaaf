"""The depth, alias and introspection limits as validation rules linear in the document.

strawberry's `QueryDepthLimiter` and `MaxAliasesLimiter` walk a fragment again at every
spread of it, so fragments that each spread the next twice (`fragment F0 on Query
{ ...F1 ...F1 }` … twenty of them, 800 bytes) cost 2^20 walks: seconds of CPU for one
unauthenticated request. Here each definition (operation or fragment) is walked once, with
graphql-core's iterative `visit`, recording its own facts and where it spreads which
fragment; a fragment's totals are then worked out once, in dependency order, and reused at
every spread. The messages are strawberry's, and the counts the same: a fragment spread
twice counts twice, introspection fields do not add depth.

`deadline` bounds the time a validation takes on the thread that runs it (`engine.parsing`).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from graphql import (
    SKIP,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationContext,
    ValidationRule,
    Visitor,
    visit,
)

# `__schema` answers describe the whole schema (tens of kilobytes): one per request is
# all a client needs, and each more would be that much work again.
MAX_SCHEMA_FIELDS = 1
TIMEOUT_CODE = "GRAPHQL_VALIDATION_FAILED"


@dataclass
class _Local:
    """What one definition holds itself, and the fragments it spreads, at what depth
    (None: inside an introspection field, where depth is not counted)."""

    height: int = 0
    aliases: int = 0
    schema_fields: int = 0
    spreads: list[tuple[str, int | None]] = field(default_factory=list)


class _LocalWalk(Visitor):
    """One definition's own facts; `depth` is strawberry's `depth_so_far`: the fields
    with a selection set around a node, introspection fields (and what they hold) aside."""

    def __init__(self) -> None:
        super().__init__()
        self.facts = _Local()
        self.depth = 0
        self.ignored = 0  # introspection fields around the current node

    def _reach(self) -> None:
        if not self.ignored and self.depth > self.facts.height:
            self.facts.height = self.depth

    def enter_field(self, node: FieldNode, *_: object) -> None:
        self._reach()
        if node.alias is not None:
            self.facts.aliases += 1
        name = node.name.value
        if name == "__schema":
            self.facts.schema_fields += 1
        if name.startswith("__"):
            self.ignored += 1
        elif node.selection_set is not None and not self.ignored:
            self.depth += 1

    def leave_field(self, node: FieldNode, *_: object) -> None:
        if node.name.value.startswith("__"):
            self.ignored -= 1
        elif node.selection_set is not None and not self.ignored:
            self.depth -= 1

    def enter_inline_fragment(self, node: InlineFragmentNode, *_: object) -> None:
        self._reach()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self._reach()
        self.facts.spreads.append((node.name.value, None if self.ignored else self.depth))

    def enter_directive(self, *_: object) -> object:
        return SKIP


@dataclass(frozen=True)
class Totals:
    """A definition's facts with every fragment it spreads counted where it is spread."""

    height: int
    aliases: int
    schema_fields: int


def document_totals(document: DocumentNode) -> dict[ExecutableDefinitionNode, Totals]:
    """Each operation's totals (keyed by its node), each definition walked once."""
    local: dict[str, _Local] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            local.setdefault(definition.name.value, _walk(definition))
    fragments = _fragment_totals(local)
    totals: dict[ExecutableDefinitionNode, Totals] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            totals[definition] = _combine(_walk(definition), fragments)
    return totals


def _walk(definition: ExecutableDefinitionNode) -> _Local:
    walker = _LocalWalk()
    visit(definition.selection_set, walker)
    return walker.facts


def _combine(facts: _Local, fragments: dict[str, Totals]) -> Totals:
    height, aliases, schema_fields = facts.height, facts.aliases, facts.schema_fields
    for name, depth in facts.spreads:
        spread = fragments.get(name)
        if spread is None:
            continue  # unknown, or part of a cycle: graphql-core's own rules refuse both
        aliases += spread.aliases
        schema_fields += spread.schema_fields
        if depth is not None:
            height = max(height, depth + spread.height)
    return Totals(height, aliases, schema_fields)


def _fragment_totals(local: dict[str, _Local]) -> dict[str, Totals]:
    """Every fragment's totals, dependencies first, without recursion (a chain of
    fragments is as long as the token limit lets it be)."""
    totals: dict[str, Totals] = {}
    in_progress: set[str] = set()
    for start in local:
        if start in totals:
            continue
        stack = [(start, iter(local[start].spreads))]
        in_progress.add(start)
        while stack:
            name, spreads = stack[-1]
            pending = next(
                (
                    spread
                    for spread, _ in spreads
                    if spread in local and spread not in totals and spread not in in_progress
                ),
                None,
            )
            if pending is not None:
                in_progress.add(pending)
                stack.append((pending, iter(local[pending].spreads)))
                continue
            stack.pop()
            in_progress.discard(name)
            totals[name] = _combine(local[name], totals)
    return totals


def document_limits(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """One rule class for the depth and alias limits and the `__schema` cap; make it once
    per schema (the validation cache keys on rule classes)."""

    class DocumentLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            totals = document_totals(context.document)
            for operation, facts in totals.items():
                if facts.height > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            operation,
                        )
                    )
            aliases = sum(facts.aliases for facts in totals.values())
            if aliases > max_aliases:
                context.report_error(
                    GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}")
                )
            schema_fields = sum(facts.schema_fields for facts in totals.values())
            if schema_fields > MAX_SCHEMA_FIELDS:
                context.report_error(
                    GraphQLError(
                        f"The document asks for __schema {schema_fields} times; "
                        f"this server answers at most {MAX_SCHEMA_FIELDS} per request."
                    )
                )

    return DocumentLimits


class ValidationTimeout(BaseException):
    """Validation went past its deadline. Not an `Exception`: no `except Exception` in
    graphql-core's rules (value coercion has some) may swallow it."""


class _Watch:
    """One bounded block on one thread, and the timer that may interrupt it."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.lock = threading.Lock()
        self.finished = False
        self.expired = False

    def expire(self) -> None:
        """On the timer's thread: interrupt the block if it is still running."""
        with self.lock:
            if not self.finished:
                self.expired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread), ctypes.py_object(ValidationTimeout)
                )

    def finish(self) -> None:
        with self.lock:
            self.finished = True


def _checkpoint() -> None:
    """A Python call: an interruption still pending is raised on entering it."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Python code run on this thread within the block raises `ValidationTimeout` once
    `seconds` have passed.

    A rule can spend all its time inside one node (graphql-core's overlapping-fields rule
    compares every pair of fields of a selection set there: 400 `me { id }` take seconds),
    so checking the clock between nodes would not bound it. A timer thread interrupts the
    block instead, with CPython's `PyThreadState_SetAsyncExc` (what a thread's
    `KeyboardInterrupt` is made of): the exception is raised at the next bytecode
    boundary that checks for it, and costs nothing until then. It is only ever set while
    the block runs (`_Watch.lock`), and one set just before the block ended is raised by
    `_checkpoint`, still inside it: it can never surface in whatever the thread runs next.
    An interruption that lands inside a callback the interpreter runs on its own (a weak
    reference's, during a collection) is swallowed there; the block then ends normally,
    but past its deadline, and `ValidationTimeout` is raised on leaving it all the same.
    """
    if seconds is None:
        yield
        return
    watch = _Watch()
    timer = threading.Timer(seconds, watch.expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        watch.finish()
        _checkpoint()
    if watch.expired:
        raise ValidationTimeout


def timeout_error(seconds: float) -> GraphQLError:
    return GraphQLError(
        f"The query is too complex: it took more than {seconds:g} s to validate, the most "
        "this server allows; send a simpler document.",
        extensions={"code": TIMEOUT_CODE},
    )
