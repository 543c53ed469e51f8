"""T1 and SECURITY.md row 1 for the staff schema: every root field taking an id, given
another tenant's ids of every kind, answers "not found" (or nothing) and writes nothing.
Generated from the SDL, not hand-listed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from graphql import GraphQLField, get_named_type, is_composite_type
from sqlmodel import SQLModel
from strawberry.relay import to_base64

from app.db.models import AuditEntry, RequestableItem, StaffRole
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import STAFF_SDL
from app.settings import Settings
from tests.support import (
    gql,
    input_value,
    make_requests,
    make_tenant,
    root_fields,
    sdl_schema,
    staff_token,
)

ID_FIELDS = [
    (kind, name, field)
    for kind, name, field in root_fields(sdl_schema(STAFF_SDL))
    if any(get_named_type(arg.type).name == "ID" for arg in field.args.values())
]


def _document(kind: str, name: str, field: GraphQLField) -> tuple[str, list[str], list[str]]:
    """The operation, its ID arguments, and its other required arguments."""
    ids = [arg for arg, spec in field.args.items() if get_named_type(spec.type).name == "ID"]
    required = [
        arg for arg, spec in field.args.items() if arg not in ids and str(spec.type).endswith("!")
    ]
    used = ids + required
    declared = ", ".join(f"${arg}: {field.args[arg].type}" for arg in used)
    passed = ", ".join(f"{arg}: ${arg}" for arg in used)
    returned = get_named_type(field.type)
    selection = " { __typename }" if is_composite_type(returned) else ""
    if returned.name.endswith("Connection"):
        selection = " { edges { cursor } }"
    return f"{kind} ({declared}) {{ {name}({passed}){selection} }}", ids, required


async def _snapshot(db: Database, tenant_id: Any) -> dict[str, list[Any]]:
    """Every row of one tenant, table by table."""
    rows: dict[str, list[Any]] = {}
    async with db.session(SYSTEM) as session:
        for table in SQLModel.metadata.sorted_tables:
            if "tenant_id" in table.c:
                found = await session.execute(
                    sa.select(table).where(table.c.tenant_id == tenant_id)
                )
                rows[table.name] = sorted(repr(tuple(row)) for row in found)
    return rows


@pytest.mark.parametrize(("kind", "name", "field"), ID_FIELDS, ids=[f[1] for f in ID_FIELDS])
async def test_t1_another_tenants_ids_are_not_found_and_change_nothing(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    kind: str,
    name: str,
    field: GraphQLField,
) -> None:
    _, owner = await make_tenant(db, slug="mine", role=StaffRole.OWNER)
    token = await staff_token(db, settings, owner)
    other, other_owner = await make_tenant(db, slug="theirs")
    [request] = await make_requests(db, other, 1)
    other_token = await staff_token(db, settings, other_owner)
    await gql(
        client,
        "mutation { updatePortalSettings(input: {portalEnabled: false}) { portalEnabled } }",
        token=other_token,
    )
    async with db.session(SYSTEM) as session:
        item = (await session.scalars(sa.select(RequestableItem))).first()
        entry = (await session.scalars(sa.select(AuditEntry))).first()
    assert item is not None and entry is not None
    foreign = {
        "Customer": request.customer_id,
        "Site": request.site_id,
        "Contact": request.contact_id,
        "ServiceRequest": request.id,
        "RequestableItem": item.id,
        "AuditEntry": entry.id,
        "StaffUser": other_owner.id,
    }
    before = await _snapshot(db, other.id)
    document, ids, required = _document(kind, name, field)
    for type_name, row_id in foreign.items():
        global_id = to_base64(type_name, str(row_id))
        variables = {arg: global_id for arg in ids} | {
            arg: input_value(field.args[arg].type) for arg in required
        }
        body = await gql(client, document, variables, token=token)
        codes = {error.get("extensions", {}).get("code") for error in body.get("errors", [])}
        # The audit trail's actor slot refuses an id of a type no actor is, as bad input.
        wrong_type = name == "auditTrail" and type_name != "StaffUser"
        assert codes <= {"NOT_FOUND", *(["INVALID_INPUT"] if wrong_type else [])}, (
            type_name,
            body,
        )
        assert global_id not in json.dumps(body.get("data")), (type_name, body)
        if not codes:
            result = body["data"][name]
            assert result is None or result == {"edges": []}, (type_name, body)
    assert await _snapshot(db, other.id) == before
