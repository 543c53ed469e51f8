"""S1, T1: every root field of both schemas declares who may use it, and the server
enforces exactly what the printed SDL says. Generated from the SDL, not hand-listed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
)
from strawberry.relay import to_base64

from app.db.models import RequestableItem, RequestableKind, StaffRole, StaffUser
from app.db.scope import SYSTEM
from app.db.session import Database
from app.schema.relay import LoadedNode
from app.sdl import PORTAL_SDL, STAFF_SDL
from app.settings import Settings
from tests.support import (
    STAFF,
    error_codes,
    input_value,
    make_tenant,
    root_fields,
    sdl_schema,
    staff_token,
)

POLICIES = {"public", "requiresRole", "requiresPortalUser", "requiresModule", "requiresContact"}
LADDER = list(StaffRole)  # highest first


def _directives(field: GraphQLField) -> dict[str, dict[str, str]]:
    assert field.ast_node is not None
    return {
        directive.name.value: {
            argument.name.value: getattr(argument.value, "value", "")
            for argument in directive.arguments or ()
        }
        for directive in field.ast_node.directives or ()
    }


@pytest.mark.parametrize("sdl", [STAFF_SDL, PORTAL_SDL], ids=["staff", "portal"])
def test_t1_every_root_field_declares_a_policy(sdl: Any) -> None:
    """A root field says who may use it; `@public` stands alone, the others may combine
    (a module and a contact kind, say)."""
    unguarded, muddled = [], []
    for kind, name, field in root_fields(sdl_schema(sdl)):
        policies = POLICIES & set(_directives(field))
        if not policies:
            unguarded.append(f"{kind} {name}")
        if "public" in policies and len(policies) > 1:
            muddled.append(f"{kind} {name}")
    assert not unguarded, f"root fields without a policy directive: {unguarded}"
    assert not muddled, f"root fields both public and guarded: {muddled}"


def _operation(kind: str, name: str, field: GraphQLField) -> tuple[str, dict[str, Any]]:
    declared = ", ".join(f"${arg}: {spec.type}" for arg, spec in field.args.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    selection = (
        " { __typename }" if isinstance(get_named_type(field.type), GraphQLObjectType) else ""
    )
    head = f"{kind} ({declared})" if declared else kind
    call = f"{name}({passed})" if passed else name
    document = f"{head} {{ {call}{selection} }}"
    return document, {
        arg: input_value(spec.type)
        for arg, spec in field.args.items()
        if isinstance(spec.type, GraphQLNonNull)
    }


ROLE_FIELDS = [
    (kind, name, field, _directives(field)["requiresRole"]["min"])
    for kind, name, field in root_fields(sdl_schema(STAFF_SDL))
    if "requiresRole" in _directives(field)
]


@pytest.mark.parametrize(
    ("kind", "name", "field", "minimum"), ROLE_FIELDS, ids=[f[1] for f in ROLE_FIELDS]
)
async def test_s1_each_role_field_admits_exactly_the_roles_its_sdl_prints(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    kind: str,
    name: str,
    field: GraphQLField,
    minimum: str,
) -> None:
    document, variables = _operation(kind, name, field)
    anonymous = await client.post(STAFF, json={"query": document, "variables": variables})
    assert error_codes(anonymous.json()) == ["UNAUTHENTICATED"]
    for rung, role in enumerate(LADDER):
        _, user = await make_tenant(db, slug=f"t{rung}", role=role)
        response = await client.post(
            STAFF,
            json={"query": document, "variables": variables},
            headers={"authorization": f"Bearer {await staff_token(db, settings, user)}"},
        )
        refused = "ROLE_FORBIDDEN" in error_codes(response.json())
        assert refused == (rung > LADDER.index(StaffRole(minimum))), (role, response.json())


# Node types every signed-in staff role reads: they are what the `customers` list (open to
# TECHNICIAN) and every record's author show. Any other type says who may reach it by `node`.
OPEN_TO_ALL_STAFF = {"Customer", "Site", "Contact", "StaffUser"}


def _staff_node_types() -> dict[str, type[LoadedNode]]:
    from app.schema import staff

    found: dict[str, type[LoadedNode]] = {}
    for kind in staff.staff_schema(production=False).schema_converter.type_map.values():
        origin = getattr(kind.definition, "origin", None)
        if isinstance(origin, type) and issubclass(origin, LoadedNode):
            found[origin.__name__] = origin
    return found


def test_s1_every_staff_node_type_says_who_may_reach_it_by_node() -> None:
    types = _staff_node_types()
    assert set(types) >= OPEN_TO_ALL_STAFF
    assert {name for name, kind in types.items() if kind.visible_to is None} == OPEN_TO_ALL_STAFF


async def test_s1_a_technician_cannot_read_a_catalogue_item_by_node(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, technician = await make_tenant(db, slug="acme", role=StaffRole.TECHNICIAN)
    item = RequestableItem(tenant_id=tenant.id, kind=RequestableKind.PRODUCT, name="Skip")
    assistant = StaffUser(
        tenant_id=tenant.id,
        email="asha@acme.example",
        name="Asha",
        role=StaffRole.ASSISTANT_MANAGER,
    )
    async with db.transaction(SYSTEM) as session:
        session.add_all([item, assistant])
    document = "query ($id: ID!) { node(id: $id) { ... on RequestableItem { name } } }"
    variables = {"id": to_base64("RequestableItem", str(item.id))}
    seen = {}
    for user in (technician, assistant):
        token = await staff_token(db, settings, user)
        response = await client.post(
            STAFF,
            json={"query": document, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
        seen[user.role] = response.json()["data"]["node"]
    assert seen == {StaffRole.TECHNICIAN: None, StaffRole.ASSISTANT_MANAGER: {"name": "Skip"}}
