"""Service requests as the portal shows them."""

from __future__ import annotations

import uuid

from sqlmodel import col

from app.context import Context
from app.db.models import ServiceRequest
from app.resolvers.pagination import Page, tenant_page


async def requests_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[ServiceRequest]:
    return await tenant_page(
        ctx,
        ServiceRequest,
        sort=col(ServiceRequest.created_at),
        first=first,
        after=after,
        contractor=contractor,
        loader=ctx.loaders.service_request_by_id,
    )
