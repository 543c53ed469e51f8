"""Emails telling staff what customers did (E15), as each staff user prefers: INSTANT (on the
delivery worker's next pass), DAILY (a digest once a day), or NONE.

Each staff user keeps how far they have been told (`activity_emailed_until`); a pass tells
them what customers did since, within their role (requests and quote decisions from the
inbox's role, payments received from MANAGER, messages on the threads they may read), and
moves the mark in the same transaction as the email, so nothing is told twice or lost.
Several workers may run: each staff user is claimed by one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.base import utcnow
from app.db.models import (
    ActivityEmails,
    Invoice,
    Message,
    MessageThread,
    Payment,
    Quote,
    ServiceRequest,
    StaffRole,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.mail import enqueue_email
from app.payments.amounts import format_money
from app.resolvers.messages import staff_reach
from app.settings import Settings

INBOX_ROLE = StaffRole.ASSISTANT_MANAGER
PAYMENTS_ROLE = StaffRole.MANAGER
DIGEST_EVERY = timedelta(days=1)
# Lines listed per kind in one email; the rest are counted.
LISTED = 20


async def send_activity_emails(
    db: Database,
    settings: Settings,
    *,
    now: Callable[[], datetime] = utcnow,
    batch_size: int = 50,
) -> int:
    """One pass: emails every staff user who is due; answers how many emails."""
    moment = now()
    mailed = 0
    async with db.transaction(SYSTEM) as session:
        due = sa.or_(
            col(StaffUser.activity_emails) == ActivityEmails.INSTANT,
            sa.and_(
                col(StaffUser.activity_emails) == ActivityEmails.DAILY,
                col(StaffUser.activity_emailed_until) <= moment - DIGEST_EVERY,
            ),
        )
        users = list(
            await session.scalars(
                sa.select(StaffUser)
                .where(
                    due,
                    col(StaffUser.is_active).is_(True),
                    col(StaffUser.activity_emailed_until).is_not(None),
                    col(StaffUser.activity_emailed_until) < moment,
                )
                .order_by(col(StaffUser.activity_emailed_until))
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        for user in users:
            mailed += await _tell(session, settings, user, moment)
            user.activity_emailed_until = moment
    return mailed


async def _lines(
    session: AsyncSession, user: StaffUser, since: datetime, until: datetime
) -> dict[str, list[str]]:
    tenant = user.tenant_id
    found: dict[str, list[str]] = {"requests": [], "quotes": [], "payments": [], "messages": []}
    if user.role.at_least(PAYMENTS_ROLE):
        found["payments"] = [
            f"Invoice {number}: {format_money(amount, currency)}"
            for number, amount, currency in await session.execute(
                sa.select(col(Invoice.number), col(Payment.amount_minor), col(Payment.currency))
                .join(
                    Invoice,
                    sa.and_(
                        col(Invoice.tenant_id) == col(Payment.tenant_id),
                        col(Invoice.id) == col(Payment.invoice_id),
                    ),
                )
                .where(
                    col(Payment.tenant_id) == tenant,
                    col(Payment.succeeded_at) > since,
                    col(Payment.succeeded_at) <= until,
                )
                .order_by(col(Payment.succeeded_at))
            )
        ]
    if user.role.at_least(INBOX_ROLE):
        found["requests"] = [
            f"Request {number}"
            for number in await session.scalars(
                sa.select(col(ServiceRequest.number))
                .where(
                    col(ServiceRequest.tenant_id) == tenant,
                    col(ServiceRequest.created_at) > since,
                    col(ServiceRequest.created_at) <= until,
                )
                .order_by(col(ServiceRequest.created_at))
            )
        ]
        found["quotes"] = [
            f"Quote {number}: {status.value.lower()}"
            for number, status in await session.execute(
                sa.select(col(Quote.number), col(Quote.status))
                .where(
                    col(Quote.tenant_id) == tenant,
                    col(Quote.decided_at) > since,
                    col(Quote.decided_at) <= until,
                )
                .order_by(col(Quote.decided_at))
            )
        ]
    threads = sa.select(col(MessageThread.id)).where(
        col(MessageThread.tenant_id) == tenant, *staff_reach(user.role, user.id)
    )
    found["messages"] = [
        f"{title}: {author}"
        for title, author in await session.execute(
            sa.select(col(MessageThread.title), col(Message.author_name))
            .join(
                MessageThread,
                sa.and_(
                    col(MessageThread.tenant_id) == col(Message.tenant_id),
                    col(MessageThread.id) == col(Message.thread_id),
                ),
            )
            .where(
                col(Message.tenant_id) == tenant,
                col(Message.author_account_id).is_not(None),
                col(Message.thread_id).in_(threads),
                col(Message.created_at) > since,
                col(Message.created_at) <= until,
            )
            .order_by(col(Message.created_at))
        )
    ]
    return found


async def _tell(session: AsyncSession, settings: Settings, user: StaffUser, until: datetime) -> int:
    assert user.activity_emailed_until is not None
    found = await _lines(session, user, user.activity_emailed_until, until)
    total = sum(len(lines) for lines in found.values())
    if not total:
        return 0
    tenant = await session.get(Tenant, user.tenant_id)
    await enqueue_email(
        session,
        template="office_activity",
        to=user.email,
        tenant=tenant,
        context={
            "staff_name": user.name,
            "total": total,
            "daily": user.activity_emails is ActivityEmails.DAILY,
            "sections": [
                (heading, lines[:LISTED], len(lines) - LISTED)
                for heading, lines in (
                    ("New requests", found["requests"]),
                    ("Quote decisions", found["quotes"]),
                    ("Payments received", found["payments"]),
                    ("Messages from customers", found["messages"]),
                )
                if lines
            ],
        },
        settings=settings,
    )
    return 1
