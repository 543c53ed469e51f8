"""The email that tells a customer's users a message from the office waits unread (E13).

The office's first message the customer has not read sets when the thread is due to be told
(the tenant's `message_notice_minutes` later). When it comes due, every portal user who may
read the thread then is emailed through the outbox, once: the thread is not due again until
the customer has read it. Several workers may sweep at once: each thread is claimed by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from strawberry.relay import to_base64

from app.auth.resolve import portal_grants
from app.db.base import utcnow
from app.db.models import (
    Contact,
    MessageNotice,
    MessageThread,
    PortalAccount,
    PortalMembership,
    Tenant,
)
from app.db.reach import reach_criteria
from app.db.scope import SYSTEM
from app.db.session import Database
from app.mail import enqueue_email
from app.settings import Settings


def notice_due(tenant: Tenant, now: datetime) -> datetime:
    return now + timedelta(minutes=max(tenant.message_notice_minutes, 0))


def thread_url(settings: Settings, tenant: Tenant, thread_id: uuid.UUID) -> str:
    """Where the portal app opens a thread."""
    thread = to_base64("MessageThread", str(thread_id))
    return f"{settings.portal_app_url}/{tenant.slug}/messages/{thread}"


async def send_message_notices(
    db: Database,
    settings: Settings,
    *,
    now: Callable[[], datetime] = utcnow,
    batch_size: int = 50,
) -> int:
    """Emails the users of every thread whose notice is due; answers how many emails."""
    mailed = 0
    async with db.transaction(SYSTEM) as session:
        threads = list(
            await session.scalars(
                sa.select(MessageThread)
                .where(col(MessageThread.customer_notice_due_at) <= now())
                .order_by(col(MessageThread.customer_notice_due_at))
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        for thread in threads:
            thread.customer_notice_due_at = None
            mailed += await _tell(session, settings, thread)
    return mailed


async def _readers(session: AsyncSession, thread: MessageThread) -> list[PortalAccount]:
    """The portal users who may read the thread now, each once."""
    candidates = await session.scalars(
        sa.select(PortalAccount)
        .join(PortalMembership, col(PortalMembership.account_id) == col(PortalAccount.id))
        .join(
            Contact,
            sa.and_(
                col(Contact.tenant_id) == col(PortalMembership.tenant_id),
                col(Contact.id) == col(PortalMembership.contact_id),
            ),
        )
        .where(
            col(PortalMembership.tenant_id) == thread.tenant_id,
            col(Contact.customer_id) == thread.customer_id,
            col(PortalAccount.is_active).is_(True),
        )
        .distinct()
        .order_by(col(PortalAccount.id))
    )
    readers = []
    for account in candidates:
        grants = await portal_grants(session, account.id)
        if not grants:
            continue
        reached = await session.scalar(
            sa.select(col(MessageThread.id)).where(
                col(MessageThread.tenant_id) == thread.tenant_id,
                col(MessageThread.id) == thread.id,
                reach_criteria(MessageThread, grants),
            )
        )
        if reached is not None:
            readers.append(account)
    return readers


async def _tell(session: AsyncSession, settings: Settings, thread: MessageThread) -> int:
    told = set(
        await session.scalars(
            sa.select(col(MessageNotice.account_id)).where(
                col(MessageNotice.tenant_id) == thread.tenant_id,
                col(MessageNotice.thread_id) == thread.id,
            )
        )
    )
    tenant = await session.get(Tenant, thread.tenant_id)
    assert tenant is not None
    mailed = 0
    for account in await _readers(session, thread):
        if account.id in told:
            continue
        session.add(
            MessageNotice(tenant_id=thread.tenant_id, thread_id=thread.id, account_id=account.id)
        )
        await enqueue_email(
            session,
            template="message_waiting",
            to=account.email,
            context={
                "recipient_name": account.name,
                "subject": thread.title,
                "url": thread_url(settings, tenant, thread.id),
            },
            tenant=tenant,
            settings=settings,
        )
        mailed += 1
    return mailed
