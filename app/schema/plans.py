"""Trusted queries run as plans compiled once, at start-up.

The generic executor works out, for every field of every row, what the field is, which
resolver it has, how its value completes and whether it must wait; for a page of 50
invoices that is hundreds of decisions, every request. A plan makes them once per trusted
document: it knows each selection's fields for each type it can meet, which of them are
plain attributes (read directly, no resolver call), and how each value completes. Per
request it coerces the variables, builds each field's resolver info and arguments once
(not once per row), runs the resolvers that are real code exactly as the generic executor
would (their guards included), and waits for every pending value of a level together, so
the loaders batch as they do there.

Fields under @skip or @include are planned too, their conditions read once per request.
A plan answers only what it can answer exactly as the generic executor would. Anything
else (an error, a null where the schema promises a value, a variable that does not
coerce) stops it with `CannotPlan`, and the request runs on the generic executor from the
start instead, which answers with the errors it always gives. Only queries are planned:
they write nothing, so running one again changes nothing.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    is_abstract_type,
    is_leaf_type,
    type_from_ast,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path
from strawberry import relay
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.permission import PermissionExtension
from strawberry.relay import GlobalID
from strawberry.schema.schema import Schema, StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from app.schema.permissions import ViewerPermission

_STRAWBERRY_FIELD = "strawberry-definition"
# graphql-core's String and ID give a str back as it is, Boolean a bool: the plan skips the
# call for them. Int checks its range and Float its finiteness, so they are always called.
_UNCHANGED: dict[GraphQLScalarType, type[Any]] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLBoolean: bool,
}
_CONDITIONS = {"skip": GraphQLSkipDirective, "include": GraphQLIncludeDirective}

# How one value completes: given the run and what the resolver gave, the JSON-ready value.
Complete = Callable[["_Run", "_Field", Any], Any]


class CannotPlan(Exception):
    """This request is one the plan does not answer alone; the generic executor will."""


@dataclass(eq=False, slots=True)
class _Field:
    key: str
    nodes: list[FieldNode]
    parent: GraphQLObjectType
    definition: GraphQLField | None  # None for __typename
    # The Python attribute of a field with no resolver of its own, read directly.
    attribute: str | None
    # A resolver called directly, its guards checked once per request (see `_direct`).
    direct: StrawberryField | None = None
    # Asked for only as its @skip or @include says, with this request's variables.
    conditional: bool = False
    # A relay node's own `id`, made here from its id attribute: (the node class, attribute).
    node_id: tuple[type[Any], str] | None = None
    complete: Complete = field(init=False)


@dataclass(eq=False, slots=True)
class _Selection:
    """What one selection set asks of one concrete type."""

    type: GraphQLObjectType
    fields: list[_Field]


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    operation: OperationDefinitionNode
    document: DocumentNode
    schema: Schema
    root: _Selection

    async def run(self, context: Any, root_value: Any, variables: Mapping[str, Any] | None) -> Any:
        """The operation's `data`, exactly as the generic executor gives it; `CannotPlan`
        when it would give errors instead."""
        executor = StrawberryGraphQLCoreExecutionContext.build(
            self.schema._schema,
            self.document,
            root_value=root_value,
            context_value=context,
            raw_variable_values=dict(variables or {}),
            operation_name=self.name,
            is_awaitable=cast("Any", optimized_is_awaitable),
        )
        if isinstance(executor, list):
            raise CannotPlan("the variables do not coerce")
        return await _Run(self.schema, executor).start(self.root, root_value)


class _Run:
    """One request's walk through a plan."""

    __slots__ = ("conditions", "executor", "pending", "prepared", "schema")

    def __init__(self, schema: Schema, executor: Any) -> None:
        self.schema = schema
        self.executor = executor
        # Values still to come: (awaitable, the object it belongs in, its field).
        self.pending: list[tuple[Awaitable[Any], dict[str, Any], _Field]] = []
        # Each resolver field's info and arguments, built once per request.
        self.prepared: dict[_Field, tuple[Any, dict[str, Any]]] = {}
        self.conditions: dict[_Field, bool] = {}

    async def start(self, root: _Selection, root_value: Any) -> dict[str, Any]:
        try:
            return await self._walk(root, root_value)
        except CannotPlan:
            # What was started and will not be waited for is closed, not left to warn.
            for awaitable, _, _ in self.pending:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
            raise

    async def _walk(self, root: _Selection, root_value: Any) -> dict[str, Any]:
        data = self.object(root, root_value)
        while self.pending:
            waiting, self.pending = self.pending, []
            values = await asyncio.gather(
                *(awaitable for awaitable, _, _ in waiting), return_exceptions=True
            )
            for (_, into, planned), value in zip(waiting, values, strict=True):
                if isinstance(value, BaseException):
                    raise CannotPlan("a resolver failed") from value
                into[planned.key] = planned.complete(self, planned, value)
        return data

    def included(self, planned: _Field) -> bool:
        included = self.conditions.get(planned)
        if included is None:
            node, variables = planned.nodes[0], self.executor.variable_values
            try:
                included = all(
                    get_argument_values(_CONDITIONS[directive.name.value], directive, variables)[
                        "if"
                    ]
                    is (directive.name.value == "include")
                    for directive in node.directives or ()
                )
            except GraphQLError as error:
                raise CannotPlan("a condition does not coerce") from error
            self.conditions[planned] = included
        return included

    def info(self, planned: _Field) -> tuple[Any, dict[str, Any]]:
        prepared = self.prepared.get(planned)
        if prepared is None:
            assert planned.definition is not None
            info = self.executor.build_resolve_info(
                planned.definition,
                planned.nodes,
                planned.parent,
                Path(None, planned.key, planned.parent.name),
            )
            try:
                arguments = get_argument_values(
                    planned.definition, planned.nodes[0], self.executor.variable_values
                )
            except GraphQLError as error:
                raise CannotPlan("an argument does not coerce") from error
            if planned.direct is not None:
                arguments = self._direct(planned.direct, info, arguments)
            prepared = self.prepared[planned] = (info, arguments)
        return prepared

    def _direct(
        self, strawberry_field: StrawberryField, raw_info: Any, raw_arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """What the generic executor works out on every call of this field, worked out once:
        Strawberry's info, the arguments as the resolver takes them, and the field's guards.
        They read the viewer alone (`ViewerPermission`), so once per request says all."""
        info = self.schema.config.info_class(_raw_info=raw_info, _field=strawberry_field)
        arguments = convert_arguments(
            raw_arguments,
            strawberry_field.arguments,
            scalar_registry=self.schema.schema_converter.scalar_registry,
            config=self.schema.config,
            info=info,
        )
        for extension in strawberry_field.extensions:
            arguments = extension.map_arguments(arguments)
        for extension in strawberry_field.extensions:
            assert isinstance(extension, PermissionExtension)
            for permission in extension.permissions:
                assert isinstance(permission, ViewerPermission)
                try:
                    allowed = permission.allows(info, **arguments)
                except Exception as error:
                    raise CannotPlan("a guard refused") from error
                if allowed is not True:
                    raise CannotPlan("a guard refused")
        resolver = strawberry_field.base_resolver
        assert resolver is not None
        if resolver.info_parameter is not None:
            arguments[resolver.info_parameter.name] = info
        return arguments

    def object(self, selection: _Selection, source: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for planned in selection.fields:
            if planned.conditional and not self.included(planned):
                continue
            if planned.definition is None:
                result[planned.key] = selection.type.name
                continue
            if planned.attribute is not None:
                value = getattr(source, planned.attribute)
            elif planned.node_id is not None and type(source) is planned.node_id[0]:
                value = GlobalID(
                    type_name=selection.type.name, node_id=str(getattr(source, planned.node_id[1]))
                )
            elif planned.direct is not None:
                _, arguments = self.info(planned)
                try:
                    value = _call(planned.direct, source, arguments)
                except Exception as error:
                    raise CannotPlan("a resolver failed") from error
            else:
                info, arguments = self.info(planned)
                try:
                    value = planned.definition.resolve(source, info, **arguments)  # type: ignore[misc]
                except Exception as error:
                    raise CannotPlan("a resolver failed") from error
            if optimized_is_awaitable(value):
                result[planned.key] = None
                self.pending.append((value, result, planned))
            else:
                result[planned.key] = planned.complete(self, planned, value)
        return result


def _call(strawberry_field: StrawberryField, source: Any, arguments: dict[str, Any]) -> Any:
    resolver = strawberry_field.base_resolver
    assert resolver is not None
    for parameter in (resolver.parent_parameter, resolver.root_parameter):
        if parameter is not None:
            arguments = {**arguments, parameter.name: source}
    if resolver.self_parameter is not None:
        return resolver(source, **arguments)
    return resolver(**arguments)


def _node_id(parent: GraphQLObjectType, strawberry_field: Any) -> tuple[type[Any], str] | None:
    """Where a relay node's `id` comes from, when its class leaves the id and the type name to
    Strawberry's defaults: the generic executor would make the same GlobalID through them."""
    definition = (parent.extensions or {}).get(_STRAWBERRY_FIELD)
    origin = getattr(definition, "origin", None)
    if (
        strawberry_field is None
        or strawberry_field.python_name != "_id"
        or not (isinstance(origin, type) and issubclass(origin, relay.Node))
        or origin.resolve_id.__func__ is not relay.Node.resolve_id.__func__  # type: ignore[attr-defined]
        or origin.resolve_typename.__func__ is not relay.Node.resolve_typename.__func__  # type: ignore[attr-defined]
    ):
        return None
    return origin, origin.resolve_id_attr()


def compile_plan(
    schema: Schema, document: DocumentNode, operation_name: str | None = None
) -> Plan | None:
    """A plan for the document's query, or None where it asks for something plans leave
    to the generic executor (directives on selections, introspection, mutations)."""
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
        and (
            operation_name is None or (definition.name and definition.name.value == operation_name)
        )
    ]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return None
    operation = operations[0]
    query_type = schema._schema.query_type
    if operation.name is None or query_type is None:
        return None
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    try:
        root = _Compiler(schema, fragments).selection(query_type, [operation.selection_set])
    except _Unplannable:
        return None
    return Plan(
        name=operation.name.value, operation=operation, document=document, schema=schema, root=root
    )


class _Unplannable(Exception):
    pass


class _Compiler:
    def __init__(self, schema: Schema, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.strawberry = schema
        self.schema: GraphQLSchema = schema._schema
        self.fragments = fragments

    def selection(
        self, kind: GraphQLObjectType, selection_sets: list[SelectionSetNode]
    ) -> _Selection:
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(kind, selection_set, grouped, set())
        return _Selection(
            type=kind, fields=[self._field(kind, key, nodes) for key, nodes in grouped.items()]
        )

    def _collect(
        self,
        kind: GraphQLObjectType,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if selection.directives and not (
                isinstance(selection, FieldNode)
                and all(d.name.value in _CONDITIONS for d in selection.directives)
            ):
                raise _Unplannable("directives other than @skip and @include on a field")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._applies(selection, kind):
                    self._collect(kind, selection.selection_set, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if fragment.directives:
                    raise _Unplannable("directives on a fragment")
                if self._applies(fragment, kind):
                    self._collect(kind, fragment.selection_set, grouped, visited)

    def _applies(
        self, fragment: InlineFragmentNode | FragmentDefinitionNode, kind: GraphQLObjectType
    ) -> bool:
        if fragment.type_condition is None:
            return True
        condition = type_from_ast(self.schema, fragment.type_condition)
        if condition is kind:
            return True
        return is_abstract_type(condition) and self.schema.is_sub_type(condition, kind)

    def _field(self, parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> _Field:
        name = nodes[0].name.value
        if name == "__typename":
            planned = _Field(key=key, nodes=nodes, parent=parent, definition=None, attribute=None)
            planned.complete = _as_is
            return planned
        if name.startswith("__"):
            raise _Unplannable("introspection is left to the generic executor")
        definition = parent.fields.get(name)
        if definition is None:
            raise _Unplannable(f"{parent.name} has no field {name}")
        conditional = [node for node in nodes if node.directives]
        if conditional and len(nodes) > 1:
            raise _Unplannable("a field both conditional and merged")
        strawberry_field = (definition.extensions or {}).get(_STRAWBERRY_FIELD)
        # Strawberry marks every field without a resolver as default, guarded or not: only a
        # field with neither resolver nor extensions is read directly.
        plain = (
            getattr(definition.resolve, "_is_default", False)
            and strawberry_field is not None
            and strawberry_field.is_basic_field
        )
        planned = _Field(
            key=key,
            nodes=nodes,
            parent=parent,
            definition=definition,
            attribute=strawberry_field.python_name if plain and strawberry_field else None,
            direct=strawberry_field if not plain and self._callable(strawberry_field) else None,
            conditional=bool(conditional),
            node_id=_node_id(parent, strawberry_field),
        )
        children = [node.selection_set for node in nodes if node.selection_set is not None]
        planned.complete = self._completion(definition.type, children)
        return planned

    def _callable(self, strawberry_field: StrawberryField | None) -> bool:
        """Whether the plan may call this field's resolver itself: a resolver of ours whose
        only extensions are guards that read the viewer alone, with no error handlers."""
        if strawberry_field is None or strawberry_field.base_resolver is None:
            return False
        converter = self.strawberry.schema_converter
        if converter._get_field_exception_handlers(strawberry_field):
            return False
        return all(
            isinstance(extension, PermissionExtension)
            and all(isinstance(p, ViewerPermission) for p in extension.permissions)
            for extension in strawberry_field.extensions
        )

    def _completion(self, kind: GraphQLOutputType, children: list[SelectionSetNode]) -> Complete:
        if isinstance(kind, GraphQLNonNull):
            inner = self._completion(kind.of_type, children)

            def non_null(run: _Run, planned: _Field, value: Any) -> Any:
                if value is None:
                    raise CannotPlan("a null where the schema promises a value")
                return inner(run, planned, value)

            return non_null
        if isinstance(kind, GraphQLList):
            item = self._completion(kind.of_type, children)

            def listed(run: _Run, planned: _Field, value: Any) -> Any:
                if value is None:
                    return None
                if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
                    raise CannotPlan("a list field gave something else")
                completed = []
                for entry in value:
                    if optimized_is_awaitable(entry):
                        raise CannotPlan("a list of values still to come")
                    completed.append(item(run, planned, entry))
                return completed

            return listed
        if is_leaf_type(kind):
            serialize = kind.serialize
            # The Python type each built-in scalar gives back unchanged when handed one.
            unchanged = _UNCHANGED.get(kind) if isinstance(kind, GraphQLScalarType) else None

            def leaf(run: _Run, planned: _Field, value: Any) -> Any:
                if value is None:
                    return None
                if type(value) is unchanged:
                    return value
                try:
                    serialized = serialize(value)
                except Exception as error:
                    raise CannotPlan("a value does not serialize") from error
                if serialized is None or serialized is Undefined:
                    raise CannotPlan("a value does not serialize")
                return serialized

            return leaf
        if isinstance(kind, GraphQLObjectType):
            return self._object_completion(kind, self.selection(kind, children))
        assert isinstance(kind, GraphQLAbstractType)
        return self._abstract_completion(kind, children)

    @staticmethod
    def _object_completion(kind: GraphQLObjectType, selection: _Selection) -> Complete:
        is_type_of = kind.is_type_of

        def complete_object(run: _Run, planned: _Field, value: Any) -> Any:
            if value is None:
                return None
            if is_type_of is not None and not is_type_of(value, run.info(planned)[0]):
                raise CannotPlan("a value of another type")
            return run.object(selection, value)

        return complete_object

    def _abstract_completion(
        self, kind: GraphQLAbstractType, children: list[SelectionSetNode]
    ) -> Complete:
        by_type = {
            possible.name: self._object_completion(possible, self.selection(possible, children))
            for possible in self.schema.get_possible_types(kind)
        }
        resolve_type = kind.resolve_type

        def complete_abstract(run: _Run, planned: _Field, value: Any) -> Any:
            if value is None:
                return None
            if resolve_type is None:
                raise CannotPlan("no way to tell the value's type")
            runtime = resolve_type(value, run.info(planned)[0], kind)
            complete = by_type.get(runtime) if isinstance(runtime, str) else None
            if complete is None:
                raise CannotPlan("a value of a type the plan does not know")
            return complete(run, planned, value)

        return complete_abstract


def _as_is(run: _Run, planned: _Field, value: Any) -> Any:
    return value
