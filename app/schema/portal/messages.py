"""Conversations with a contractor in the portal (E13): a user sees the conversation of every
job, quote, invoice and request they see, and no other."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.auth.viewer import PortalViewer
from app.context import Info
from app.dataloaders.base import then
from app.db import models
from app.resolvers import messages
from app.resolvers.pagination import encode_cursor
from app.schema.messages import About, Body, ThreadSubject, about_of, subject_id_of
from app.schema.permissions import RequiresPortalUser, guarded
from app.schema.portal.common import (
    CONTRACTOR_ARGUMENT,
    Contractor,
    contractor_filter,
    contractor_of,
)
from app.schema.relay import LoadedNode, connection, uuid_of
from app.websocket import closed_when_refused


def _author(row: models.Message, tenant: models.Tenant | None) -> str:
    """Who wrote, as the customer sees it: their own people by name, the contractor by its
    business name, or by the staff member's first name where the business chooses so."""
    if row.author_account_id is not None or tenant is None:
        return row.author_name
    first = row.author_name.split(maxsplit=1)[0] if row.author_name.strip() else ""
    if tenant.message_staff_first_names and first:
        return f"{first} at {tenant.name}"
    return tenant.name


@strawberry.type(description="One message of a conversation with a contractor.")
class Message(LoadedNode):
    loader_name = "message_by_id"
    id: relay.NodeID[str]
    body: str
    sent_at: datetime
    from_contractor: bool = strawberry.field(description="Whether the contractor wrote it.")
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
            from_contractor=row.author_staff_id is not None,
            row=row,
        )

    @strawberry.field(
        description="Who wrote it: one of your people by name, or the contractor's business.",
        graphql_type=str,
    )
    def author_name(self, info: Info) -> str | Awaitable[str]:
        row = self.row
        if row.author_account_id is not None:
            return row.author_name
        return then(
            info.context.loaders.tenant_by_id.get(row.tenant_id),
            lambda tenant: _author(row, tenant),
        )

    @strawberry.field(description="Whether you wrote it yourself.")
    def from_you(self, info: Info) -> bool:
        viewer = info.context.viewer
        return isinstance(viewer, PortalViewer) and self.row.author_account_id == viewer.account_id

    @strawberry.field(description="The conversation it belongs to.")
    async def thread(self, info: Info) -> MessageThread:
        row = await info.context.loaders.message_thread_by_id.load(self.row.thread_id)
        assert row is not None, "a message the viewer reads is of a thread it reads"
        return MessageThread.from_row(row)


@strawberry.type(
    description="A conversation with a contractor about one job, quote, invoice or request."
)
class MessageThread(LoadedNode):
    loader_name = "message_thread_by_id"
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

    @strawberry.field(description="The business you are talking to.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)

    @strawberry.field(description="Messages from the contractor your company has not read.")
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
        description="Your conversations with contractors, the latest written in first.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def message_threads(
        self,
        info: Info,
        contractor: Annotated[strawberry.ID | None, CONTRACTOR_ARGUMENT] = None,
        unread_only: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[MessageThread]:
        page = await messages.threads_page(
            info.context,
            contractor=contractor_filter(contractor),
            unread_only=unread_only,
            first=first,
            after=after,
        )
        return connection(page, MessageThread.from_row)

    @strawberry.field(
        description="The conversation about a record; null while nobody has written.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def message_thread(self, info: Info, about: About) -> MessageThread | None:
        type_name, row_id = about_of(about)
        row = await messages.find_thread(info.context, type_name=type_name, row_id=row_id)
        return MessageThread.from_row(row) if row is not None else None

    @strawberry.field(
        description="Messages from your contractors your company has not read: the badge.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def unread_message_count(self, info: Info) -> int:
        return await messages.unread_total(info.context)


@strawberry.type
class MessagesMutation:
    @strawberry.mutation(
        description="Writes to the contractor about a job, quote, invoice or request you can"
        " see; the first message starts the conversation.",
        extensions=guarded(RequiresPortalUser()),
    )
    async def send_message(self, info: Info, about: About, body: Body) -> Message:
        type_name, row_id = about_of(about)
        sent = await messages.send_message(
            info.context, type_name=type_name, row_id=row_id, body=body
        )
        info.context.loaders.message_thread_by_id.prime(sent.thread.id, sent.thread)
        return Message.from_row(sent.message)

    @strawberry.mutation(
        description="Marks the contractor's messages of a conversation read by your company.",
        extensions=guarded(RequiresPortalUser()),
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
        extensions=guarded(RequiresPortalUser()),
    )
    async def message_added(
        self, info: Info, after: str | None = None
    ) -> AsyncGenerator[Message, None]:
        rows = messages.live_messages(info.context, after=after)
        async for row in closed_when_refused(info.context, rows):
            yield Message.from_row(row)
