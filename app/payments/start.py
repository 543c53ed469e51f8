"""Starting a payment (E3): the server decides the amount and currency, and each attempt is
one PaymentIntent, created with an idempotency key fixed before Stripe is called."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
import stripe
from sqlmodel import col

from app.db.base import utcnow
from app.db.models import Invoice, InvoiceStatus, Payment, PaymentStatus, Tenant
from app.db.scope import SYSTEM, Scope
from app.db.session import Database
from app.errors import AppError, ErrorCode, NotFound
from app.payments.amounts import bounds_for, format_money
from app.payments.gateway import Intent, StripeGateway

logger = logging.getLogger("app.payments")

# Stripe keeps an idempotency key for 24 hours; an attempt older than this is not reused.
REUSE_WINDOW = timedelta(hours=23)
# Stripe refused the request itself: sending it again cannot succeed.
_REFUSALS = (
    stripe.InvalidRequestError,
    stripe.AuthenticationError,
    stripe.PermissionError,
    stripe.IdempotencyError,
    stripe.CardError,
)


@dataclass(frozen=True, slots=True)
class PaymentStart:
    """What Stripe Elements needs to take the payment in the browser."""

    payment_id: uuid.UUID
    client_secret: str
    publishable_key: str
    stripe_account: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class _Attempt:
    payment: Payment
    invoice_number: str
    stripe_account: str


def not_configured() -> AppError:
    return AppError(
        "This business does not take card payments through the portal.",
        code=ErrorCode.PAYMENTS_NOT_CONFIGURED,
    )


async def start_payment(
    db: Database,
    gateway: StripeGateway | None,
    *,
    publishable_key: str,
    scope: Scope,
    account_id: uuid.UUID,
    invoice_id: uuid.UUID,
    amount: int | None,
) -> PaymentStart:
    attempt = await _attempt(
        db, gateway, scope=scope, account_id=account_id, invoice_id=invoice_id, amount=amount
    )
    assert gateway is not None
    intent = await _intent(db, gateway, attempt)
    payment = attempt.payment
    return PaymentStart(
        payment_id=payment.id,
        client_secret=intent.client_secret,
        publishable_key=publishable_key,
        stripe_account=attempt.stripe_account,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
    )


async def _attempt(
    db: Database,
    gateway: StripeGateway | None,
    *,
    scope: Scope,
    account_id: uuid.UUID,
    invoice_id: uuid.UUID,
    amount: int | None,
) -> _Attempt:
    """The open attempt for this invoice, amount and account, or a new one, committed before
    Stripe hears of it. The invoice row is locked (PostgreSQL; SQLite takes its write lock
    at BEGIN), so a double click waits for the first click's attempt and reuses it."""
    async with db.transaction(scope) as session:
        invoice = await session.scalar(
            sa.select(Invoice).where(col(Invoice.id) == invoice_id).with_for_update()
        )
        if invoice is None:
            raise NotFound("There is no such invoice.", field="invoiceId")
        tenant = await session.get(Tenant, invoice.tenant_id)
        assert tenant is not None
        if gateway is None or not tenant.stripe_account_id:
            raise not_configured()
        bounds = bounds_for(invoice)
        if invoice.status is not InvoiceStatus.UNPAID or invoice.balance_minor <= 0:
            raise AppError(
                "This invoice has nothing left to pay.",
                code=ErrorCode.INVOICE_NOT_PAYABLE,
                field="invoiceId",
            )
        if bounds is None:
            raise AppError(
                f"Invoices in {invoice.currency} cannot be paid online.",
                code=ErrorCode.INVOICE_NOT_PAYABLE,
                field="invoiceId",
            )
        wanted = invoice.balance_minor if amount is None else amount
        if not bounds.allows(wanted):
            raise AppError(
                _range_message(bounds.minimum, bounds.maximum, invoice.currency),
                code=ErrorCode.AMOUNT_OUT_OF_RANGE,
                field="amount",
            )
        payment = await session.scalar(
            sa.select(Payment)
            .where(
                col(Payment.invoice_id) == invoice.id,
                col(Payment.status) == PaymentStatus.PENDING,
                col(Payment.amount_minor) == wanted,
                col(Payment.account_id) == account_id,
                col(Payment.stripe_account_id) == tenant.stripe_account_id,
                col(Payment.created_at) >= utcnow() - REUSE_WINDOW,
            )
            .order_by(col(Payment.created_at).desc())
            .limit(1)
        )
        if payment is None:
            payment_id = uuid.uuid4()
            payment = Payment(
                tenant_id=invoice.tenant_id,
                id=payment_id,
                invoice_id=invoice.id,
                amount_minor=wanted,
                currency=invoice.currency,
                account_id=account_id,
                stripe_account_id=tenant.stripe_account_id,
                # Fixed with the row: a retry after a crash sends Stripe the same key.
                idempotency_key=f"payment-{payment_id.hex}",
            )
            session.add(payment)
        return _Attempt(payment, invoice.number, tenant.stripe_account_id)


def _range_message(minimum: int, maximum: int, currency: str) -> str:
    if maximum < minimum:
        return (
            f"The balance is below the smallest card payment ({format_money(minimum, currency)})"
            " and cannot be paid online."
        )
    return f"Pay between {format_money(minimum, currency)} and {format_money(maximum, currency)}."


async def _intent(db: Database, gateway: StripeGateway, attempt: _Attempt) -> Intent:
    payment = attempt.payment
    if payment.stripe_payment_intent_id is not None:
        intent = await _call(
            db,
            payment,
            gateway.retrieve_intent(
                account=attempt.stripe_account, intent_id=payment.stripe_payment_intent_id
            ),
        )
        if intent.open:
            return intent
        raise AppError(
            "A payment of this amount is already under way; the invoice updates when it completes.",
            code=ErrorCode.INVOICE_NOT_PAYABLE,
            field="invoiceId",
        )
    intent = await _call(
        db,
        payment,
        gateway.create_intent(
            account=attempt.stripe_account,
            amount=payment.amount_minor,
            currency=payment.currency,
            idempotency_key=payment.idempotency_key,
            metadata={
                "tenant_id": str(payment.tenant_id),
                "invoice_id": str(payment.invoice_id),
                "payment_id": str(payment.id),
            },
            description=f"Invoice {attempt.invoice_number}",
        ),
    )
    # The webhook checks against this row; our own write, so outside the viewer's reach rules.
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Payment)
            .where(col(Payment.tenant_id) == payment.tenant_id, col(Payment.id) == payment.id)
            .values(stripe_payment_intent_id=intent.id, updated_at=utcnow())
        )
    return intent


async def _call(db: Database, payment: Payment, request: Awaitable[Intent]) -> Intent:
    try:
        return await request
    except stripe.StripeError as error:
        logger.warning("Stripe refused payment %s: %s", payment.id, error)
        if isinstance(error, _REFUSALS):
            # Sending it again cannot succeed: the attempt is over and is not reused.
            async with db.transaction(SYSTEM) as session:
                await session.execute(
                    sa.update(Payment)
                    .where(
                        col(Payment.tenant_id) == payment.tenant_id,
                        col(Payment.id) == payment.id,
                    )
                    .values(status=PaymentStatus.FAILED, updated_at=utcnow())
                )
        raise AppError(
            "The card payment service could not start this payment; please try again.",
            code=ErrorCode.PAYMENT_PROVIDER_ERROR,
        ) from error
