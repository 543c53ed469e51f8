"""Introspection, bounded (SECURITY rows 26 and 35).

The staff schema answers introspection to anyone, signed in or not, for integrators. One
description of the schema is tens of milliseconds of work; thirty of them under aliases
held a worker's loop for 15 s, and the time limit cannot stop synchronous work. So:

- The ordinary introspection query (`graphql.get_introspection_query()`, what codegen and
  most tools send, in any layout) is answered with the schema's description worked out
  once, the first time it is asked, and handed out as it is from then on.
- Any other document that introspects is counted before it runs: every field it would
  answer on this schema, exactly (the schema is known, nothing is resolved), stopping as
  soon as the count passes the budget. The budget is one description of the schema with
  every option on, and a quarter more for what a client adds around it: GraphiQL's query,
  or a tool's, fits; the schema twice over does not. Past it, QUERY_TOO_COSTLY and
  nothing runs.
- graphql-core's own rule refuses type lists nested three deep (`fields { type { fields {
  type { fields`), and the fields of a document are bounded before validation
  (`app.schema.limits`), so counting never has far to go.

The production portal has no introspection at all: its schema refuses it in validation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLArgument,
    GraphQLDirective,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLWrappingType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    execute_sync,
    get_introspection_query,
    parse,
    print_ast,
)
from strawberry.extensions import SchemaExtension

from app.schema.limits import chosen_operation, coerced_variables, too_costly

ORDINARY_QUERY = get_introspection_query()
# The ordinary query as `print_ast` writes any document: how one sent in another layout is
# recognised.
_ORDINARY_TEXT = print_ast(parse(ORDINARY_QUERY))
# Every option graphql-core knows, and the deepest type references it asks by default.
FULL_QUERY = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
    experimental_directive_deprecation=True,
    one_of=True,
)


class _OverBudget(Exception):
    """The count passed the budget; it stops there."""


class _Count:
    """The fields an introspection selection answers on one schema, counted as the result
    would hold them: each field asked of each object once. A selection asked again of the
    same object (thirty aliases spreading one fragment) is counted once and then charged as
    known, so the count itself never does more than the budget allows."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        budget: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.budget = budget
        self.spent = 0
        self._known: dict[tuple[int, int], int] = {}
        self._flat: dict[int, list[FieldNode]] = {}

    def charge(self, amount: int) -> None:
        self.spent += amount
        if self.spent > self.budget:
            raise _OverBudget

    def root(self, node: FieldNode) -> None:
        self.charge(1)
        if node.selection_set is None:
            return
        if node.name.value == "__schema":
            self.selection(self.schema, node.selection_set)
        elif node.name.value == "__type":
            named = self.schema.get_type(self._type_name(node) or "")
            if named is not None:
                self.selection(named, node.selection_set)

    def selection(self, value: Any, selection_set: SelectionSetNode) -> None:
        key = (id(value), id(selection_set))
        known = self._known.get(key)
        if known is not None:
            self.charge(known)
            return
        before = self.spent
        for field in self.fields(selection_set):
            self.charge(1)
            if field.selection_set is None:
                continue
            child = _child(self.schema, value, field.name.value)
            if isinstance(child, list):
                for item in child:
                    self.selection(item, field.selection_set)
            elif child is not None:
                self.selection(child, field.selection_set)
        self._known[key] = self.spent - before

    def fields(self, selection_set: SelectionSetNode) -> list[FieldNode]:
        """The fields of a selection set with its fragments spread (type conditions are
        not checked: counting a field too many only makes the count larger)."""
        flat = self._flat.get(id(selection_set))
        if flat is None:
            flat = self._flat[id(selection_set)] = list(
                _spread(selection_set, self.fragments, frozenset())
            )
        return flat

    def _type_name(self, node: FieldNode) -> str | None:
        for argument in node.arguments or ():
            if argument.name.value != "name":
                continue
            if isinstance(argument.value, StringValueNode):
                return argument.value.value
            if isinstance(argument.value, VariableNode):
                name = self.variables.get(argument.value.name.value)
                return name if isinstance(name, str) else None
        return None


def _spread(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _spread(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                yield from _spread(fragments[name].selection_set, fragments, seen | {name})


def _child(schema: GraphQLSchema, value: Any, name: str) -> Any:
    """What introspection field `name` of `value` answers with: an object, a list of them,
    or None (a leaf, or a field that does not apply to this kind of value)."""
    if isinstance(value, GraphQLSchema):
        if name == "types":
            return list(schema.type_map.values())
        if name == "directives":
            return list(schema.directives)
        roots = {
            "queryType": schema.query_type,
            "mutationType": schema.mutation_type,
            "subscriptionType": schema.subscription_type,
        }
        return roots.get(name)
    if isinstance(value, GraphQLField | GraphQLDirective) and name == "args":
        return list(value.args.values())
    if isinstance(value, GraphQLField | GraphQLArgument | GraphQLInputField):
        return value.type if name == "type" else None
    if isinstance(value, GraphQLWrappingType):
        return value.of_type if name == "ofType" else None
    if name == "fields" and isinstance(value, GraphQLObjectType | GraphQLInterfaceType):
        return list(value.fields.values())
    if name == "interfaces" and isinstance(value, GraphQLObjectType | GraphQLInterfaceType):
        return list(value.interfaces)
    if name == "possibleTypes" and isinstance(value, GraphQLAbstractType):
        return list(schema.get_possible_types(value))
    if name == "enumValues" and isinstance(value, GraphQLEnumType):
        return list(value.values.values())
    if name == "inputFields" and isinstance(value, GraphQLInputObjectType):
        return list(value.fields.values())
    return None


def introspection_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    budget: int,
) -> int | None:
    """The fields `operation`'s `__schema` and `__type` would answer, or None as soon as
    they pass `budget`."""
    fragments = _fragments(document)
    count = _Count(schema, fragments, variables, budget)
    try:
        for field in _spread(operation.selection_set, fragments, frozenset()):
            if field.name.value in ("__schema", "__type"):
                count.root(field)
    except _OverBudget:
        return None
    return count.spent


class SchemaIntrospection:
    """One schema's description, and the most introspection one document may ask of it;
    each worked out once, the first time it is needed."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self._ordinary_document: DocumentNode | None = None

    @cached_property
    def ordinary(self) -> dict[str, Any]:
        """The answer to the ordinary introspection query."""
        result = execute_sync(self.schema, parse(ORDINARY_QUERY))
        if result.errors or result.data is None:
            raise ValueError(f"the schema cannot describe itself: {result.errors!r}")
        return result.data

    @cached_property
    def budget(self) -> int:
        full = parse(FULL_QUERY)
        [operation] = [d for d in full.definitions if isinstance(d, OperationDefinitionNode)]
        cost = introspection_cost(self.schema, full, operation, {}, budget=10**9)
        assert cost is not None
        return cost * 5 // 4

    def answer(self, document: DocumentNode) -> dict[str, Any] | None:
        """The prebuilt answer when `document` is the ordinary introspection query, written
        in any layout; None otherwise. Only a document shaped like it is printed to compare,
        and the last one that matched is known by identity (the parser's cache hands the
        same text the same document)."""
        if document is self._ordinary_document:
            return self.ordinary
        first = document.definitions[0] if document.definitions else None
        if not (
            isinstance(first, OperationDefinitionNode)
            and len(first.selection_set.selections) == 1
            and isinstance(field := first.selection_set.selections[0], FieldNode)
            and field.name.value == "__schema"
            and field.alias is None
        ):
            return None
        if print_ast(document) != _ORDINARY_TEXT:
            return None
        self._ordinary_document = document
        return self.ordinary


class IntrospectionLimit(SchemaExtension):
    """Answers the ordinary introspection query from the schema's prebuilt description, and
    refuses any other introspection that asks more than one description's worth; runs
    before the cost limit, which then has nothing left to do for either."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        introspection: SchemaIntrospection | None = getattr(context.schema, "introspection", None)
        document = context.graphql_document
        if introspection is None or document is None or context.result is not None:
            yield
            return
        answer = introspection.answer(document)
        if answer is not None:
            context.result = ExecutionResult(data=answer, errors=None)
            yield
            return
        schema = context.schema._schema
        operation = chosen_operation(document, context.operation_name)
        if operation is not None and _introspects(operation, document):
            variables = coerced_variables(schema, operation, context.variables)
            budget = introspection.budget
            # Variables that do not fit their types are execution's to report; nothing runs.
            if (
                variables is not None
                and introspection_cost(schema, document, operation, variables, budget) is None
            ):
                context.result = too_costly(
                    f"This operation's introspection asks for more than {budget} fields, more"
                    " than one description of the schema; ask for it once."
                )
        yield


def _introspects(operation: OperationDefinitionNode, document: DocumentNode) -> bool:
    return any(
        field.name.value in ("__schema", "__type")
        for field in _spread(operation.selection_set, _fragments(document), frozenset())
    )


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
