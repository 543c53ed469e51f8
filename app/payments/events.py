"""Applying Stripe's events: each event once, in the transaction that records it, with the
invoice row locked so concurrent events leave an exact balance."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.base import utcnow
from app.db.models import (
    AuditEntry,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    PortalAccount,
    StripeEvent,
    StripeEventOutcome,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.mail import enqueue_email
from app.messages.live import LiveEvent, LiveEvents, committed, stage
from app.payments.amounts import format_money
from app.settings import Settings

logger = logging.getLogger("app.payments")

_INTENT_STATUS = {
    "payment_intent.succeeded": PaymentStatus.SUCCEEDED,
    "payment_intent.processing": PaymentStatus.PROCESSING,
    "payment_intent.payment_failed": PaymentStatus.FAILED,
    "payment_intent.canceled": PaymentStatus.CANCELED,
}
CHARGE_REFUNDED = "charge.refunded"
HANDLED_TYPES = sorted([*_INTENT_STATUS, CHARGE_REFUNDED])


@dataclass(frozen=True, slots=True)
class StripeEventData:
    id: str
    type: str
    account: str | None
    created: datetime
    object: Mapping[str, Any]

    @classmethod
    def of(cls, event: Mapping[str, Any], *, account: str | None = None) -> StripeEventData:
        """`account` names the connected account an event was listed from, for events that
        do not say it themselves."""
        data = event.get("data") or {}
        return cls(
            id=str(event["id"]),
            type=str(event["type"]),
            account=event.get("account") or account,
            created=datetime.fromtimestamp(int(event["created"]), UTC),
            object=data.get("object") or {},
        )


@dataclass(frozen=True, slots=True)
class _Result:
    outcome: StripeEventOutcome
    detail: str
    payment: Payment | None = None


async def apply_event(
    db: Database, settings: Settings, event: StripeEventData, *, live: LiveEvents | None = None
) -> StripeEventOutcome | None:
    """Records and applies one event; None when it was recorded before (a repeat delivery,
    or recovery meeting an event the webhook already had). Raises when it cannot be
    applied now, leaving nothing written, so Stripe delivers it again."""
    async with db.transaction(SYSTEM) as session:
        if not await _claim(session, db.dialect, event):
            return None
        result = await _apply(session, settings, event)
        payment = result.payment
        await session.execute(
            sa.update(StripeEvent)
            .where(col(StripeEvent.id) == event.id)
            .values(
                outcome=result.outcome,
                detail=result.detail[:500],
                tenant_id=payment.tenant_id if payment else None,
                payment_id=payment.id if payment else None,
            )
        )
        received = await _received(session, result)
        if received is not None:
            await stage(live, session, received)
    if received is not None:
        await committed(live, received)
    log = logger.error if result.outcome is StripeEventOutcome.REJECTED else logger.info
    log("Stripe event %s (%s): %s %s", event.id, event.type, result.outcome, result.detail)
    return result.outcome


async def _received(session: AsyncSession, result: _Result) -> LiveEvent | None:
    """The office's news of a payment this event made succeed."""
    payment = result.payment
    if (
        result.outcome is not StripeEventOutcome.APPLIED
        or payment is None
        or payment.status is not PaymentStatus.SUCCEEDED
    ):
        return None
    # Locked and loaded already by `_locked`: no statement.
    invoice = await session.get(Invoice, (payment.tenant_id, payment.invoice_id))
    assert invoice is not None
    return LiveEvent("payment", payment.tenant_id, invoice.customer_id, payment.id)


async def _claim(session: AsyncSession, dialect: str, event: StripeEventData) -> bool:
    """Inserts the event's row first: a second delivery of the same event, even at the same
    instant, waits for this transaction and then finds the id taken."""
    table = StripeEvent.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = (
        insert.values(
            id=event.id,
            type=event.type,
            account=event.account,
            created=event.created,
            outcome=StripeEventOutcome.IGNORED,
            detail="",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id)
    )
    return (await session.execute(statement)).scalar() is not None


async def _apply(session: AsyncSession, settings: Settings, event: StripeEventData) -> _Result:
    if event.type in _INTENT_STATUS:
        return await _intent_event(session, settings, event)
    if event.type == CHARGE_REFUNDED:
        return await _refund_event(session, event)
    return _Result(StripeEventOutcome.IGNORED, "not an event payments act on")


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _locked(session: AsyncSession, payment: Payment) -> tuple[Payment, Invoice]:
    """The payment and its invoice, locked in that order by every event (no deadlocks) and
    read afresh after the lock, so the balance is the last committed one."""
    invoice = await session.scalar(
        sa.select(Invoice)
        .where(col(Invoice.tenant_id) == payment.tenant_id, col(Invoice.id) == payment.invoice_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    locked = await session.scalar(
        sa.select(Payment)
        .where(col(Payment.tenant_id) == payment.tenant_id, col(Payment.id) == payment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert invoice is not None and locked is not None
    return locked, invoice


async def _intent_event(
    session: AsyncSession, settings: Settings, event: StripeEventData
) -> _Result:
    intent = event.object
    metadata = intent.get("metadata") or {}
    tenant_id, payment_id = _uuid(metadata.get("tenant_id")), _uuid(metadata.get("payment_id"))
    found = (
        await session.get(Payment, (tenant_id, payment_id))
        if tenant_id is not None and payment_id is not None
        else None
    )
    if found is None:
        return _Result(StripeEventOutcome.IGNORED, "names no payment of ours")
    payment, invoice = await _locked(session, found)
    problem = _intent_mismatch(event, intent, payment, invoice)
    if problem is not None:
        return _Result(StripeEventOutcome.REJECTED, problem, payment)
    if payment.stripe_payment_intent_id is None:
        # The create call succeeded but we crashed before writing its id down.
        payment.stripe_payment_intent_id = str(intent["id"])
    before = payment.counted_minor
    changed = _move(payment, _INTENT_STATUS[event.type], event.created)
    if not changed:
        return _Result(StripeEventOutcome.IGNORED, f"payment already {payment.status}", payment)
    payment.updated_at = utcnow()
    balance = invoice.balance_minor
    _follow(invoice, payment.counted_minor - before)
    detail = f"payment {payment.status}"
    if payment.status is PaymentStatus.SUCCEEDED:
        await _receipt(session, settings, payment, invoice)
        if invoice.balance_minor < 0:
            over = min(-invoice.balance_minor, payment.amount_minor)
            session.add(_over_balance(payment, invoice, over, balance))
            detail += f"; {over} over the balance, to refund or credit"
            logger.error("invoice %s is over-paid by %d", invoice.id, -invoice.balance_minor)
    return _Result(StripeEventOutcome.APPLIED, detail, payment)


def _over_balance(payment: Payment, invoice: Invoice, over: int, balance: int) -> AuditEntry:
    """Money taken beyond the balance is counted, never dropped: the invoice shows a credit
    and staff find this entry in the audit trail, to refund the excess or keep it as credit.
    Starting payments keeps this rare (an invoice lowered while a payment was open)."""
    return AuditEntry(
        tenant_id=invoice.tenant_id,
        action="payment.over_balance",
        subject_type="Invoice",
        subject_id=invoice.id,
        before={"balance_minor": balance},
        after={
            "balance_minor": invoice.balance_minor,
            "over_minor": over,
            "currency": invoice.currency,
            "invoice_number": invoice.number,
            "payment_id": str(payment.id),
            "stripe_payment_intent_id": payment.stripe_payment_intent_id,
            "stripe_account_id": payment.stripe_account_id,
        },
    )


def _intent_mismatch(
    event: StripeEventData, intent: Mapping[str, Any], payment: Payment, invoice: Invoice
) -> str | None:
    if event.account != payment.stripe_account_id:
        return f"account {event.account} is not the payment's {payment.stripe_account_id}"
    if payment.stripe_payment_intent_id not in (None, intent.get("id")):
        return f"PaymentIntent {intent.get('id')} is not {payment.stripe_payment_intent_id}"
    if str((intent.get("metadata") or {}).get("invoice_id")) != str(payment.invoice_id):
        return "metadata names another invoice"
    if intent.get("amount") != payment.amount_minor:
        return f"amount {intent.get('amount')} is not {payment.amount_minor}"
    currency = str(intent.get("currency", "")).upper()
    if currency != payment.currency.upper() or currency != invoice.currency.upper():
        return f"currency {currency} is not {payment.currency}"
    if event.type == "payment_intent.succeeded" and intent.get("amount_received") != (
        payment.amount_minor
    ):
        return f"received {intent.get('amount_received')}, not {payment.amount_minor}"
    return None


def _move(payment: Payment, status: PaymentStatus, at: datetime) -> bool:
    """Moves the payment to `status` unless that would go back in time: a success is final,
    a cancellation final but for a success, and among the rest the newest event wins."""
    current = payment.status
    if current is PaymentStatus.SUCCEEDED or current is status:
        return False
    if status is PaymentStatus.SUCCEEDED:
        payment.succeeded_at = at
    elif current is PaymentStatus.CANCELED or (
        status is not PaymentStatus.CANCELED
        and payment.stripe_event_at is not None
        and at < payment.stripe_event_at
    ):
        return False
    payment.status = status
    payment.stripe_event_at = at
    return True


async def _refund_event(session: AsyncSession, event: StripeEventData) -> _Result:
    charge = event.object
    intent_id = charge.get("payment_intent")
    found = (
        await session.scalar(
            sa.select(Payment).where(col(Payment.stripe_payment_intent_id) == str(intent_id))
        )
        if intent_id
        else None
    )
    if found is None:
        return _Result(StripeEventOutcome.IGNORED, "refunds no payment of ours")
    payment, invoice = await _locked(session, found)
    refunded = charge.get("amount_refunded")
    currency = str(charge.get("currency", "")).upper()
    if event.account != payment.stripe_account_id:
        problem = f"account {event.account} is not the payment's {payment.stripe_account_id}"
    elif currency != payment.currency.upper():
        problem = f"currency {currency} is not {payment.currency}"
    elif charge.get("amount") != payment.amount_minor:
        problem = f"charge of {charge.get('amount')} is not {payment.amount_minor}"
    elif not isinstance(refunded, int) or not 0 <= refunded <= payment.amount_minor:
        problem = f"refunded {refunded} of {payment.amount_minor}"
    else:
        problem = None
    if problem is not None:
        return _Result(StripeEventOutcome.REJECTED, problem, payment)
    assert isinstance(refunded, int)
    # `amount_refunded` is the charge's running total, so a late, older event changes nothing.
    if refunded <= payment.refunded_minor:
        return _Result(StripeEventOutcome.IGNORED, "no refund beyond those applied", payment)
    before = payment.counted_minor
    payment.refunded_minor = refunded
    payment.updated_at = utcnow()
    _follow(invoice, payment.counted_minor - before)
    return _Result(StripeEventOutcome.APPLIED, f"refunded {refunded} in all", payment)


def _follow(invoice: Invoice, delta: int) -> None:
    """The invoice follows its payments: paid in full is PAID; a refund reopens it."""
    if delta == 0:
        return
    invoice.paid_minor += delta
    if invoice.status is InvoiceStatus.UNPAID and invoice.balance_minor <= 0:
        invoice.status = InvoiceStatus.PAID
    elif invoice.status is InvoiceStatus.PAID and invoice.balance_minor > 0:
        invoice.status = InvoiceStatus.UNPAID
    invoice.updated_at = utcnow()


async def _receipt(
    session: AsyncSession, settings: Settings, payment: Payment, invoice: Invoice
) -> None:
    """The receipt joins this transaction through the outbox: sent if and only if the
    payment is recorded."""
    if payment.account_id is None:
        return
    account = await session.get(PortalAccount, payment.account_id)
    tenant = await session.get(Tenant, payment.tenant_id)
    if account is None or tenant is None:
        return
    await enqueue_email(
        session,
        template="payment_receipt",
        to=account.email,
        context={
            "contact_name": account.name,
            "invoice_number": invoice.number,
            "amount": format_money(payment.amount_minor, payment.currency),
            "balance": format_money(max(invoice.balance_minor, 0), invoice.currency),
        },
        tenant=tenant,
        settings=settings,
    )
