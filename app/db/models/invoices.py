from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db.base import (
    TenantOwned,
    UTCDateTime,
    enum_column,
    tenant_fk,
    tenant_index,
    timestamp_field,
)


class InvoiceStatus(enum.StrEnum):
    """What is stored. OVERDUE is not stored: it follows from the due date."""

    DRAFT = "DRAFT"
    UNPAID = "UNPAID"
    PAID = "PAID"
    VOID = "VOID"


class PaymentStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class Invoice(TenantOwned, table=True):
    __tablename__ = "invoices"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        tenant_fk(["job_id"], "jobs"),
        tenant_index("invoices", "number", unique=True),
        tenant_index("invoices", "customer_id", "status", "due_on"),
        sa.CheckConstraint("paid_minor >= 0", name="paid_not_negative"),
    )

    customer_id: uuid.UUID
    site_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    number: str = Field(max_length=32)
    description: str = Field(default="", max_length=2000)
    status: InvoiceStatus = Field(default=InvoiceStatus.DRAFT, sa_type=enum_column(InvoiceStatus))
    currency: str = Field(max_length=3)
    total_minor: int = 0
    paid_minor: int = 0
    issued_on: date
    due_on: date
    updated_at: datetime = timestamp_field()

    @property
    def balance_minor(self) -> int:
        return self.total_minor - self.paid_minor


class InvoiceLine(TenantOwned, table=True):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        tenant_fk(["invoice_id"], "invoices", ondelete="CASCADE"),
        tenant_index("invoice_lines", "invoice_id", "position"),
    )

    invoice_id: uuid.UUID
    position: int
    description: str = Field(max_length=500)
    quantity: int = 1
    unit_price_minor: int
    total_minor: int


class Payment(TenantOwned, table=True):
    """One attempt to pay (part of) an invoice."""

    __tablename__ = "payments"
    __table_args__ = (
        tenant_fk(["invoice_id"], "invoices"),
        tenant_index("payments", "invoice_id", "created_at"),
        sa.Index("uq_payments_stripe_payment_intent_id", "stripe_payment_intent_id", unique=True),
    )

    invoice_id: uuid.UUID
    amount_minor: int
    currency: str = Field(max_length=3)
    status: PaymentStatus = Field(default=PaymentStatus.PENDING, sa_type=enum_column(PaymentStatus))
    refunded_minor: int = 0
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255)
    idempotency_key: str = Field(max_length=64)
    account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    # The connected account the PaymentIntent lives in, as it was when the attempt began.
    stripe_account_id: str | None = Field(default=None, max_length=255)
    # When Stripe created the newest event applied to `status`: an older one arriving late
    # does not move the status back.
    stripe_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    succeeded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = timestamp_field()

    @property
    def counted_minor(self) -> int:
        """What this payment adds to its invoice's paid amount: what succeeded, less refunds."""
        if self.status is not PaymentStatus.SUCCEEDED:
            return 0
        return self.amount_minor - self.refunded_minor


class StripeEventOutcome(enum.StrEnum):
    APPLIED = "APPLIED"
    IGNORED = "IGNORED"
    REJECTED = "REJECTED"


class StripeEvent(SQLModel, table=True):
    """Every Stripe event handled, by Stripe's id, written in the same transaction as its
    effect: an event delivered twice, or listed again by recovery, has one effect."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    # The connected account it came from; None for the platform's own.
    account: str | None = Field(default=None, max_length=255)
    created: datetime = Field(sa_type=UTCDateTime)
    outcome: StripeEventOutcome = Field(
        default=StripeEventOutcome.IGNORED, sa_type=enum_column(StripeEventOutcome)
    )
    detail: str = Field(default="", max_length=500)
    tenant_id: uuid.UUID | None = None
    payment_id: uuid.UUID | None = None
    received_at: datetime = timestamp_field()
