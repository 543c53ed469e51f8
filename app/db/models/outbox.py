from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db.base import UTCDateTime, enum_column, new_id, timestamp_field, utcnow


class OutboxStatus(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class OutboxEmail(SQLModel, table=True):
    """An email written in the same transaction as the change that causes it, sent later by
    the delivery worker. Account-level mail (a password reset) has no tenant."""

    __tablename__ = "email_outbox"
    __table_args__ = (
        sa.Index("ix_email_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        sa.Index("ix_email_outbox_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    kind: str = Field(max_length=64)
    to_address: str = Field(max_length=254)
    subject: str = Field(max_length=255)
    text_body: str = Field(sa_type=sa.Text)
    html_body: str = Field(sa_type=sa.Text)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=enum_column(OutboxStatus))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = timestamp_field()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
