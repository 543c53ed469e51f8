"""T1, S5, E14 and SECURITY rows 1 and 4, generated from the printed SDL, not hand-listed:
every field that gives a module's data carries its directive; a user without a module is
refused on exactly those fields; and another tenant's or another customer's id, sent to any
field that takes an id, answers exactly like a made-up id and writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    build_schema,
    get_named_type,
)
from sqlmodel import SQLModel, col
from strawberry.relay import to_base64

from app.dataloaders import Loaders
from app.db.models import (
    ALL_MODULES,
    AuditEntry,
    Contact,
    Customer,
    Message,
    MessageThread,
    PortalAccount,
    PortalMembership,
    PortalModule,
    RequestableItem,
    ServiceRequest,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from app.sdl import PORTAL_SDL, STAFF_SDL
from app.settings import Environment, Settings
from tests.support import (
    PORTAL,
    STAFF,
    account_and_contact,
    error_codes,
    portal_token,
    staff_token,
)

TEST_SETTINGS = Settings(env=Environment.TEST)
COMPANY_USER = "facilities@harbourview.example"  # acme, company contact, every module
OWNER = "owner@acme.example"
# What a request may change without writing anything of the caller's: its own session use
# and the counters that limit it.
BOOKKEEPING = {"auth_sessions", "rate_limit_counters", "refresh_tokens"}


def _sdl(path: Any) -> GraphQLSchema:
    return build_schema(path.read_text())


def _directives(node: Any) -> dict[str, dict[str, str]]:
    ast = node.ast_node
    return {
        directive.name.value: {
            argument.name.value: getattr(argument.value, "value", "")
            for argument in directive.arguments or ()
        }
        for directive in (ast.directives if ast is not None else ()) or ()
    }


def _module_of(kind: GraphQLObjectType) -> str | None:
    return _directives(kind).get("requiresModule", {}).get("module")


def _data_type(kind: GraphQLOutputType) -> GraphQLObjectType | None:
    """The object a field gives, seen through lists and connections (`edges { node }`)."""
    named = get_named_type(kind)
    if not isinstance(named, GraphQLObjectType):
        return None
    if named.name.endswith("Connection") and "edges" in named.fields:
        edge = get_named_type(named.fields["edges"].type)
        assert isinstance(edge, GraphQLObjectType)
        node = get_named_type(edge.fields["node"].type)
        return node if isinstance(node, GraphQLObjectType) else None
    return named


def _all_fields(schema: GraphQLSchema) -> list[tuple[GraphQLObjectType, str, GraphQLField]]:
    return [
        (kind, name, field)
        for kind in schema.type_map.values()
        if isinstance(kind, GraphQLObjectType) and not kind.name.startswith("__")
        for name, field in kind.fields.items()
    ]


# -- The policy map is complete -------------------------------------------------------------


def test_e14_every_field_giving_a_modules_data_carries_that_modules_directive() -> None:
    missing = []
    for parent, name, field in _all_fields(_sdl(PORTAL_SDL)):
        if parent.name.endswith(("Connection", "Edge")):
            continue  # plumbing: the field giving the connection carries the directive
        given = _data_type(field.type)
        module = _module_of(given) if given is not None else None
        if module is not None and _directives(field).get("requiresModule") != {"module": module}:
            missing.append(f"{parent.name}.{name} gives {module} data")
    assert not missing, f"fields giving a module's data without its @requiresModule: {missing}"


def test_e14_every_portal_module_has_fields_and_types() -> None:
    schema = _sdl(PORTAL_SDL)
    guarded = {
        _directives(field)["requiresModule"]["module"]
        for _, _, field in _all_fields(schema)
        if "requiresModule" in _directives(field)
    }
    assert guarded == set(ALL_MODULES)


def test_t1_every_portal_root_field_but_viewer_node_and_branding_needs_a_signed_in_user() -> None:
    query = _sdl(PORTAL_SDL).query_type
    assert query is not None
    open_fields = {name for name, field in query.fields.items() if "public" in _directives(field)}
    assert open_fields == {"viewer", "node", "branding"}


# -- A user without a module is refused on exactly its fields --------------------------------


DATES = {
    "from": "2026-01-01",
    "to": "2026-12-31",
    # A job nobody wrote about: the conversation is null, never refused by a module.
    "about": to_base64("Job", str(uuid.UUID(int=0))),
}


def _required(spec: GraphQLArgument | GraphQLInputField) -> bool:
    # A schema built from SDL keeps defaults only in its syntax tree.
    has_default = spec.ast_node is not None and spec.ast_node.default_value is not None
    return isinstance(spec.type, GraphQLNonNull) and not has_default


def _root_query(name: str, field: GraphQLField) -> tuple[str, dict[str, Any]]:
    required = {arg: DATES[arg] for arg, spec in field.args.items() if _required(spec)}
    declared = ", ".join(f"${arg}: {field.args[arg].type}" for arg in required)
    passed = ", ".join(f"{arg}: ${arg}" for arg in required)
    call = f"{name}({passed})" if passed else name
    selection = _selection(field.type)
    head = f"query ({declared})" if declared else "query"
    return f"{head} {{ {call}{selection} }}", required


def _selection(kind: GraphQLOutputType) -> str:
    named = get_named_type(kind)
    if isinstance(named, GraphQLInterfaceType):
        return " { __typename ... on Node { id } }"
    if not isinstance(named, GraphQLObjectType):
        return ""
    if named.name.endswith("Connection"):
        return " { edges { node { __typename ... on Node { id } } } }"
    if not any(interface.name == "Node" for interface in named.interfaces):
        return " { __typename }"
    return " { __typename ... on Node { id } }"


async def _account(db: Database, email: str) -> PortalAccount:
    async with db.session(SYSTEM) as session:
        account = await session.scalar(
            sa.select(PortalAccount).where(col(PortalAccount.email) == email)
        )
    assert account is not None, email
    return account


async def _narrow(db: Database, account: PortalAccount, modules: list[str] | None) -> None:
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(PortalMembership)
            .where(col(PortalMembership.account_id) == account.id)
            .values(module_override=modules)
        )


async def _post(
    client: httpx.AsyncClient, path: str, token: str, document: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        path,
        json={"query": document, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ids_by_type(
    client: httpx.AsyncClient, token: str, schema: GraphQLSchema
) -> dict[str, str]:
    """One id of every type the root lists give, as a user with every module sees them."""
    assert schema.query_type is not None
    found: dict[str, str] = {}
    for name, field in schema.query_type.fields.items():
        if "public" in _directives(field):
            continue
        document, variables = _root_query(name, field)
        body = await _post(client, PORTAL, token, document, variables)
        assert "errors" not in body, (name, body)
        value = body["data"][name]
        items = [edge["node"] for edge in value["edges"]] if isinstance(value, dict) else value
        for item in items if isinstance(items, list) else []:
            if "id" in item:
                found.setdefault(item["__typename"], item["id"])
    return found


@pytest.mark.parametrize("module", list(PortalModule))
async def test_e14_a_user_without_a_module_is_refused_on_exactly_the_fields_the_sdl_marks(
    demo_db: Database, demo_client: httpx.AsyncClient, module: PortalModule
) -> None:
    schema = _sdl(PORTAL_SDL)
    assert schema.query_type is not None
    account = await _account(demo_db, COMPANY_USER)
    token = await portal_token(demo_db, TEST_SETTINGS, account)
    ids = await _ids_by_type(demo_client, token, schema)
    await _narrow(demo_db, account, [m for m in ALL_MODULES if m != module.value])

    for name, field in schema.query_type.fields.items():
        if "public" in _directives(field):
            continue
        document, variables = _root_query(name, field)
        body = await _post(demo_client, PORTAL, token, document, variables)
        marked = _directives(field).get("requiresModule", {}).get("module")
        refused = error_codes(body) == ["MODULE_FORBIDDEN"]
        assert refused == (marked == module.value), (name, body)
        if refused:
            assert body["data"] is None

    mutation = schema.mutation_type
    assert mutation is not None
    for name, field in mutation.fields.items():
        marked = _directives(field).get("requiresModule", {}).get("module")
        if marked is None:
            continue  # sign-in and account fields: no module to lack
        document, variables = _call("mutation", name, field)
        body = await _post(demo_client, PORTAL, token, document, variables)
        assert (error_codes(body) == ["MODULE_FORBIDDEN"]) == (marked == module.value), body

    for parent, name, field in _all_fields(schema):
        marked = _directives(field).get("requiresModule", {}).get("module")
        if parent in (schema.query_type, mutation) or marked is None:
            continue
        if not any(interface.name == "Node" for interface in parent.interfaces):
            # Reached only through fields that give its module, which carry the same guard.
            assert _module_of(parent) == marked, f"{parent.name}.{name} cannot be reached"
            continue
        assert parent.name in ids, f"no {parent.name} in the demo to reach {parent.name}.{name}"
        document = (
            f'query {{ node(id: "{ids[parent.name]}") {{ ... on {parent.name} '
            f"{{ {name}{_selection(field.type)} }} }} }}"
        )
        body = await _post(demo_client, PORTAL, token, document, {})
        if _module_of(parent) == module.value:
            # The data layer does not reach a record of a module the user lacks at all.
            assert body == {"data": {"node": None}}, (parent.name, name, body)
            continue
        refused = error_codes(body) == ["MODULE_FORBIDDEN"]
        assert refused == (marked == module.value), (parent.name, name, body)


# -- Another tenant's or customer's id is a made-up id ---------------------------------------


@dataclass(frozen=True)
class IdSlot:
    """Where an id goes in one operation: an argument, or a field of an input argument."""

    schema: str
    kind: str
    field_name: str
    argument: str
    input_field: str | None
    target: str


def _node_types(schema: GraphQLSchema) -> list[str]:
    return sorted(
        name
        for name, kind in schema.type_map.items()
        if isinstance(kind, GraphQLObjectType) and any(i.name == "Node" for i in kind.interfaces)
    )


# The only id slots not named after their type: a product and a service are both items; the
# audit trail's actor is a staff user (or a portal user, who is no node of the staff schema);
# a request to cancel is a service request.
ALIASES = {
    "product": "RequestableItem",
    "service": "RequestableItem",
    "actor": "StaffUser",
    "request": "ServiceRequest",
}


def _target(schema: GraphQLSchema, field_name: str, slot_name: str) -> list[str]:
    """The node type an id slot names: `contactId` is a Contact, `contractor` a Contractor;
    a bare `id` is the type the field is named after (`node` takes every type)."""
    types = _node_types(schema)
    if field_name == "node":
        return types
    if slot_name == "subjectId":
        return [t for t in types if t != "AuditEntry"]  # any record the trail can be about
    if slot_name == "about":  # a conversation, or any record one can be about
        about = ("Job", "Quote", "Invoice", "ServiceRequest", "MessageThread")
        return [t for t in types if t in about]
    stem = slot_name[:-2] if slot_name.endswith("Id") else slot_name
    if stem and stem != "id":
        wanted = ALIASES.get(stem, stem[0].upper() + stem[1:])
        assert wanted in types, f"{field_name}({slot_name}) names no node type"
        return [wanted]
    named = [t for t in types if t.lower() in field_name.lower()]
    assert named, f"{field_name}(id:) names no node type"
    return [max(named, key=len)]


def _id_slots(label: str, schema: GraphQLSchema) -> list[IdSlot]:
    slots = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        for field_name, field in (root.fields if root is not None else {}).items():
            for argument, spec in field.args.items():
                named = get_named_type(spec.type)
                if named.name == "ID":
                    for target in _target(schema, field_name, argument):
                        slots.append(IdSlot(label, kind, field_name, argument, None, target))
                elif isinstance(named, GraphQLInputObjectType):
                    for name, inner in named.fields.items():
                        if get_named_type(inner.type).name == "ID":
                            for target in _target(schema, field_name, name):
                                slots.append(
                                    IdSlot(label, kind, field_name, argument, name, target)
                                )
    return slots


SCHEMAS = {"staff": _sdl(STAFF_SDL), "portal": _sdl(PORTAL_SDL)}
SLOTS = [slot for label, schema in SCHEMAS.items() for slot in _id_slots(label, schema)]

# The tables behind each node type, to find another tenant's or customer's real rows.
_ORIGINS = {
    name: kind.definition.origin
    for schema in (staff_schema(production=False), portal_schema(production=False))
    for name, kind in schema.schema_converter.type_map.items()
    if hasattr(kind.definition, "origin")
}


def _model_of(type_name: str) -> type[SQLModel]:
    if type_name == "PortalAccount":
        return PortalAccount
    loader_name = getattr(_ORIGINS[type_name], "loader_name", None)
    assert loader_name is not None, f"{type_name} is not read through a by-id loader"
    model: type[SQLModel] = getattr(Loaders(Any, SYSTEM), loader_name).model  # type: ignore[arg-type]
    return model


def _value(kind: Any) -> Any:
    named = get_named_type(kind)
    if isinstance(named, GraphQLInputObjectType):
        return {
            name: _value(field.type) for name, field in named.fields.items() if _required(field)
        }
    if isinstance(kind, GraphQLNonNull) and isinstance(kind.of_type, GraphQLList):
        return []
    values: dict[str, Any] = {
        "String": "x",
        "Int": 1,
        "Boolean": True,
        "Date": "2026-01-01",
        "DateTime": "2026-01-01T00:00:00Z",
        "ID": to_base64("Nothing", str(uuid.UUID(int=0))),
    }
    if named.name in values:
        return values[named.name]
    return next(iter(named.values))  # an enum


def _call(kind: str, name: str, field: GraphQLField) -> tuple[str, dict[str, Any]]:
    """An operation calling one root field with made-up values for what it requires."""
    used = {arg: spec for arg, spec in field.args.items() if _required(spec)}
    declared = ", ".join(f"${arg}: {spec.type}" for arg, spec in used.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in used)
    call = f"{name}({passed})" if passed else name
    head = f"{kind} ({declared})" if declared else kind
    variables = {arg: _value(spec.type) for arg, spec in used.items()}
    return f"{head} {{ {call}{_selection(field.type)} }}", variables


def _document(schema: GraphQLSchema, slot: IdSlot) -> tuple[str, dict[str, Any]]:
    root = schema.query_type if slot.kind == "query" else schema.mutation_type
    assert root is not None
    field = root.fields[slot.field_name]
    used = {
        arg: spec for arg, spec in field.args.items() if _required(spec) or arg == slot.argument
    }
    declared = ", ".join(f"${arg}: {spec.type}" for arg, spec in used.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in used)
    document = f"{slot.kind} ({declared}) {{ {slot.field_name}({passed}){_selection(field.type)} }}"
    variables = {arg: _value(spec.type) for arg, spec in used.items()}
    if isinstance(get_named_type(used[slot.argument].type), GraphQLInputObjectType):
        variables[slot.argument] = {**variables[slot.argument], slot.input_field: None}
    return document, variables


def _with_id(variables: dict[str, Any], slot: IdSlot, value: str) -> dict[str, Any]:
    if slot.input_field is None:
        return {**variables, slot.argument: value}
    return {**variables, slot.argument: {**variables[slot.argument], slot.input_field: value}}


async def _elsewhere(db: Database, model: type[SQLModel], mine: Any) -> None:
    """Gives another tenant a request and an audit entry, which the demo keeps to one."""
    async with db.transaction(SYSTEM) as session:
        other = await session.scalar(
            sa.select(Customer).where(col(Customer.tenant_id) != mine.tenant_id).limit(1)
        )
        assert other is not None
        if model is ServiceRequest:
            session.add(
                ServiceRequest(tenant_id=other.tenant_id, customer_id=other.id, number="X-1")
            )
        if model is AuditEntry:
            session.add(
                AuditEntry(
                    tenant_id=other.tenant_id,
                    action="customer.updated",
                    subject_type="Customer",
                    subject_id=other.id,
                )
            )


async def _foreign_ids(db: Database, model: type[SQLModel], mine: Any) -> list[uuid.UUID]:
    """Real ids of `model` the viewer must not reach: another tenant's, and (for a portal
    user) another customer's of the same tenant."""
    if model in (ServiceRequest, AuditEntry):
        await _elsewhere(db, model, mine)
    async with db.session(SYSTEM) as session:
        if model is Tenant:
            rows = await session.scalars(
                sa.select(col(Tenant.id)).where(col(Tenant.id) != mine.tenant_id).limit(2)
            )
            return list(rows)
        if model is PortalAccount:
            rows = await session.scalars(
                sa.select(col(PortalAccount.id))
                .where(col(PortalAccount.id) != mine.account_id)
                .limit(2)
            )
            return list(rows)
        table: Any = model
        found = []
        other_tenant = await session.scalar(
            sa.select(col(table.id)).where(col(table.tenant_id) != mine.tenant_id).limit(1)
        )
        if other_tenant is not None:
            found.append(other_tenant)
        # Some records belong to the whole tenant (what its customers may ask for).
        if mine.customer_id is not None and table is not RequestableItem:
            other_customer = await session.scalar(
                _of_another_customer(table, mine.customer_id).where(
                    col(table.tenant_id) == mine.tenant_id
                )
            )
            assert other_customer is not None, f"the demo has no {model.__name__} to try"
            found.append(other_customer)
    assert found, f"the demo has no {model.__name__} the viewer must not reach"
    return found


def _of_another_customer(table: Any, customer_id: uuid.UUID) -> sa.Select[Any]:
    """A row of `table` that belongs to a customer other than the viewer's."""
    if table is Customer:
        return sa.select(col(Customer.id)).where(col(Customer.id) != customer_id).limit(1)
    if table is PortalMembership:
        return (
            sa.select(col(PortalMembership.id))
            .join(
                Contact,
                sa.and_(
                    col(Contact.tenant_id) == col(PortalMembership.tenant_id),
                    col(Contact.id) == col(PortalMembership.contact_id),
                ),
            )
            .where(col(Contact.customer_id) != customer_id)
            .limit(1)
        )
    if table is Message:
        return (
            sa.select(col(Message.id))
            .join(
                MessageThread,
                sa.and_(
                    col(MessageThread.tenant_id) == col(Message.tenant_id),
                    col(MessageThread.id) == col(Message.thread_id),
                ),
            )
            .where(col(MessageThread.customer_id) != customer_id)
            .limit(1)
        )
    return sa.select(col(table.id)).where(col(table.customer_id) != customer_id).limit(1)


@dataclass(frozen=True)
class Mine:
    tenant_id: uuid.UUID
    customer_id: uuid.UUID | None
    account_id: uuid.UUID | None


async def _signed_in(db: Database, label: str) -> tuple[str, Mine]:
    async with db.session(SYSTEM) as session:
        if label == "staff":
            user = await session.scalar(sa.select(StaffUser).where(col(StaffUser.email) == OWNER))
            assert user is not None
            return await staff_token(db, TEST_SETTINGS, user), Mine(user.tenant_id, None, None)
    account, contact = await account_and_contact(db, COMPANY_USER)
    token = await portal_token(db, TEST_SETTINGS, account)
    return token, Mine(contact.tenant_id, contact.customer_id, account.id)


async def _everything(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    dump = {}
    async with db.session(SYSTEM) as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            rows = await session.execute(sa.select(table).order_by(*table.primary_key.columns))
            dump[table.name] = [tuple(row) for row in rows]
    return dump


def _answer(body: dict[str, Any]) -> Any:
    """A response with what differs between any two requests (request ids) left out."""
    errors = [
        (error["message"], error.get("path"), error.get("extensions", {}).get("code"))
        for error in body.get("errors", [])
    ]
    return body.get("data"), errors


@pytest.mark.parametrize(
    "slot",
    SLOTS,
    ids=[f"{s.schema}-{s.field_name}-{s.input_field or s.argument}-{s.target}" for s in SLOTS],
)
async def test_t1_another_tenants_or_customers_id_answers_like_a_made_up_one_and_writes_nothing(
    demo_db: Database, demo_client: httpx.AsyncClient, slot: IdSlot
) -> None:
    schema = SCHEMAS[slot.schema]
    token, mine = await _signed_in(demo_db, slot.schema)
    path = STAFF if slot.schema == "staff" else PORTAL
    document, variables = _document(schema, slot)
    model = _model_of(slot.target)
    foreign_ids = await _foreign_ids(demo_db, model, mine)
    before = await _everything(demo_db)

    made_up = to_base64(slot.target, str(uuid.uuid4()))
    expected = _answer(
        await _post(demo_client, path, token, document, _with_id(variables, slot, made_up))
    )
    _, errors = expected
    assert all(code is not None for _, _, code in errors), f"the document is not valid: {errors}"
    for foreign in foreign_ids:
        real = to_base64(slot.target, str(foreign))
        body = await _post(demo_client, path, token, document, _with_id(variables, slot, real))
        assert _answer(body) == expected, (slot, foreign, body)

    assert await _everything(demo_db) == before


def test_t1_the_generated_id_tests_cover_both_schemas() -> None:
    covered = {(slot.schema, slot.field_name) for slot in SLOTS}
    assert ("staff", "node") in covered and ("portal", "node") in covered
    assert ("staff", "setContactPortalAccess") in covered
    assert len({slot.target for slot in SLOTS if slot.schema == "portal"}) >= 10
