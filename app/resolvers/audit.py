"""The audit trail: who changed what, when, with the values before and after (S10)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col

from app.auth.viewer import PortalViewer, StaffViewer, Viewer
from app.context import Context
from app.db.models import AuditEntry
from app.errors import AppError
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


class ActorKind(enum.Enum):
    STAFF = "STAFF"
    PORTAL = "PORTAL"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to show; each left as None narrows nothing. Days are the business's,
    in its time zone, `to` included."""

    subject_id: uuid.UUID | None = None
    actor_kind: ActorKind | None = None
    staff_actor_id: uuid.UUID | None = None
    portal_actor_id: uuid.UUID | None = None
    action: str | None = None
    start: date | None = None
    end: date | None = None


def _where(criteria: AuditFilter, zone: str) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if criteria.subject_id is not None:
        where.append(col(AuditEntry.subject_id) == criteria.subject_id)
    staff, portal = col(AuditEntry.actor_staff_id), col(AuditEntry.actor_account_id)
    if criteria.actor_kind is ActorKind.STAFF:
        where.append(staff.is_not(None))
    elif criteria.actor_kind is ActorKind.PORTAL:
        where.append(portal.is_not(None))
    elif criteria.actor_kind is ActorKind.SYSTEM:
        where.extend([staff.is_(None), portal.is_(None)])
    if criteria.staff_actor_id is not None:
        where.append(staff == criteria.staff_actor_id)
    if criteria.portal_actor_id is not None:
        where.append(portal == criteria.portal_actor_id)
    if criteria.action:
        # `request.` takes every request action; `request.declined` that one.
        action = col(AuditEntry.action)
        where.append(
            action.startswith(criteria.action, autoescape=True)
            if criteria.action.endswith(".")
            else action == criteria.action
        )
    if criteria.start is not None:
        where.append(col(AuditEntry.created_at) >= midnight(criteria.start, zone))
    if criteria.end is not None:
        where.append(col(AuditEntry.created_at) < midnight(criteria.end + timedelta(days=1), zone))
    return where


def midnight(day: date, zone: str) -> datetime:
    """The moment a day begins in a time zone, in UTC."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def audit_page(
    ctx: Context, *, first: int | None, after: str | None, criteria: AuditFilter
) -> Page[AuditEntry]:
    if criteria.start and criteria.end and criteria.end < criteria.start:
        raise AppError("The range must end on or after its start.", field="to")
    viewer = ctx.viewer
    assert isinstance(viewer, StaffViewer), "guarded by RequiresRole"
    tenant = await ctx.loaders.tenant_by_id.load(viewer.tenant_id)
    zone = tenant.time_zone if tenant is not None else "UTC"
    statement = sa.select(AuditEntry).where(*_where(criteria, zone))
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
