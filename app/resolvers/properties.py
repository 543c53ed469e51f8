"""Sites (properties) as the portal shows them."""

from __future__ import annotations

import uuid

from sqlmodel import col

from app.context import Context
from app.db.models import Site
from app.resolvers.pagination import Page, tenant_page


async def properties_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[Site]:
    """The sites the viewer may see, by name: all its customers' for a company contact, its
    own for a site contact (the data layer decides)."""
    return await tenant_page(
        ctx,
        Site,
        sort=col(Site.name),
        first=first,
        after=after,
        contractor=contractor,
        descending=False,
        loader=ctx.loaders.site_by_id,
    )
