"""What the office hears live (E15): new portal requests, customers' messages, quote
decisions and card payments received, each with the badges as they stand after it. Each
kind goes to the roles that see its list: requests and quote decisions to the inbox's,
payments from MANAGER, messages to whoever may read their thread."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from app.auth.viewer import StaffViewer
from app.context import Context
from app.db.base import utcnow
from app.db.models import ActivityEmails, StaffRole, StaffUser
from app.messages.live import LiveEvent
from app.resolvers import requests
from app.resolvers.messages import live_deliveries, unread_total, visible_message

# S1: the inbox's role also sees what customers decide on quotes; payments, the role that
# sets up how the business is paid.
INBOX_ROLE = StaffRole.ASSISTANT_MANAGER
PAYMENTS_ROLE = StaffRole.MANAGER


class ActivityKind(enum.Enum):
    REQUEST_SUBMITTED = "REQUEST_SUBMITTED"
    MESSAGE_RECEIVED = "MESSAGE_RECEIVED"
    QUOTE_DECIDED = "QUOTE_DECIDED"
    PAYMENT_RECEIVED = "PAYMENT_RECEIVED"


@dataclass(frozen=True, slots=True)
class Activity:
    kind: ActivityKind
    subject_type: str
    subject_id: uuid.UUID
    at: datetime
    # The badges after it: null where the viewer's role does not see that list.
    new_requests: int | None
    unread_messages: int


async def _heard(ctx: Context, event: LiveEvent) -> tuple[ActivityKind, str] | None:
    viewer = ctx.viewer
    assert isinstance(viewer, StaffViewer)
    inbox = viewer.role.at_least(INBOX_ROLE)
    if event.kind == "request" and inbox:
        return ActivityKind.REQUEST_SUBMITTED, "ServiceRequest"
    if event.kind == "quote" and inbox:
        return ActivityKind.QUOTE_DECIDED, "Quote"
    if event.kind == "payment" and viewer.role.at_least(PAYMENTS_ROLE):
        return ActivityKind.PAYMENT_RECEIVED, "Payment"
    if event.kind == "message":
        message = await visible_message(ctx, event.row_id)
        if message is not None and message.author_account_id is not None:
            return ActivityKind.MESSAGE_RECEIVED, "Message"
    return None


async def office_activity(ctx: Context) -> AsyncIterator[Activity]:
    events = ctx.live
    assert events is not None, "subscriptions run where live events are set up"
    async with events.listen() as queue:
        async for event in live_deliveries(ctx, queue):
            heard = await _heard(ctx, event)
            if heard is None:
                continue
            viewer = ctx.viewer
            assert isinstance(viewer, StaffViewer)
            yield Activity(
                kind=heard[0],
                subject_type=heard[1],
                subject_id=event.row_id,
                at=utcnow(),
                new_requests=(
                    await requests.unread_count(ctx) if viewer.role.at_least(INBOX_ROLE) else None
                ),
                unread_messages=await unread_total(ctx),
            )


async def activity_emails(ctx: Context) -> ActivityEmails:
    viewer = ctx.viewer
    assert isinstance(viewer, StaffViewer)
    async with ctx.db.session(ctx.scope) as session:
        chosen = await session.scalar(
            sa.select(col(StaffUser.activity_emails)).where(col(StaffUser.id) == viewer.user_id)
        )
    return ActivityEmails(chosen) if chosen is not None else ActivityEmails.NONE


async def set_activity_emails(ctx: Context, preference: ActivityEmails) -> ActivityEmails:
    """Chooses how the signed-in staff user is emailed what customers do; one who starts
    being emailed is told what happens from now on, not what went before."""
    viewer = ctx.viewer
    assert isinstance(viewer, StaffViewer)
    async with ctx.db.transaction(ctx.scope) as session:
        user = await session.scalar(sa.select(StaffUser).where(col(StaffUser.id) == viewer.user_id))
        assert user is not None, "a signed-in staff user exists"
        if user.activity_emails is ActivityEmails.NONE or user.activity_emailed_until is None:
            user.activity_emailed_until = utcnow()
        user.activity_emails = preference
    return preference
