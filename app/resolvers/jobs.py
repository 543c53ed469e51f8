"""Jobs as the portal shows them."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import col

from app.context import Context
from app.db.base import utcnow
from app.db.models import Job, JobVisit, VisitStatus
from app.resolvers.pagination import Page, tenant_page


async def jobs_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[Job]:
    return await tenant_page(
        ctx,
        Job,
        sort=col(Job.created_at),
        first=first,
        after=after,
        contractor=contractor,
        loader=ctx.loaders.job_by_id,
    )


# The home screen shows a handful; a full diary is the appointments list.
MAX_UPCOMING = 20


async def upcoming_visits(
    ctx: Context, *, contractor: uuid.UUID | None, first: int
) -> list[JobVisit]:
    """The next scheduled visits on the viewer's jobs, soonest first."""
    statement = (
        sa.select(JobVisit)
        .where(
            col(JobVisit.starts_at) >= utcnow(),
            col(JobVisit.status) == VisitStatus.SCHEDULED,
        )
        .order_by(col(JobVisit.starts_at), col(JobVisit.id))
        .limit(max(0, min(first, MAX_UPCOMING)))
    )
    if contractor is not None:
        statement = statement.where(col(JobVisit.tenant_id) == contractor)
    async with ctx.db.session(ctx.scope) as session:
        return list(await session.scalars(statement))
