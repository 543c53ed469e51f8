"""Quotes as the portal shows them; drafts never reach it (the data layer)."""

from __future__ import annotations

import uuid

from sqlmodel import col

from app.context import Context
from app.db.models import Quote
from app.resolvers.pagination import Page, tenant_page


async def quotes_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[Quote]:
    return await tenant_page(
        ctx,
        Quote,
        sort=col(Quote.created_at),
        first=first,
        after=after,
        contractor=contractor,
        loader=ctx.loaders.quote_by_id,
    )
