from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dataloaders.base import ByIdLoader, SessionLoader
from app.db.models import AuditEntry


class AuditEntryByIdLoader(ByIdLoader[AuditEntry]):
    model = AuditEntry


class LastChangeBySubjectIdLoader(SessionLoader[uuid.UUID, AuditEntry | None]):
    """The newest audit entry about each subject: how staff see that a record was last
    changed, and whether from the portal."""

    async def fetch(
        self, session: AsyncSession, keys: list[uuid.UUID]
    ) -> Sequence[AuditEntry | None]:
        newest = (
            sa.select(
                col(AuditEntry.subject_id).label("subject_id"),
                sa.func.max(col(AuditEntry.created_at)).label("created_at"),
            )
            .where(col(AuditEntry.subject_id).in_(keys))
            .group_by(col(AuditEntry.subject_id))
            .subquery()
        )
        rows = await session.scalars(
            sa.select(AuditEntry)
            .join(
                newest,
                sa.and_(
                    col(AuditEntry.subject_id) == newest.c.subject_id,
                    col(AuditEntry.created_at) == newest.c.created_at,
                ),
            )
            .order_by(col(AuditEntry.id))
        )
        found: dict[uuid.UUID, AuditEntry] = {}
        for row in rows:
            assert row.subject_id is not None
            found.setdefault(row.subject_id, row)
        return [found.get(key) for key in keys]
