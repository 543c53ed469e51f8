from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dataloaders.base import SessionLoader, one_per_key
from app.db.models import Tenant


class TenantByIdLoader(SessionLoader[uuid.UUID, Tenant | None]):
    """Tenants by id; one outside the viewer's scope loads as None."""

    model = Tenant

    async def fetch(self, session: AsyncSession, keys: list[uuid.UUID]) -> Sequence[Tenant | None]:
        rows = await session.scalars(sa.select(Tenant).where(col(Tenant.id).in_(keys)))
        return one_per_key(rows, keys, lambda row: row.id)
