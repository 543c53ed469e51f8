from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlmodel import col

from app.context import Context
from app.db.models import Customer, Tenant
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


class ShownPortalStatus(enum.StrEnum):
    AVAILABLE = "AVAILABLE"
    NOT_IN_PLAN = "NOT_IN_PLAN"
    BUSINESS_PORTAL_OFF = "BUSINESS_PORTAL_OFF"
    CUSTOMER_PORTAL_OFF = "CUSTOMER_PORTAL_OFF"


def portal_status(tenant: Tenant, customer: Customer) -> ShownPortalStatus:
    """What stops this customer's portal users, the plan first: it is the one staff cannot
    switch back on themselves."""
    if not tenant.has_portal_plan:
        return ShownPortalStatus.NOT_IN_PLAN
    if not tenant.portal_enabled:
        return ShownPortalStatus.BUSINESS_PORTAL_OFF
    if not customer.portal_enabled:
        return ShownPortalStatus.CUSTOMER_PORTAL_OFF
    return ShownPortalStatus.AVAILABLE
