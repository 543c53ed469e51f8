"""Trusted queries compiled to one SQL statement that builds their answer in PostgreSQL.

A plan (`app.schema.plans`) still reads rows into objects and completes every field of every
row in Python. Where every field a trusted query asks for has a SQL form, this module goes
further, once, at start-up: the whole selection becomes one statement whose single value is
the answer's `data` as JSON, written by PostgreSQL (`json_build_object`, `json_agg`), with
the tenant and grant rules of `app.db.reach` inside it as a relation of the viewer's grants.
A request then binds its grants, its variables and the time, and sends one statement.

A type says how its fields read in SQL with a `Source` beside its definition; a root field
with a `Root`. Anything without one, an argument that does not read as the statement needs
(a malformed id or cursor, a negative `first`), a guard that refuses, or a viewer the portal
refuses, makes the request `NotCompiled`, and it runs as a plan or on the generic executor,
which answer it as they always do. What this module answers is what they answer: a
differential test runs every trusted query both ways for every demo user.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    SelectionSetNode,
    get_named_type,
    is_list_type,
)
from graphql.execution.values import get_argument_values, get_variable_values
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from strawberry.permission import PermissionExtension
from strawberry.relay import GlobalID, GlobalIDValueError
from strawberry.schema.schema import Schema

from app.auth.viewer import PortalViewer
from app.db.base import table_of
from app.db.models import Tenant
from app.db.reach import GRANT_COLUMNS, grant_rows, reach_through
from app.db.scope import SYSTEM
from app.db.session import ConnectionDropped
from app.errors import AppError, DatabaseUnavailable
from app.resolvers.pagination import decode_cursor, page_size
from app.schema.permissions import ViewerPermission
from app.schema.plans import Plan, _Compiler, _Selection

_STRAWBERRY_FIELD = "strawberry-definition"


class NotCompiled(Exception):
    """This request is not one the compiled statement answers alone."""


class _Uncompilable(Exception):
    pass


# --------------------------------------------------------------------------- SQL forms

# A leaf's SQL: given the row's columns and the statement being built.
Leaf = Callable[[Any, "Build"], sa.ColumnElement[Any]]


@dataclass(frozen=True, slots=True)
class Embedded:
    """An object made from its parent's own row (Money from an amount and a currency);
    null where `when` is given and false."""

    fields: Mapping[str, Leaf]
    when: Leaf | None = None


@dataclass(frozen=True, slots=True)
class One:
    """An object of another type, from the one row of `model` that `on` matches."""

    type_name: str
    model: type[Any]
    on: Callable[[Any, Any], sa.ColumnElement[bool]]  # (parent columns, its columns)


@dataclass(frozen=True, slots=True)
class Many:
    """A list of objects of another type, the rows of `model` that `on` matches, in order."""

    type_name: str
    model: type[Any]
    on: Callable[[Any, Any], sa.ColumnElement[bool]]
    order_by: Callable[[Any], list[sa.ColumnElement[Any]]]


@dataclass(frozen=True, slots=True)
class Through:
    """A leaf read from the one row of `model` that `on` matches, when the viewer reaches
    it; null when there is none."""

    model: type[Any]
    on: Callable[[Any, Any], sa.ColumnElement[bool]]  # (parent columns, its columns)
    value: Callable[[Any], sa.ColumnElement[Any]]  # its columns


Form = Leaf | Embedded | One | Many | Through


@dataclass(frozen=True, slots=True)
class Source:
    """How the fields of one GraphQL object type read from a row of `model`."""

    model: type[Any]
    fields: Mapping[str, Form]


def column(name: str) -> Leaf:
    return lambda row, _build: row[name]


def node_id(type_name: str) -> Leaf:
    """The relay id Strawberry gives: base64 of `<type>:<id>`."""
    return lambda row, _build: _base64(sa.literal(f"{type_name}:") + sa.cast(row.id, sa.Text))


def _base64(text: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    # PostgreSQL breaks base64 into lines of 76 characters; Python does not.
    encoded = sa.func.encode(sa.func.convert_to(text, "UTF8"), "base64")
    return sa.func.translate(encoded, "\n", "")


@dataclass(frozen=True, slots=True)
class Connection:
    """A root field answering a relay connection of `type_name`: the rows of `model` the
    viewer reaches, newest first by a date column, a page after a cursor."""

    type_name: str
    model: type[Any]
    sort: str
    # The conditions its arguments add, given the row's columns, as bound parameters.
    where: Callable[[Any], list[sa.ColumnElement[bool]]]
    # Its arguments as the statement binds them (`AppError` for one it refuses).
    bind: Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class NodeRoot:
    """The `node` root field, for the ids of types with a source."""


Root = Connection | NodeRoot

SOURCES: dict[str, Source] = {}
ROOTS: dict[str, Root] = {}


def register(type_name: str, source: Source) -> None:
    SOURCES[type_name] = source


# --------------------------------------------------------------------------- building


class Build:
    """One statement being built: fresh aliases, the grants relation, the bound values."""

    def __init__(self) -> None:
        self._names = itertools.count(1)
        self.now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
        # Whether this service takes card payments at all (`Payments.takes_cards`).
        self.takes_cards = sa.bindparam("takes_cards", type_=sa.Boolean)

    def alias(self, model: type[Any]) -> sa.FromClause:
        return table_of(model).alias(f"t{next(self._names)}")

    def grants(self) -> sa.FromClause:
        types: dict[str, Any] = {
            "tenant": sa.Uuid,
            "customer": sa.Uuid,
            "site": sa.Uuid,
            "modules": ARRAY(sa.Text),
            "paid": sa.Boolean,
        }
        relation = sa.func.jsonb_to_recordset(sa.bindparam("grants", type_=JSONB))
        grants: sa.FromClause = relation.table_valued(
            *(sa.column(name, types[name]) for name in GRANT_COLUMNS)
        ).render_derived(name=f"g{next(self._names)}", with_types=True)
        return grants

    def reach(self, model: type[Any], row: sa.FromClause) -> sa.ColumnElement[bool]:
        if model is Tenant:
            # The businesses of the viewer's grants, as the data layer narrows tenants.
            relation = self.grants()
            return sa.exists(
                sa.select(sa.literal(1)).select_from(relation).where(relation.c.tenant == row.c.id)
            )
        return reach_through(model, row, self.grants)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A trusted query as one statement; `run` answers a request with it."""

    plan: Plan
    statement: sa.Select[Any]
    root: Root
    root_field: FieldNode
    # The viewer guards of every field it reads, checked once per request.
    guards: tuple[ViewerPermission, ...]
    node_types: frozenset[str] = field(default_factory=frozenset)

    async def run(self, context: Any, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        """The operation's `data`, as the generic executor gives it; `NotCompiled` when this
        request is one for the plan or the generic executor."""
        viewer = context.viewer
        if not isinstance(viewer, PortalViewer) or viewer.refusal is not None:
            raise NotCompiled("a viewer the portal refuses")
        info = _ViewerInfo(context)
        for guard in self.guards:
            try:
                allowed = guard.allows(info)  # type: ignore[arg-type]
            except Exception as error:
                raise NotCompiled("a guard refused") from error
            if allowed is not True:
                raise NotCompiled("a guard refused")
        arguments = self._arguments(variables)
        params: dict[str, Any] = {
            "grants": grant_rows(viewer.grants),
            "now": datetime.now(UTC),
            "takes_cards": context.payments.takes_cards,
        }
        try:
            if isinstance(self.root, Connection):
                params.update(self.root.bind(arguments))
            else:
                params.update(_node_arguments(arguments, self.node_types))
        except AppError as error:
            raise NotCompiled("an argument the field refuses") from error
        try:
            rows = await context.db.fetch(SYSTEM, self.statement, params)
        except ConnectionDropped as dropped:
            # Nothing is written by a query: the request may run again from the start.
            raise DatabaseUnavailable(retry_safe=True) from dropped
        # Read back, so the answer goes out written exactly as every other answer is.
        data: dict[str, Any] = orjson.loads(rows[0][0])
        return data

    def _arguments(self, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        schema = self.plan.schema._schema
        coerced = get_variable_values(
            schema, self.plan.operation.variable_definitions or (), dict(variables or {})
        )
        if isinstance(coerced, list):
            raise NotCompiled("the variables do not coerce")
        query = schema.query_type
        assert query is not None
        definition = query.fields[self.root_field.name.value]
        try:
            return get_argument_values(definition, self.root_field, coerced)
        except GraphQLError as error:
            raise NotCompiled("an argument does not coerce") from error


class _ViewerInfo:
    """What a viewer guard reads: the request's context."""

    def __init__(self, context: Any) -> None:
        self.context = context


def _node_arguments(arguments: Mapping[str, Any], types: frozenset[str]) -> dict[str, Any]:
    try:
        global_id = GlobalID.from_id(arguments["id"])
    except (GlobalIDValueError, ValueError) as error:
        raise NotCompiled("a malformed id") from error
    if global_id.type_name not in types:
        raise NotCompiled("an id of a type without a source")
    try:
        return {"node_type": global_id.type_name, "node_id": uuid.UUID(global_id.node_id)}
    except ValueError as error:
        raise NotCompiled("an id that is not a uuid") from error


def compile_query(plan: Plan) -> Compiled | None:
    """The plan's query as one statement, or None where it reads something without a SQL
    form (it then runs as the plan)."""
    try:
        return _QueryCompiler(plan).compile()
    except _Uncompilable:
        return None


class _QueryCompiler:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.schema: Schema = plan.schema
        fragments = {
            definition.name.value: definition
            for definition in plan.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.selections = _Compiler(plan.schema, fragments)
        self.build = Build()
        self.guards: list[ViewerPermission] = []

    def compile(self) -> Compiled:
        root = self.plan.root
        planned = [f for f in root.fields if f.definition is not None]
        if len(root.fields) != 1 or len(planned) != 1 or planned[0].conditional:
            raise _Uncompilable("one root field, unconditional")
        top = planned[0]
        name = top.nodes[0].name.value
        form = ROOTS.get(name)
        if form is None or len(top.nodes) != 1 or top.nodes[0].arguments is None:
            raise _Uncompilable(f"no SQL form for the root field {name}")
        self._guard(top.definition)
        if isinstance(form, Connection):
            value, node_types = self._connection(form, top), frozenset[str]()
        else:
            value, node_types = self._node(top)
        statement = sa.select(sa.cast(sa.func.json_build_object(_key(top.key), value), sa.Text))
        return Compiled(
            plan=self.plan,
            statement=statement,
            root=form,
            root_field=top.nodes[0],
            guards=tuple(dict.fromkeys(self.guards)),
            node_types=node_types,
        )

    # -- guards and selections

    def _guard(self, definition: Any) -> None:
        strawberry_field = (definition.extensions or {}).get(_STRAWBERRY_FIELD)
        for extension in getattr(strawberry_field, "extensions", ()):
            if not isinstance(extension, PermissionExtension):
                raise _Uncompilable("a field extension other than a guard")
            for permission in extension.permissions:
                if not isinstance(permission, ViewerPermission):
                    raise _Uncompilable("a guard that reads more than the viewer")
                self.guards.append(permission)

    def _children(self, kind: GraphQLObjectType, nodes: list[FieldNode]) -> _Selection:
        sets: list[SelectionSetNode] = [n.selection_set for n in nodes if n.selection_set]
        return self.selections.selection(kind, sets)

    def _object(
        self, kind: GraphQLObjectType, nodes: list[FieldNode], row: Any, source: Source | None
    ) -> sa.ColumnElement[Any]:
        """`json_build_object` of the fields asked of `kind`, read from `row`."""
        selection = self._children(kind, nodes)
        pairs: list[Any] = []
        for planned in selection.fields:
            if planned.conditional:
                raise _Uncompilable("a conditional field")
            pairs.append(_key(planned.key))
            if planned.definition is None:
                pairs.append(sa.literal(kind.name))
                continue
            self._guard(planned.definition)
            name = planned.nodes[0].name.value
            form = source.fields.get(name) if source is not None else None
            if form is None:
                raise _Uncompilable(f"no SQL form for {kind.name}.{name}")
            pairs.append(self._value(planned.definition.type, planned.nodes, row, form))
        return sa.func.json_build_object(*pairs)

    def _value(
        self, kind: GraphQLOutputType, nodes: list[FieldNode], row: Any, form: Form
    ) -> sa.ColumnElement[Any]:
        named = get_named_type(kind)
        if isinstance(form, Embedded):
            assert isinstance(named, GraphQLObjectType)
            embedded = Source(model=type(None), fields=form.fields)
            value = self._object(named, nodes, row, embedded)
            if form.when is None:
                return value
            return sa.case((form.when(row, self.build), value), else_=sa.null())
        if isinstance(form, One):
            assert isinstance(named, GraphQLObjectType)
            source = SOURCES[form.type_name]
            target = self.build.alias(form.model)
            value = self._object(named, nodes, target.c, source)
            return (
                sa.select(value)
                .select_from(target)
                .where(form.on(row, target.c), self.build.reach(form.model, target))
                .scalar_subquery()
            )
        if isinstance(form, Many):
            assert isinstance(named, GraphQLObjectType) and is_list_type(_nullable(kind))
            source = SOURCES[form.type_name]
            target = self.build.alias(form.model)
            value = self._object(named, nodes, target.c, source)
            listed = sa.func.json_agg(aggregate_order_by(value, *form.order_by(target.c)))
            return (
                sa.select(sa.func.coalesce(listed, sa.text("'[]'::json")))
                .select_from(target)
                .where(form.on(row, target.c), self.build.reach(form.model, target))
                .scalar_subquery()
            )
        if isinstance(named, GraphQLObjectType):
            raise _Uncompilable("an object field with a leaf's form")
        if isinstance(form, Through):
            target = self.build.alias(form.model)
            return (
                sa.select(form.value(target.c))
                .where(form.on(row, target.c), self.build.reach(form.model, target))
                .scalar_subquery()
            )
        return form(row, self.build)

    # -- roots

    def _connection(self, form: Connection, top: Any) -> sa.ColumnElement[Any]:
        kind = get_named_type(top.definition.type)
        assert isinstance(kind, GraphQLObjectType)
        source = SOURCES.get(form.type_name)
        if source is None:
            raise _Uncompilable(f"no source for {form.type_name}")
        row = self.build.alias(form.model)
        sort, row_id = row.c[form.sort], row.c.id
        size = sa.bindparam("size", type_=sa.Integer)
        after_sort = sa.bindparam("after_sort", type_=row.c[form.sort].type)
        after_id = sa.bindparam("after_id", type_=sa.Uuid)
        order = [sort.desc(), row_id.desc()]
        page = (
            sa.select(
                row,
                sa.func.row_number().over(order_by=order).label("rn"),
                _cursor(sort, row_id).label("cursor"),
            )
            .where(
                self.build.reach(form.model, row),
                *form.where(row.c),
                sa.or_(
                    after_sort.is_(None),
                    sort < after_sort,
                    sa.and_(sort == after_sort, row_id < after_id),
                ),
            )
            .order_by(*order)
            .limit(size + 1)
            .subquery(f"page{form.type_name}")
        )
        within = page.c.rn <= size

        def edges(planned: Any) -> sa.ColumnElement[Any]:
            edge = get_named_type(planned.definition.type)
            assert isinstance(edge, GraphQLObjectType)
            node_type = get_named_type(edge.fields["node"].type)
            assert isinstance(node_type, GraphQLObjectType)
            each = self._fixed(
                edge,
                planned.nodes,
                {
                    "cursor": lambda _planned: page.c.cursor,
                    "node": lambda node: self._object(node_type, node.nodes, page.c, source),
                },
            )
            listed = sa.func.json_agg(aggregate_order_by(each, page.c.rn))
            return sa.func.coalesce(listed.filter(within), sa.text("'[]'::json"))

        def page_info(planned: Any) -> sa.ColumnElement[Any]:
            info = get_named_type(planned.definition.type)
            assert isinstance(info, GraphQLObjectType)
            last = sa.func.array_agg(aggregate_order_by(page.c.cursor, page.c.rn.desc()))
            return self._fixed(
                info,
                planned.nodes,
                {
                    "hasNextPage": lambda _planned: sa.func.count() > size,
                    "endCursor": lambda _planned: sa.type_coerce(
                        last.filter(within), ARRAY(sa.Text)
                    )[1],
                },
            )

        value = self._fixed(kind, top.nodes, {"edges": edges, "pageInfo": page_info})
        return sa.select(value).select_from(page).scalar_subquery()

    def _fixed(
        self,
        kind: GraphQLObjectType,
        nodes: list[FieldNode],
        values: Mapping[str, Callable[[Any], sa.ColumnElement[Any]]],
    ) -> sa.ColumnElement[Any]:
        """`json_build_object` of the fields asked of a type the statement writes itself (a
        connection, its edges, its page info): each from `values`, by field name."""
        pairs: list[Any] = []
        for planned in self._children(kind, nodes).fields:
            if planned.conditional:
                raise _Uncompilable("a conditional field")
            pairs.append(_key(planned.key))
            if planned.definition is None:
                pairs.append(sa.literal(kind.name))
                continue
            value = values.get(planned.nodes[0].name.value)
            if value is None:
                raise _Uncompilable(f"{kind.name}.{planned.nodes[0].name.value}")
            pairs.append(value(planned))
        return sa.func.json_build_object(*pairs)

    def _node(self, top: Any) -> tuple[sa.ColumnElement[Any], frozenset[str]]:
        node_type = sa.bindparam("node_type", type_=sa.Text)
        node_id = sa.bindparam("node_id", type_=sa.Uuid)
        cases: list[Any] = []
        types: set[str] = set()
        for possible in self.schema._schema.get_possible_types(get_named_type(top.definition.type)):
            source = SOURCES.get(possible.name)
            if source is None or not self._children(possible, top.nodes).fields:
                # An id of a type the query asks nothing of is left to the plan.
                continue
            row = self.build.alias(source.model)
            value = self._object(possible, top.nodes, row.c, source)
            found = (
                sa.select(value)
                .select_from(row)
                .where(row.c.id == node_id, self.build.reach(source.model, row))
                .scalar_subquery()
            )
            cases.append((node_type == possible.name, found))
            types.add(possible.name)
        if not cases:
            raise _Uncompilable("no type of the node has a source")
        return sa.case(*cases, else_=sa.null()), frozenset(types)


def _nullable(kind: GraphQLOutputType) -> GraphQLOutputType:
    return kind.of_type if isinstance(kind, GraphQLNonNull) else kind


def _key(name: str) -> sa.ColumnElement[str]:
    # A response key is a GraphQL name ([_A-Za-z][_0-9A-Za-z]*): safe to write as it is.
    return sa.literal_column(f"'{name}'")


def _cursor(sort: Any, row_id: Any) -> sa.ColumnElement[str]:
    """The cursor `encode_cursor` gives for a date sort: URL-safe base64 of
    `["<date>","<id>"]`."""
    text = (
        sa.literal('["')
        + sa.func.to_char(sort, "YYYY-MM-DD")
        + sa.literal('","')
        + sa.cast(row_id, sa.Text)
        + sa.literal('"]')
    )
    return sa.func.translate(
        sa.func.encode(sa.func.convert_to(text, "UTF8"), "base64"), "+/\n", "-_"
    )


def page_arguments(arguments: Mapping[str, Any], sort_type: type[Any]) -> dict[str, Any]:
    """`first` and `after` as a connection's statement binds them, by the rules of
    `keyset_page`: the same size, the same refusals."""
    size = page_size(arguments.get("first"))
    after = arguments.get("after")
    if after is None:
        return {"size": size, "after_sort": None, "after_id": None}
    sort_value, after_id = decode_cursor(after, sort_type)
    return {"size": size, "after_sort": sort_value, "after_id": after_id}
