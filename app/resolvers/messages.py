"""Messages between the office and a customer about one job, quote, invoice or request (E13).

Who reads a thread is decided in the data layer: a portal user reaches a thread exactly when
they reach what it is about (`app.db.reach`). Staff reach every thread of their business from
DISPATCHER up; a TECHNICIAN only those of the jobs they have a visit on. Each side keeps its
own unread marks: a message is unread by the side that did not write it until that side
marks the thread read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.resolve import viewer_again
from app.auth.viewer import PortalViewer, StaffViewer
from app.context import Context
from app.dataloaders.messages import customer_side, unread_criteria
from app.db.base import utcnow
from app.db.models import (
    Invoice,
    Job,
    JobVisit,
    Message,
    MessageNotice,
    MessageThread,
    Quote,
    ServiceRequest,
    StaffRole,
    Tenant,
    ThreadSubject,
)
from app.errors import NotFound
from app.messages import live
from app.messages.live import Delivery, LiveEvent
from app.messages.notices import notice_due
from app.resolvers.pagination import (
    MAX_PAGE_SIZE,
    Page,
    decode_cursor,
    keyset_page,
    tenant_page,
)
from app.validation import checked_text

BODY_MAX = 4000

# What a thread can be about: the global id's type name, the subject kind, its table and
# how both sides name it.
SUBJECTS: dict[str, tuple[ThreadSubject, type[Any], str]] = {
    "Job": (ThreadSubject.JOB, Job, "Job"),
    "Quote": (ThreadSubject.QUOTE, Quote, "Quote"),
    "Invoice": (ThreadSubject.INVOICE, Invoice, "Invoice"),
    "ServiceRequest": (ThreadSubject.REQUEST, ServiceRequest, "Request"),
}
TYPE_NAMES = {kind: name for name, (kind, _, _) in SUBJECTS.items()}


@dataclass(frozen=True, slots=True)
class Sent:
    """A message just committed, and the thread it went to."""

    message: Message
    thread: MessageThread


def staff_reach(role: StaffRole, user_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    """The threads a staff user may use beyond the tenant: a technician only those of the
    jobs they have a visit on."""
    if role.at_least(StaffRole.DISPATCHER):
        return []
    on_jobs = sa.select(col(JobVisit.job_id)).where(col(JobVisit.technician_id) == user_id)
    return [
        col(MessageThread.subject_type) == ThreadSubject.JOB,
        col(MessageThread.subject_id).in_(on_jobs),
    ]


def _reach(ctx: Context) -> list[sa.ColumnElement[bool]]:
    viewer = ctx.viewer
    return staff_reach(viewer.role, viewer.user_id) if isinstance(viewer, StaffViewer) else []


async def threads_page(
    ctx: Context,
    *,
    contractor: uuid.UUID | None = None,
    unread_only: bool = False,
    first: int | None,
    after: str | None,
) -> Page[MessageThread]:
    """Threads with messages, the one written in last first."""
    where = [col(MessageThread.last_message_at).is_not(None), *_reach(ctx)]
    if unread_only:
        unread = sa.select(col(Message.thread_id)).where(
            unread_criteria(customer=customer_side(ctx.scope))
        )
        where.append(col(MessageThread.id).in_(unread))
    return await tenant_page(
        ctx,
        MessageThread,
        sort=col(MessageThread.last_message_at),
        first=first,
        after=after,
        contractor=contractor,
        where=where,
        loader=ctx.loaders.message_thread_by_id,
        with_contractors=customer_side(ctx.scope),
    )


async def messages_page(
    ctx: Context, thread: MessageThread, *, first: int | None, after: str | None
) -> Page[Message]:
    """A thread's messages, newest first."""
    async with ctx.db.session(ctx.scope) as session:
        return await keyset_page(
            session,
            sa.select(Message).where(
                col(Message.tenant_id) == thread.tenant_id, col(Message.thread_id) == thread.id
            ),
            sort=col(Message.created_at),
            row_id=col(Message.id),
            first=first,
            after=after,
            descending=True,
        )


async def unread_total(ctx: Context) -> int:
    """Messages waiting for this side to read them, in every thread it may use."""
    statement = (
        sa.select(sa.func.count())
        .select_from(Message)
        .where(unread_criteria(customer=customer_side(ctx.scope)))
    )
    reach = _reach(ctx)
    if reach:
        statement = statement.where(
            col(Message.thread_id).in_(sa.select(col(MessageThread.id)).where(*reach))
        )
    async with ctx.db.session(ctx.scope) as session:
        return int(await session.scalar(statement) or 0)


async def _subject(session: AsyncSession, type_name: str, subject_id: uuid.UUID) -> Any:
    _, model, _ = SUBJECTS[type_name]
    return await session.scalar(sa.select(model).where(model.id == subject_id))


async def _thread_about(
    session: AsyncSession, ctx: Context, kind: ThreadSubject, subject_id: uuid.UUID
) -> MessageThread | None:
    thread: MessageThread | None = await session.scalar(
        sa.select(MessageThread).where(
            col(MessageThread.subject_type) == kind,
            col(MessageThread.subject_id) == subject_id,
            *_reach(ctx),
        )
    )
    return thread


async def find_thread(ctx: Context, *, type_name: str, row_id: uuid.UUID) -> MessageThread | None:
    """The thread of one record (or the thread itself), when the viewer may use it; None
    when nobody has written about the record yet."""
    async with ctx.db.session(ctx.scope) as session:
        if type_name == "MessageThread":
            thread: MessageThread | None = await session.scalar(
                sa.select(MessageThread).where(col(MessageThread.id) == row_id, *_reach(ctx))
            )
            return thread
        return await _thread_about(session, ctx, SUBJECTS[type_name][0], row_id)


def _authored(ctx: Context, message: Message) -> None:
    viewer = ctx.viewer
    now = message.created_at
    if isinstance(viewer, StaffViewer):
        message.author_staff_id = viewer.user_id
        message.read_by_staff_at = now
    else:
        assert isinstance(viewer, PortalViewer), "guarded: staff or a portal user"
        message.author_account_id = viewer.account_id
        message.read_by_customer_at = now
    message.author_name = viewer.name[:200]


async def send_message(ctx: Context, *, type_name: str, row_id: uuid.UUID, body: str) -> Sent:
    """Writes a message on the thread of a record (started by the first message), or on a
    thread named by its own id. The record must be one the viewer may read."""
    text = checked_text(body, field="body", max_length=BODY_MAX, multiline=True)
    # Two first messages at once both start the thread: the second finds it on a retry.
    for attempt in range(2):
        try:
            return await _send(ctx, type_name=type_name, row_id=row_id, text=text)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _send(ctx: Context, *, type_name: str, row_id: uuid.UUID, text: str) -> Sent:
    async with ctx.db.transaction(ctx.scope) as session:
        if type_name == "MessageThread":
            thread = await session.scalar(
                sa.select(MessageThread).where(col(MessageThread.id) == row_id, *_reach(ctx))
            )
            if thread is None:
                raise NotFound("There is no such conversation.", field="about")
        else:
            kind, _, label = SUBJECTS[type_name]
            subject = await _subject(session, type_name, row_id)
            thread = None
            if subject is not None:
                thread = await _thread_about(session, ctx, kind, row_id)
                if thread is None and await _may_start(session, ctx, kind, row_id):
                    thread = MessageThread(
                        tenant_id=subject.tenant_id,
                        customer_id=subject.customer_id,
                        subject_type=kind,
                        subject_id=subject.id,
                        title=f"{label} {subject.number}",
                    )
            if thread is None:
                raise NotFound(f"There is no such {label.lower()}.", field="about")
        now = utcnow()
        thread.last_message_at = now
        if isinstance(ctx.viewer, StaffViewer) and thread.customer_notice_due_at is None:
            tenant = await session.get(Tenant, thread.tenant_id)
            assert tenant is not None
            thread.customer_notice_due_at = notice_due(tenant, now)
        session.add(thread)
        await session.flush()
        message = Message(
            tenant_id=thread.tenant_id, thread_id=thread.id, body=text, created_at=now
        )
        _authored(ctx, message)
        session.add(message)
        event = LiveEvent("message", thread.tenant_id, thread.customer_id, message.id)
        await live.stage(ctx.live, session, event)
    await live.committed(ctx.live, event)
    return Sent(message=message, thread=thread)


async def _may_start(
    session: AsyncSession, ctx: Context, kind: ThreadSubject, subject_id: uuid.UUID
) -> bool:
    """Whether the viewer may start the thread of a record it can read: anyone who may use
    its threads, and a technician only on a job they have a visit on."""
    if not _reach(ctx):
        return True
    assert isinstance(ctx.viewer, StaffViewer)
    if kind is not ThreadSubject.JOB:
        return False
    visit = await session.scalar(
        sa.select(col(JobVisit.id)).where(
            col(JobVisit.job_id) == subject_id, col(JobVisit.technician_id) == ctx.viewer.user_id
        )
    )
    return visit is not None


async def mark_read(ctx: Context, *, thread_id: uuid.UUID) -> MessageThread:
    """Marks every message the other side wrote on a thread read by this side; the
    customer's reading also ends the notices sent about it, so a later message is told
    again."""
    customer = customer_side(ctx.scope)
    async with ctx.db.transaction(ctx.scope) as session:
        thread = await session.scalar(
            sa.select(MessageThread).where(col(MessageThread.id) == thread_id, *_reach(ctx))
        )
        if thread is None:
            raise NotFound("There is no such conversation.", field="id")
        read = {"read_by_customer_at" if customer else "read_by_staff_at": utcnow()}
        await session.execute(
            sa.update(Message)
            .where(
                col(Message.tenant_id) == thread.tenant_id,
                col(Message.thread_id) == thread.id,
                unread_criteria(customer=customer),
            )
            .values(**read)
            .execution_options(synchronize_session=False)
        )
        if customer:
            thread.customer_notice_due_at = None
            await session.execute(
                sa.delete(MessageNotice)
                .where(
                    col(MessageNotice.tenant_id) == thread.tenant_id,
                    col(MessageNotice.thread_id) == thread.id,
                )
                .execution_options(synchronize_session=False)
            )
    ctx.loaders.message_thread_by_id.prime(thread.id, thread)
    return thread


class AccessEnded(Exception):
    """The viewer of a live connection may no longer use it."""


class LiveEventsLost(Exception):
    """This worker could not hear every event; the subscriber resumes from its cursor."""


async def _still_allowed(ctx: Context) -> None:
    """Reads the connection's viewer again (one statement): signed out, switched off or
    with nothing left to see ends the connection; otherwise its scope is brought up to date
    and what the last event loaded is forgotten."""
    assert ctx.sign_in is not None, "a subscription runs on a signed-in connection"
    viewer = await viewer_again(ctx.db, ctx.sign_in)
    if isinstance(viewer, PortalViewer):
        if viewer.refusal is not None or not viewer.grants:
            raise AccessEnded("Your portal access is switched off.")
    elif not isinstance(viewer, StaffViewer):
        raise AccessEnded("You are signed out.")
    ctx.viewer = viewer
    ctx.forget_scope()


def _may_concern(ctx: Context, event: LiveEvent) -> bool:
    """Whether an event could be of a record the viewer reads, before reading it."""
    viewer = ctx.viewer
    if isinstance(viewer, StaffViewer):
        return event.tenant_id == viewer.tenant_id
    assert isinstance(viewer, PortalViewer)
    return any(
        grant.tenant_id == event.tenant_id and grant.customer_id == event.customer_id
        for grant in viewer.grants
    )


def _messages_reached(ctx: Context) -> sa.Select[tuple[Message]]:
    statement = sa.select(Message)
    reach = _reach(ctx)
    if reach:
        statement = statement.where(
            col(Message.thread_id).in_(sa.select(col(MessageThread.id)).where(*reach))
        )
    return statement


async def _missed(ctx: Context, after: str) -> list[Message]:
    """The messages the viewer may read written after a message's cursor, oldest first
    (at most a page: a client far behind reloads its threads)."""
    sent_at, message_id = decode_cursor(after, datetime)
    async with ctx.db.session(ctx.scope) as session:
        rows = await session.scalars(
            _messages_reached(ctx)
            .where(
                sa.or_(
                    col(Message.created_at) > sent_at,
                    sa.and_(col(Message.created_at) == sent_at, col(Message.id) > message_id),
                )
            )
            .order_by(col(Message.created_at), col(Message.id))
            .limit(MAX_PAGE_SIZE)
        )
        return list(rows)


async def live_deliveries(ctx: Context, queue: asyncio.Queue[Delivery]) -> AsyncIterator[LiveEvent]:
    """The events of a live queue that may concern the viewer, each after its access is read
    again; while none comes, access is read again every `live_access_check_seconds`. Losing
    access raises `AccessEnded`; a worker that lost events raises `LiveEventsLost`."""
    while True:
        try:
            delivery = await asyncio.wait_for(queue.get(), ctx.settings.live_access_check_seconds)
        except TimeoutError:
            await _still_allowed(ctx)
            continue
        if delivery is None:
            raise LiveEventsLost("Live events were interrupted; resume from your cursor.")
        await _still_allowed(ctx)
        if _may_concern(ctx, delivery):
            yield delivery


async def visible_message(ctx: Context, message_id: uuid.UUID) -> Message | None:
    async with ctx.db.session(ctx.scope) as session:
        found: Message | None = await session.scalar(
            _messages_reached(ctx).where(col(Message.id) == message_id)
        )
    return found


async def live_messages(ctx: Context, *, after: str | None) -> AsyncIterator[Message]:
    """Every message the viewer may read, as it is committed on any worker; from `after`
    (a message's cursor) first when given."""
    events = ctx.live
    assert events is not None, "subscriptions run where live events are set up"
    async with events.listen() as queue:
        delivered: set[uuid.UUID] = set()
        if after is not None:
            for row in await _missed(ctx, after):
                delivered.add(row.id)
                yield row
        async for event in live_deliveries(ctx, queue):
            if event.kind != "message" or event.row_id in delivered:
                continue
            heard = await visible_message(ctx, event.row_id)
            if heard is not None:
                yield heard
