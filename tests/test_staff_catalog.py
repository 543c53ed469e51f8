"""S6 over HTTP: requestable products and services are added, renamed and shown or hidden
in the portal; there is no way to delete one."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa
from graphql import get_named_type
from sqlmodel import col

from app.db.models import AuditEntry, StaffRole
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import PORTAL_SDL, STAFF_SDL
from app.settings import Settings
from tests.support import error_codes, gql, make_tenant, root_fields, sdl_schema, staff_token

CREATE = """mutation ($kind: RequestableKind!, $name: String!, $show: Boolean! = true) {
  createRequestableItem(kind: $kind, name: $name, showInPortal: $show) { id kind name showInPortal }
}"""
RENAME = """mutation ($id: ID!, $name: String!) {
  renameRequestableItem(id: $id, name: $name) { name showInPortal }
}"""
SHOW = """mutation ($id: ID!, $shown: Boolean!) {
  setRequestableItemShownInPortal(id: $id, shown: $shown) { name showInPortal }
}"""
LIST = """query ($kind: RequestableKind, $after: String) {
  requestableItems(kind: $kind, first: 2, after: $after) {
    edges { node { name kind showInPortal } } pageInfo { hasNextPage endCursor }
  }
}"""


async def test_s6_items_are_added_renamed_and_shown_or_hidden_and_listed_by_name(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    made = {}
    for kind, name in [("PRODUCT", "Skip"), ("SERVICE", "Emptying"), ("PRODUCT", "Toilet")]:
        body = await gql(client, CREATE, {"kind": kind, "name": name}, token=token)
        made[name] = body["data"]["createRequestableItem"]
    assert made["Skip"]["showInPortal"] is True

    renamed = await gql(
        client, RENAME, {"id": made["Skip"]["id"], "name": " 8 Yard Skip "}, token=token
    )
    assert renamed["data"]["renameRequestableItem"] == {"name": "8 Yard Skip", "showInPortal": True}
    hidden = await gql(client, SHOW, {"id": made["Toilet"]["id"], "shown": False}, token=token)
    assert hidden["data"]["setRequestableItemShownInPortal"]["showInPortal"] is False

    first = await gql(client, LIST, {}, token=token)
    page = first["data"]["requestableItems"]
    assert [e["node"]["name"] for e in page["edges"]] == ["8 Yard Skip", "Emptying"]
    rest = await gql(client, LIST, {"after": page["pageInfo"]["endCursor"]}, token=token)
    assert rest["data"]["requestableItems"]["edges"] == [
        {"node": {"name": "Toilet", "kind": "PRODUCT", "showInPortal": False}}
    ]
    products = await gql(client, LIST, {"kind": "PRODUCT"}, token=token)
    assert [e["node"]["name"] for e in products["data"]["requestableItems"]["edges"]] == [
        "8 Yard Skip",
        "Toilet",
    ]
    blank = await gql(client, RENAME, {"id": made["Skip"]["id"], "name": "  "}, token=token)
    assert error_codes(blank) == ["INVALID_INPUT"]

    async with db.session(SYSTEM) as session:
        actions = list(
            await session.scalars(
                sa.select(col(AuditEntry.action)).order_by(col(AuditEntry.created_at))
            )
        )
    assert actions == [
        "requestable_item.created",
        "requestable_item.created",
        "requestable_item.created",
        "requestable_item.renamed",
        "requestable_item.hidden",
    ]


def test_s6_the_schema_has_no_way_to_delete_an_item() -> None:
    def item_mutations(sdl: Path) -> set[str]:
        """Mutations named for an item or answering with one."""
        return {
            name
            for kind, name, field in root_fields(sdl_schema(sdl))
            if kind == "mutation"
            and (
                "requestableitem" in name.lower()
                or get_named_type(field.type).name == "RequestableItem"
            )
        }

    assert item_mutations(STAFF_SDL) == {
        "createRequestableItem",
        "renameRequestableItem",
        "setRequestableItemShownInPortal",
    }
    assert item_mutations(PORTAL_SDL) == set()


async def test_s6_an_assistant_manager_cannot_manage_items(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, assistant = await make_tenant(db, slug="acme", role=StaffRole.ASSISTANT_MANAGER)
    token = await staff_token(db, settings, assistant)
    body = await gql(client, CREATE, {"kind": "PRODUCT", "name": "Skip"}, token=token)
    assert error_codes(body) == ["ROLE_FORBIDDEN"]
