from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dataloaders.base import ByIdLoader, SessionLoader
from app.db.models import Message, MessageThread
from app.db.scope import Scope


def customer_side(scope: Scope) -> bool:
    """Whether a scope reads as the customer (a portal user) rather than the office."""
    return scope.grants is not None


def unread_criteria(*, customer: bool) -> sa.ColumnElement[bool]:
    """Messages the other side wrote that this side has not read."""
    if customer:
        return sa.and_(
            col(Message.author_staff_id).is_not(None), col(Message.read_by_customer_at).is_(None)
        )
    return sa.and_(
        col(Message.author_account_id).is_not(None), col(Message.read_by_staff_at).is_(None)
    )


class MessageThreadByIdLoader(ByIdLoader[MessageThread]):
    model = MessageThread


class MessageByIdLoader(ByIdLoader[Message]):
    model = Message


class UnreadByThreadIdLoader(SessionLoader[uuid.UUID, int]):
    """How many messages of each thread wait for the viewer's side to read them."""

    async def fetch(self, session: AsyncSession, keys: list[uuid.UUID]) -> Sequence[int]:
        rows = await session.execute(
            sa.select(col(Message.thread_id), sa.func.count())
            .where(
                col(Message.thread_id).in_(keys),
                unread_criteria(customer=customer_side(self._scope)),
            )
            .group_by(col(Message.thread_id))
        )
        counts = {thread_id: int(count) for thread_id, count in rows}
        return [counts.get(key, 0) for key in keys]
