"""The audit trail: who changed what, when, with the values before and after (S10)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from app.auth.viewer import PortalViewer, StaffViewer, Viewer
from app.context import Context
from app.db.models import AuditEntry
from app.resolvers.pagination import Page, keyset_page


def _plain(value: Any) -> Any:
    """A value as JSON holds it."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def audit_entry(
    viewer: Viewer,
    *,
    tenant_id: uuid.UUID,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> AuditEntry:
    """An entry for the caller to add to the transaction that makes the change, so the
    change and its record commit together."""
    return AuditEntry(
        tenant_id=tenant_id,
        actor_staff_id=viewer.user_id if isinstance(viewer, StaffViewer) else None,
        actor_account_id=viewer.account_id if isinstance(viewer, PortalViewer) else None,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        before={key: _plain(value) for key, value in before.items()} if before else None,
        after={key: _plain(value) for key, value in after.items()} if after else None,
    )


def changes(row: Any, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sets `values` on `row`; answers only what really changed, before and after."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in values.items():
        old = getattr(row, name)
        if old != value:
            before[name], after[name] = old, value
            setattr(row, name, value)
    return before, after


async def audit_page(
    ctx: Context, *, first: int | None, after: str | None, subject_id: uuid.UUID | None
) -> Page[AuditEntry]:
    statement = sa.select(AuditEntry)
    if subject_id is not None:
        statement = statement.where(col(AuditEntry.subject_id) == subject_id)
    async with ctx.db.session(ctx.scope) as session:
        page = await keyset_page(
            session,
            statement,
            sort=col(AuditEntry.created_at),
            row_id=col(AuditEntry.id),
            first=first,
            after=after,
            descending=True,
        )
    ctx.loaders.audit_entry_by_id.prime_many({row.id: row for row in page.rows})
    return page
