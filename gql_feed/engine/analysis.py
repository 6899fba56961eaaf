"""What the engine knows about a document, worked out once per distinct document.

A query text is parsed once, by the schema's `DocumentParser`, whose cache (bounded in
bytes) is the only cache of documents; what is learnt about a document is kept beside its
parse (`Parsed.learnt`), so it lives, and is dropped, with it. The facts, per operation and
each computed the first time something asks for it:
- the normal form's key, of the whole document (`DocumentAnalysis.key`: the response
  cache's) and of each operation with the fragments it uses (`OperationFacts.key`: the
  live groups');
- the operation's type, its root field and the variables used only as that field's
  `after` (what a live group key leaves out);
- the schema fields it selects, fragments followed, and from their declared policies
  (schema/policies.py) whether its answer may be kept (a query whose every field changes
  only with events) and whether it depends on the viewer.
The HTTP view, the response cache and the live layer all read them here.

Every walk is linear in the document: a fragment's own selections are read once per
document, and each operation reaches each fragment it uses once, however often and
however deeply it is spread. The walks keep their own stack, so nesting depth is no
recursion limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from graphql import (
    BREAK,
    SKIP,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    get_named_type,
    visit,
)

from gql_feed.engine.normalize import document_key
from gql_feed.engine.parsing import Parsed
from gql_feed.schema.policies import FieldPolicies, field_policies

SchemaField = tuple[str, str]
"""(parent type, field), as a document names them."""


@dataclass(frozen=True, slots=True)
class OperationFacts:
    """One operation of a document, as every part of the engine needs to know it."""

    definition: OperationDefinitionNode
    kind: OperationType
    # The digest of the operation's normal form: this operation and the fragments it
    # uses, printed (so without whitespace, commas or comments), fragments sorted by name.
    # Texts that differ only in layout, or in other operations beside it, share it.
    key: str
    # Every schema field it selects, through fragments too; `unknown` when it also selects
    # something the schema lacks (validation refuses it; until then, the worst is assumed).
    fields: frozenset[SchemaField]
    unknown: bool
    # A query whose every field changes only with events: its answer may be kept.
    cacheable: bool
    # Selects a field whose value depends on who asks (User.email): kept, and executed
    # for live events, per viewer.
    viewer_dependent: bool
    # The operation's first root field (a subscription's one: postEvents).
    root_field: FieldNode | None
    # Variables used only as the root field's `after`: they change the replay, not
    # what each live event looks like, so they stay out of the group key.
    after_only_variables: frozenset[str]

    @property
    def name(self) -> str | None:
        return self.definition.name.value if self.definition.name else None


@dataclass(slots=True)
class _Selected:
    """What one selection set selects directly (its fragments' contents aside)."""

    fields: set[SchemaField] = field(default_factory=set)
    spreads: set[str] = field(default_factory=set)
    unknown: bool = False


class DocumentAnalysis:
    """The facts of one parsed document under one schema (see the module docstring).

    `memo` keeps what callers derive from these facts (the live layer's validated
    operations), for as long as the document is kept; only for the document's own
    operations (`definition`), so that what it holds is bounded by the document."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.document = document
        self.policies: FieldPolicies = field_policies(schema)
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.definitions: list[OperationDefinitionNode] = []
        for node in document.definitions:
            if isinstance(node, FragmentDefinitionNode):
                self.fragments.setdefault(node.name.value, node)
            elif isinstance(node, OperationDefinitionNode):
                self.definitions.append(node)
        self.memo: dict[object, object] = {}
        self._selected: dict[str, _Selected] = {}
        self._operations: dict[str | None, OperationFacts] = {}

    @cached_property
    def key(self) -> str:
        """The digest of the whole document's normal form."""
        return document_key(self.document)

    def definition(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation a request names; with no name, the document's only one (as
        graphql-core's `get_operation_ast` picks it)."""
        if name is None:
            return self.definitions[0] if len(self.definitions) == 1 else None
        return next((d for d in self.definitions if d.name and d.name.value == name), None)

    def operation(self, name: str | None) -> OperationFacts | None:
        """The facts of the operation a request names; None when there is no such one
        (not remembered: only the document's own operations are, so that requests naming
        operations it lacks cannot grow what is kept)."""
        facts = self._operations.get(name)
        if facts is None:
            definition = self.definition(name)
            if definition is None:
                return None
            facts = self._operations[name] = self._facts(definition)
        return facts

    def _facts(self, definition: OperationDefinitionNode) -> OperationFacts:
        root = self.schema.get_root_type(definition.operation)
        selected = _select(self.schema, definition.selection_set, root)
        fields, unknown = set(selected.fields), selected.unknown
        used: set[str] = set()
        pending = list(selected.spreads)
        while pending:
            name = pending.pop()
            if name in used:
                continue
            used.add(name)
            inner = self._fragment(name)
            if inner is None:
                unknown = True
                continue
            fields |= inner.fields
            unknown = unknown or inner.unknown
            pending.extend(inner.spreads - used)
        policies = [self.policies.of(*schema_field) for schema_field in fields]
        fragments = sorted(used & self.fragments.keys())
        root_field = self._first_field(definition.selection_set)
        return OperationFacts(
            definition=definition,
            kind=definition.operation,
            key=document_key(
                DocumentNode(definitions=(definition, *(self.fragments[f] for f in fragments)))
            ),
            fields=frozenset(fields),
            unknown=unknown,
            cacheable=definition.operation is OperationType.QUERY
            and not unknown
            and all(policy.versioned for policy in policies),
            viewer_dependent=unknown or any(policy.per_viewer for policy in policies),
            root_field=root_field,
            after_only_variables=_after_only_variables(definition, self.fragments, root_field),
        )

    def _fragment(self, name: str) -> _Selected | None:
        """What a fragment selects directly, read once per document."""
        found = self._selected.get(name)
        if found is None:
            fragment = self.fragments.get(name)
            if fragment is None:
                return None
            condition = self.schema.get_type(fragment.type_condition.name.value)
            found = self._selected[name] = _select(self.schema, fragment.selection_set, condition)
        return found

    def _first_field(self, selection_set: SelectionSetNode) -> FieldNode | None:
        """The first field the operation's root selection set selects, in document order,
        through inline fragments and spreads (each fragment looked into once)."""
        seen: set[str] = set()
        pending = [iter(selection_set.selections)]
        while pending:
            selection = next(pending[-1], None)
            if selection is None:
                pending.pop()
            elif isinstance(selection, FieldNode):
                return selection
            elif isinstance(selection, InlineFragmentNode):
                pending.append(iter(selection.selection_set.selections))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    pending.append(iter(fragment.selection_set.selections))
        return None


def analysis(schema: GraphQLSchema, parsed: Parsed) -> DocumentAnalysis:
    """The facts of a cached parse, worked out once and kept with it."""
    found = parsed.learnt.get(schema)
    if not isinstance(found, DocumentAnalysis):
        found = parsed.learnt[schema] = DocumentAnalysis(schema, parsed.node)
    return found


def analyse(schema: GraphQLSchema, document: DocumentNode) -> DocumentAnalysis:
    """The facts of a document that is not kept (a one-off, a test)."""
    return DocumentAnalysis(schema, document)


def _select(
    schema: GraphQLSchema, selection_set: SelectionSetNode, parent: GraphQLNamedType | None
) -> _Selected:
    """The schema fields one selection set selects, nested ones included, spreads noted."""
    selected = _Selected()
    pending: list[tuple[SelectionSetNode, GraphQLNamedType | None]] = [(selection_set, parent)]
    while pending:
        selections, on = pending.pop()
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                definition = _field(on, name)
                if definition is not None and on is not None:
                    selected.fields.add((on.name, name))
                else:
                    selected.unknown = True
                if selection.selection_set is not None:
                    inner = get_named_type(definition.type) if definition else None
                    pending.append((selection.selection_set, inner))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = schema.get_type(condition.name.value) if condition else on
                pending.append((selection.selection_set, target))
            elif isinstance(selection, FragmentSpreadNode):
                selected.spreads.add(selection.name.value)
    return selected


_META_FIELDS: dict[str, GraphQLField] = {
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
    "__typename": TypeNameMetaFieldDef,
}


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    """The field's definition, introspection's included (its policy is STATIC)."""
    if name in _META_FIELDS:
        return _META_FIELDS[name]
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None


def _after_only_variables(
    definition: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    root_field: FieldNode | None,
) -> frozenset[str]:
    """The root field's `after` variable, when nothing else in the operation uses it."""
    if root_field is None or definition.operation is not OperationType.SUBSCRIPTION:
        return frozenset()
    after = next((arg for arg in root_field.arguments or () if arg.name.value == "after"), None)
    if after is None or not isinstance(after.value, VariableNode):
        return frozenset()
    name = after.value.name.value
    counter = _VariableUses(name)
    visit(DocumentNode(definitions=(definition, *fragments.values())), counter)
    return frozenset({name}) if counter.uses == 1 else frozenset()


class _VariableUses(Visitor):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.uses = 0

    def enter_variable_definition(self, node: VariableDefinitionNode, *_: object) -> object:
        return SKIP

    def enter_variable(self, node: VariableNode, *_: object) -> object:
        if node.name.value == self.name:
            self.uses += 1
            if self.uses > 1:
                return BREAK
        return None


def operation_kind(document: DocumentAnalysis | None, operation_name: str | None) -> str:
    """`query`, `mutation` or `subscription`, as the operation metrics count it; `query`
    for a document that names no operation it holds (execution refuses it)."""
    definition = document.definition(operation_name) if document is not None else None
    return definition.operation.value if definition is not None else "query"
