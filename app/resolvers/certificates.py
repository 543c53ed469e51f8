"""Certificates as the portal shows them."""

from __future__ import annotations

import uuid
from datetime import date

from sqlmodel import col

from app.context import Context
from app.db.models import Certificate
from app.resolvers.pagination import Page, tenant_page


async def certificates_page(
    ctx: Context,
    *,
    contractor: uuid.UUID | None,
    issued_from: date | None,
    issued_to: date | None,
    first: int | None,
    after: str | None,
) -> Page[Certificate]:
    """The viewer's certificates, newest first, issued within the inclusive range given."""
    where = []
    if issued_from is not None:
        where.append(col(Certificate.issued_on) >= issued_from)
    if issued_to is not None:
        where.append(col(Certificate.issued_on) <= issued_to)
    return await tenant_page(
        ctx,
        Certificate,
        sort=col(Certificate.issued_on),
        first=first,
        after=after,
        contractor=contractor,
        where=where,
        loader=ctx.loaders.certificate_by_id,
    )
