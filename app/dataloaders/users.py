from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dataloaders.base import ByIdLoader, ByParentLoader, SessionLoader, one_per_key
from app.db.models import PortalAccount, PortalMembership


class PortalMembershipByIdLoader(ByIdLoader[PortalMembership]):
    model = PortalMembership


class PortalMembershipsByContactIdLoader(ByParentLoader[PortalMembership]):
    """A contact's portal user, as a list of none or one (a contact has at most one)."""

    model = PortalMembership
    parent = "contact_id"
    order_by = "created_at"


class PortalAccountByIdLoader(SessionLoader[uuid.UUID, PortalAccount | None]):
    """Portal accounts by id; one the viewer cannot reach through a membership loads as None."""

    model = PortalAccount

    async def fetch(
        self, session: AsyncSession, keys: list[uuid.UUID]
    ) -> Sequence[PortalAccount | None]:
        rows = await session.scalars(
            sa.select(PortalAccount).where(col(PortalAccount.id).in_(keys))
        )
        return one_per_key(rows, keys, lambda row: row.id)
