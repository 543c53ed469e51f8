"""Appointments (diary events) as the portal shows them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import col

from app.auth.viewer import PortalViewer
from app.context import Context
from app.db.models import DiaryEvent
from app.errors import AppError, ErrorCode
from app.resolvers.audit import midnight
from app.resolvers.pagination import Page, tenant_page

# A diary asked for in one go covers at most this many days.
MAX_RANGE_DAYS = 366


async def appointments_page(
    ctx: Context,
    *,
    contractor: uuid.UUID | None,
    start: date,
    end: date,
    first: int | None,
    after: str | None,
) -> Page[DiaryEvent]:
    """Appointments starting on any day from `start` to `end` inclusive, each business's
    days counted in its own time zone, earliest first."""
    if end < start or (end - start).days >= MAX_RANGE_DAYS:
        raise AppError(
            f"Give a range of 1 to {MAX_RANGE_DAYS} days, ending on or after its start.",
            code=ErrorCode.INVALID_INPUT,
            field="to",
        )
    viewer = ctx.viewer
    tenant_ids = sorted(viewer.tenant_ids) if isinstance(viewer, PortalViewer) else []
    tenants = [t for t in await ctx.loaders.tenant_by_id.load_many(tenant_ids) if t is not None]
    within = sa.or_(
        sa.false(),
        *(
            sa.and_(
                col(DiaryEvent.tenant_id) == tenant.id,
                col(DiaryEvent.starts_at) >= midnight(start, tenant.time_zone),
                col(DiaryEvent.starts_at) < midnight(end + timedelta(days=1), tenant.time_zone),
            )
            for tenant in tenants
        ),
    )
    return await tenant_page(
        ctx,
        DiaryEvent,
        sort=col(DiaryEvent.starts_at),
        first=first,
        after=after,
        contractor=contractor,
        where=[within],
        descending=False,
        loader=ctx.loaders.diary_event_by_id,
    )
