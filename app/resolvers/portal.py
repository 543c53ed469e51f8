"""What a portal viewer is: the contractors and customers its grants reach."""

from __future__ import annotations

import uuid

from app.auth.viewer import PortalViewer
from app.context import Context
from app.db.models import Customer, Tenant


def _viewer(ctx: Context) -> PortalViewer:
    assert isinstance(ctx.viewer, PortalViewer), "guarded by RequiresPortalUser"
    return ctx.viewer


async def viewer_contractors(ctx: Context) -> list[Tenant]:
    rows = await ctx.loaders.tenant_by_id.load_many(sorted(_viewer(ctx).tenant_ids))
    return sorted((row for row in rows if row is not None), key=lambda row: row.name)


async def viewer_customers(ctx: Context, *, contractor: uuid.UUID | None) -> list[Customer]:
    ids = sorted(
        {
            grant.customer_id
            for grant in _viewer(ctx).grants
            if contractor is None or grant.tenant_id == contractor
        }
    )
    rows = await ctx.loaders.customer_by_id.load_many(ids)
    return sorted((row for row in rows if row is not None), key=lambda row: row.name)
