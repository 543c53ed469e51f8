"""Jobs as the portal shows them."""

from __future__ import annotations

import uuid

from sqlmodel import col

from app.context import Context
from app.db.models import Job
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
