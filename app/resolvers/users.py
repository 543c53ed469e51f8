"""Portal users (memberships) as the portal shows them."""

from __future__ import annotations

import uuid

from sqlmodel import col

from app.context import Context
from app.db.models import PortalMembership
from app.resolvers.pagination import Page, tenant_page


async def users_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[PortalMembership]:
    """The portal users at the viewer's customers, newest first."""
    return await tenant_page(
        ctx,
        PortalMembership,
        sort=col(PortalMembership.created_at),
        first=first,
        after=after,
        contractor=contractor,
        loader=ctx.loaders.portal_membership_by_id,
    )
