from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from app.db.base import TenantOwned, UTCDateTime, enum_column, tenant_fk, tenant_index


class ThreadSubject(enum.StrEnum):
    JOB = "JOB"
    QUOTE = "QUOTE"
    INVOICE = "INVOICE"
    REQUEST = "REQUEST"


class MessageThread(TenantOwned, table=True):
    """The conversation between the office and a customer about one job, quote, invoice
    or request."""

    __tablename__ = "message_threads"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_index("message_threads", "subject_type", "subject_id", unique=True),
        tenant_index("message_threads", "customer_id"),
        # The notice sweep finds the due threads of every tenant.
        sa.Index("ix_message_threads_customer_notice_due_at", "customer_notice_due_at"),
    )

    customer_id: uuid.UUID
    subject_type: ThreadSubject = Field(sa_type=enum_column(ThreadSubject))
    subject_id: uuid.UUID
    # What it is about as both sides name it ("Job J-1001"), set when the thread starts.
    title: str = Field(default="", max_length=255)
    last_message_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the customer's users are to be emailed about the office's unread messages: set by
    # the first message they have not read, cleared once they are emailed or read it.
    customer_notice_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Message(TenantOwned, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        tenant_fk(["thread_id"], "message_threads", ondelete="CASCADE"),
        tenant_fk(["author_staff_id"], "staff_users"),
        tenant_index("messages", "thread_id", "created_at"),
        sa.CheckConstraint(
            "(author_staff_id IS NULL) <> (author_account_id IS NULL)", name="one_author"
        ),
    )

    thread_id: uuid.UUID
    author_staff_id: uuid.UUID | None = None
    author_account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    # The author's name as it was when they wrote.
    author_name: str = Field(default="", max_length=200)
    body: str = Field(sa_type=sa.Text)
    read_by_customer_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    read_by_staff_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MessageNotice(TenantOwned, table=True):
    """An email telling a portal user that a message waits unread on a thread: at most one
    per thread and user until the customer reads the thread, which removes it."""

    __tablename__ = "message_notices"
    __table_args__ = (
        tenant_fk(["thread_id"], "message_threads", ondelete="CASCADE"),
        tenant_index("message_notices", "thread_id", "account_id", unique=True),
    )

    thread_id: uuid.UUID
    account_id: uuid.UUID = Field(foreign_key="portal_accounts.id")
