"""Requestable products and services (S6): added, renamed and shown or hidden in the
portal, never deleted, so every request keeps what it referred to."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import col

from app.context import Context
from app.db.models import RequestableItem, RequestableKind
from app.resolvers.audit import audit_entry, changes
from app.resolvers.customers import row_of, staff_tenant
from app.resolvers.pagination import Page, keyset_page
from app.validation import checked_text

NAME_MAX = 120


async def items_page(
    ctx: Context, *, kind: RequestableKind | None, first: int | None, after: str | None
) -> Page[RequestableItem]:
    statement = sa.select(RequestableItem)
    if kind is not None:
        statement = statement.where(col(RequestableItem.kind) == kind)
    async with ctx.db.session(ctx.scope) as session:
        page = await keyset_page(
            session,
            statement,
            sort=col(RequestableItem.name),
            row_id=col(RequestableItem.id),
            first=first,
            after=after,
        )
    ctx.loaders.requestable_item_by_id.prime_many({row.id: row for row in page.rows})
    return page


async def create_item(
    ctx: Context, *, kind: RequestableKind, name: str, show_in_portal: bool
) -> RequestableItem:
    tenant_id = staff_tenant(ctx)
    item = RequestableItem(
        tenant_id=tenant_id,
        kind=kind,
        name=checked_text(name, field="name", max_length=NAME_MAX),
        show_in_portal=show_in_portal,
    )
    async with ctx.db.transaction(ctx.scope) as session:
        session.add(item)
        session.add(
            audit_entry(
                ctx.viewer,
                tenant_id=tenant_id,
                action="requestable_item.created",
                subject_type="RequestableItem",
                subject_id=item.id,
                before=None,
                after={"kind": kind, "name": item.name, "show_in_portal": show_in_portal},
            )
        )
    return item


async def change_item(
    ctx: Context,
    *,
    item_id: uuid.UUID,
    name: str | None = None,
    show_in_portal: bool | None = None,
) -> RequestableItem:
    """Renames an item or shows or hides it in the portal. Requests store the names they
    were submitted with, so a new name changes no request."""
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = checked_text(name, field="name", max_length=NAME_MAX)
    if show_in_portal is not None:
        values["show_in_portal"] = show_in_portal
    async with ctx.db.transaction(ctx.scope) as session:
        item = await row_of(session, RequestableItem, item_id, field="id")
        before, after = changes(item, values)
        if after:
            action = (
                "requestable_item.renamed"
                if "name" in after
                else ("requestable_item.shown" if show_in_portal else "requestable_item.hidden")
            )
            session.add(
                audit_entry(
                    ctx.viewer,
                    tenant_id=item.tenant_id,
                    action=action,
                    subject_type="RequestableItem",
                    subject_id=item.id,
                    before=before,
                    after=after,
                )
            )
    return item
