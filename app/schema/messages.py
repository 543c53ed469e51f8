"""Conversations with customers as the office sees them (E13): DISPATCHER and up on every
thread, a TECHNICIAN on those of the jobs they have a visit on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.errors import NotFound
from app.resolvers import messages
from app.resolvers.pagination import encode_cursor
from app.schema.accounts import StaffUser
from app.schema.customers import Customer, customer_of
from app.schema.permissions import RequiresRole, guarded
from app.schema.relay import LoadedNode, connection, parse_uuid, uuid_of
from app.websocket import closed_when_refused

# S1: technicians read and write the threads of their own jobs; the office every thread.
MESSAGES_ROLE = StaffRole.TECHNICIAN
ALL_THREADS_ROLE = StaffRole.DISPATCHER

ThreadSubject = strawberry.enum(
    models.ThreadSubject,
    name="ThreadSubject",
    description="What a conversation is about: a job, a quote, an invoice or a request.",
)
About = Annotated[
    strawberry.ID,
    strawberry.argument(
        description="The id of the job, quote, invoice or request the conversation is about,"
        " or of the conversation itself."
    ),
]
Body = Annotated[
    str,
    strawberry.argument(
        description=f"Plain text, up to {messages.BODY_MAX} characters; line breaks are kept."
    ),
]


def about_of(about: strawberry.ID) -> tuple[str, uuid.UUID]:
    """The type name and database id a conversation is named by; anything else is not
    found, like an id that was never issued."""
    try:
        parsed = relay.GlobalID.from_id(about)
    except (relay.GlobalIDValueError, ValueError):
        parsed = None
    known = (*messages.SUBJECTS, "MessageThread")
    value = parse_uuid(parsed.node_id) if parsed and parsed.type_name in known else None
    if parsed is None or value is None:
        raise NotFound("There is no such conversation or record.", field="about")
    return parsed.type_name, value


def subject_id_of(row: models.MessageThread) -> strawberry.ID:
    return strawberry.ID(
        relay.to_base64(messages.TYPE_NAMES[row.subject_type], str(row.subject_id))
    )


@strawberry.type(description="One message of a conversation with a customer.")
class Message(LoadedNode):
    loader_name = "message_by_id"
    visible_to = RequiresRole(ALL_THREADS_ROLE)
    id: relay.NodeID[str]
    body: str
    sent_at: datetime
    author_name: str = strawberry.field(description="The author's name as it was then.")
    from_customer: bool = strawberry.field(description="Whether a portal user wrote it.")
    row: strawberry.Private[models.Message]

    @strawberry.field(description="Where it stands among messages: `after` resumes from it.")
    def cursor(self) -> str:
        return encode_cursor(self.row.created_at, self.row.id)

    @classmethod
    def from_row(cls, row: models.Message) -> Message:
        return cls(
            id=str(row.id),
            body=row.body,
            sent_at=row.created_at,
            author_name=row.author_name,
            from_customer=row.author_account_id is not None,
            row=row,
        )

    @strawberry.field(description="The portal user's sign-in email, for a customer's message.")
    async def author_email(self, info: Info) -> str | None:
        if self.row.author_account_id is None:
            return None
        account = await info.context.loaders.portal_account_by_id.load(self.row.author_account_id)
        return account.email if account is not None else None

    @strawberry.field(description="The staff user who wrote it, for the office's messages.")
    async def staff_user(self, info: Info) -> StaffUser | None:
        if self.row.author_staff_id is None:
            return None
        row = await info.context.loaders.staff_user_by_id.load(self.row.author_staff_id)
        return StaffUser.from_row(row) if row is not None else None

    @strawberry.field(
        description="When the customer read it; null while unread, and on the customer's own."
    )
    def read_by_customer_at(self) -> datetime | None:
        return self.row.read_by_customer_at if self.row.author_staff_id else None

    @strawberry.field(description="The conversation it belongs to.")
    async def thread(self, info: Info) -> MessageThread:
        row = await info.context.loaders.message_thread_by_id.load(self.row.thread_id)
        assert row is not None, "a message the viewer reads is of a thread it reads"
        return MessageThread.from_row(row)


@strawberry.type(description="The conversation with a customer about one record.")
class MessageThread(LoadedNode):
    loader_name = "message_thread_by_id"
    visible_to = RequiresRole(ALL_THREADS_ROLE)
    id: relay.NodeID[str]
    title: str = strawberry.field(description='What it is about, as "Job J-1001".')
    subject_type: ThreadSubject  # type: ignore[valid-type]
    last_message_at: datetime | None
    row: strawberry.Private[models.MessageThread]

    @classmethod
    def from_row(cls, row: models.MessageThread) -> MessageThread:
        return cls(
            id=str(row.id),
            title=row.title,
            subject_type=row.subject_type,
            last_message_at=row.last_message_at,
            row=row,
        )

    @strawberry.field(description="The id of the job, quote, invoice or request.")
    def subject_id(self) -> strawberry.ID:
        return subject_id_of(self.row)

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return await customer_of(info, self.row.customer_id)

    @strawberry.field(description="Messages from the customer the office has not read.")
    async def unread_count(self, info: Info) -> int:
        return await info.context.loaders.unread_by_thread_id.load(self.row.id)

    @strawberry.field(description="Its messages, newest first.")
    async def messages(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Message]:
        page = await messages.messages_page(info.context, self.row, first=first, after=after)
        return connection(page, Message.from_row)


@strawberry.type
class MessagesQuery:
    @strawberry.field(
        description="Conversations with customers, the latest written in first.",
        extensions=guarded(RequiresRole(MESSAGES_ROLE)),
    )
    async def message_threads(
        self,
        info: Info,
        unread_only: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[MessageThread]:
        page = await messages.threads_page(
            info.context, unread_only=unread_only, first=first, after=after
        )
        return connection(page, MessageThread.from_row)

    @strawberry.field(
        description="The conversation about a record; null while nobody has written.",
        extensions=guarded(RequiresRole(MESSAGES_ROLE)),
    )
    async def message_thread(self, info: Info, about: About) -> MessageThread | None:
        type_name, row_id = about_of(about)
        row = await messages.find_thread(info.context, type_name=type_name, row_id=row_id)
        return MessageThread.from_row(row) if row is not None else None

    @strawberry.field(
        description="Messages from customers the office has not read: the badge.",
        extensions=guarded(RequiresRole(MESSAGES_ROLE)),
    )
    async def unread_message_count(self, info: Info) -> int:
        return await messages.unread_total(info.context)


@strawberry.type
class MessagesMutation:
    @strawberry.mutation(
        description="Writes to the customer about a record; the first message starts the"
        " conversation.",
        extensions=guarded(RequiresRole(MESSAGES_ROLE)),
    )
    async def send_message(self, info: Info, about: About, body: Body) -> Message:
        type_name, row_id = about_of(about)
        sent = await messages.send_message(
            info.context, type_name=type_name, row_id=row_id, body=body
        )
        info.context.loaders.message_thread_by_id.prime(sent.thread.id, sent.thread)
        return Message.from_row(sent.message)

    @strawberry.mutation(
        description="Marks the customer's messages of a conversation read by the office.",
        extensions=guarded(RequiresRole(MESSAGES_ROLE)),
    )
    async def mark_message_thread_read(self, info: Info, id: strawberry.ID) -> MessageThread:
        row = await messages.mark_read(
            info.context, thread_id=uuid_of(id, "MessageThread", field="id")
        )
        return MessageThread.from_row(row)


@strawberry.type
class MessagesSubscription:
    @strawberry.subscription(
        description="Each new message of a conversation you may read, as it is sent; give"
        " the cursor of the last one you have (`after`) to get those you missed first.",
        extensions=guarded(RequiresRole(MESSAGES_ROLE)),
    )
    async def message_added(
        self, info: Info, after: str | None = None
    ) -> AsyncGenerator[Message, None]:
        rows = messages.live_messages(info.context, after=after)
        async for row in closed_when_refused(info.context, rows):
            yield Message.from_row(row)
