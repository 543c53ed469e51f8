from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col

from app.context import Context
from app.db.models import Customer
from app.resolvers.pagination import Page, keyset_page


async def customers_page(ctx: Context, *, first: int | None, after: str | None) -> Page[Customer]:
    async with ctx.db.session(ctx.scope) as session:
        page = await keyset_page(
            session,
            sa.select(Customer),
            sort=col(Customer.name),
            row_id=col(Customer.id),
            first=first,
            after=after,
        )
    ctx.loaders.customer_by_id.prime_many({row.id: row for row in page.rows})
    return page
