"""Starting a payment (E3): the server decides the amount and currency, and each attempt is
one PaymentIntent, created with an idempotency key fixed before Stripe is called.

The unpaid attempts on an invoice never add up to more than its balance (SECURITY row 24). A
new attempt that does not fit beside the others first cancels older unpaid ones in Stripe,
oldest first, rather than being refused: a customer who left a payment form open in another
tab or on another device, or a colleague who gave up half-way, never locks anyone out, and
the form left behind can no longer take money. Money Stripe may already hold (a payment
being processed, or paid and not yet reported) cannot be taken back, so it lowers the
largest payment instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Sequence
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
from app.payments.amounts import Bounds, bounds_for, format_money
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
# Each round cancels what stood in the way; only other starts on the same invoice at the
# same moment can take the room again, so a few rounds are plenty.
_ROUNDS = 3
# Not paid yet, and still payable: Stripe lets a declined PaymentIntent be tried again with
# another card in the same form, so a FAILED attempt with one is as open as a PENDING one.
_UNPAID = (PaymentStatus.PENDING, PaymentStatus.FAILED)


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


@dataclass(frozen=True, slots=True)
class _Cancel:
    """Older unpaid attempts that must end before the new one fits beside the rest."""

    payments: Sequence[Payment]
    stripe_account: str


def not_configured() -> AppError:
    return AppError(
        "This business does not take card payments through the portal.",
        code=ErrorCode.PAYMENTS_NOT_CONFIGURED,
    )


def _superseded() -> AppError:
    return AppError(
        "Another payment on this invoice was started at the same moment; please start again.",
        code=ErrorCode.PAYMENT_SUPERSEDED,
        field="invoiceId",
    )


def _provider_error() -> AppError:
    return AppError(
        "The card payment service could not start this payment; please try again.",
        code=ErrorCode.PAYMENT_PROVIDER_ERROR,
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
    held: frozenset[uuid.UUID] = frozenset()
    for _ in range(_ROUNDS):
        step = await _attempt(
            db,
            gateway,
            scope=scope,
            account_id=account_id,
            invoice_id=invoice_id,
            amount=amount,
            held=held,
        )
        assert gateway is not None
        if isinstance(step, _Cancel):
            held |= await _cancel(db, gateway, step)
            continue
        intent = await _intent(db, gateway, step)
        payment = step.payment
        return PaymentStart(
            payment_id=payment.id,
            client_secret=intent.client_secret,
            publishable_key=publishable_key,
            stripe_account=step.stripe_account,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
        )
    raise _superseded()


async def _attempt(
    db: Database,
    gateway: StripeGateway | None,
    *,
    scope: Scope,
    account_id: uuid.UUID,
    invoice_id: uuid.UUID,
    amount: int | None,
    held: frozenset[uuid.UUID],
) -> _Attempt | _Cancel:
    """The open attempt for this invoice, amount and account, or a new one, committed before
    Stripe hears of it; or the older unpaid attempts to cancel first. `held` are unpaid
    attempts Stripe would not cancel: paid, or being processed, and not yet reported. The
    invoice row is locked (PostgreSQL; SQLite takes its write lock at BEGIN), so a double
    click waits for the first click's attempt and reuses it, and two starts never both
    count on the same part of the balance."""
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
        if invoice.status is not InvoiceStatus.UNPAID or invoice.balance_minor <= 0:
            raise AppError(
                "This invoice has nothing left to pay.",
                code=ErrorCode.INVOICE_NOT_PAYABLE,
                field="invoiceId",
            )
        attempts = list(
            await session.scalars(
                sa.select(Payment)
                .where(
                    col(Payment.invoice_id) == invoice.id,
                    sa.or_(
                        col(Payment.status).in_((PaymentStatus.PENDING, PaymentStatus.PROCESSING)),
                        sa.and_(
                            col(Payment.status) == PaymentStatus.FAILED,
                            col(Payment.stripe_payment_intent_id).is_not(None),
                        ),
                    ),
                )
                .order_by(col(Payment.created_at), col(Payment.id))
            )
        )
        holding = sum(
            p.amount_minor for p in attempts if p.status is PaymentStatus.PROCESSING or p.id in held
        )
        unpaid = [p for p in attempts if p.status in _UNPAID and p.id not in held]
        free = invoice.balance_minor - holding
        if free <= 0:
            raise AppError(
                "The rest of this invoice is already being paid; it updates when that payment"
                " completes.",
                code=ErrorCode.INVOICE_NOT_PAYABLE,
                field="invoiceId",
            )
        bounds = bounds_for(invoice, holding=holding)
        if bounds is None:
            raise AppError(
                f"Invoices in {invoice.currency} cannot be paid online.",
                code=ErrorCode.INVOICE_NOT_PAYABLE,
                field="invoiceId",
            )
        wanted = free if amount is None else amount
        if not bounds.allows(wanted):
            raise AppError(
                _range_message(bounds, invoice.currency, holding),
                code=ErrorCode.AMOUNT_OUT_OF_RANGE,
                field="amount",
            )
        reusable = next(
            (
                p
                for p in reversed(unpaid)
                if p.status is PaymentStatus.PENDING
                and p.amount_minor == wanted
                and p.account_id == account_id
                and p.stripe_account_id == tenant.stripe_account_id
                and p.created_at >= utcnow() - REUSE_WINDOW
            ),
            None,
        )
        others = [p for p in unpaid if p is not reusable]
        room = free - sum(p.amount_minor for p in others)
        in_the_way: list[Payment] = []
        for other in others:
            if wanted <= room:
                break
            in_the_way.append(other)
            room += other.amount_minor
        if in_the_way:
            return _Cancel(in_the_way, tenant.stripe_account_id)
        payment = reusable
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


def _range_message(bounds: Bounds, currency: str, holding: int) -> str:
    minimum, maximum = (format_money(m, currency) for m in (bounds.minimum, bounds.maximum))
    if bounds.empty:
        what = "What is left to pay" if holding else "The balance"
        return f"{what} is below the smallest card payment ({minimum}) and cannot be paid online."
    message = f"Pay between {minimum} and {maximum}."
    if holding:
        message += f" {format_money(holding, currency)} of the balance is already being paid."
    return message


async def _cancel(db: Database, gateway: StripeGateway, step: _Cancel) -> frozenset[uuid.UUID]:
    """Ends the attempts in the way, in Stripe first; answers those Stripe would not cancel
    because they were paid or went into processing meanwhile: their money is held."""
    held: set[uuid.UUID] = set()
    for payment in step.payments:
        intent_id = payment.stripe_payment_intent_id
        if intent_id is None:
            # Its client secret was never handed out, so nothing can pay it; unless its
            # PaymentIntent was written down meanwhile, it simply ends here.
            if await _end(db, payment, unstarted=True):
                continue
            async with db.session(SYSTEM) as session:
                fresh = await session.get(Payment, (payment.tenant_id, payment.id))
            if fresh is None or fresh.status not in _UNPAID:
                continue
            intent_id = fresh.stripe_payment_intent_id
            assert intent_id is not None
        try:
            intent = await gateway.cancel_intent(
                account=payment.stripe_account_id or step.stripe_account, intent_id=intent_id
            )
        except stripe.InvalidRequestError as error:
            if error.code != "resource_missing":
                raise _cancel_failed(payment, error) from error
            # Stripe has no such PaymentIntent in that account: nothing can pay it.
            await _end(db, payment)
            continue
        except stripe.StripeError as error:
            raise _cancel_failed(payment, error) from error
        if intent.status == "canceled":
            await _end(db, payment)
        else:
            held.add(payment.id)
    return frozenset(held)


def _cancel_failed(payment: Payment, error: stripe.StripeError) -> AppError:
    # Unsure whether the attempt can still take money, the new one does not start.
    logger.warning("Stripe did not cancel payment %s: %s", payment.id, error)
    return _provider_error()


async def _end(db: Database, payment: Payment, *, unstarted: bool = False) -> bool:
    """Marks an unpaid attempt CANCELED; False when it was no longer unpaid (or, with
    `unstarted`, had its PaymentIntent written down meanwhile)."""
    conditions = [
        col(Payment.tenant_id) == payment.tenant_id,
        col(Payment.id) == payment.id,
        col(Payment.status).in_(_UNPAID),
    ]
    if unstarted:
        conditions.append(col(Payment.stripe_payment_intent_id).is_(None))
    async with db.transaction(SYSTEM) as session:
        ended = await session.execute(
            sa.update(Payment)
            .where(*conditions)
            .values(status=PaymentStatus.CANCELED, updated_at=utcnow())
            .returning(col(Payment.id))
        )
        return ended.first() is not None


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
        if intent.status == "canceled":
            # A newer attempt on the invoice ended this one since it was chosen for reuse.
            raise _superseded()
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
        written = await session.execute(
            sa.update(Payment)
            .where(
                col(Payment.tenant_id) == payment.tenant_id,
                col(Payment.id) == payment.id,
                col(Payment.status) != PaymentStatus.CANCELED,
            )
            .values(stripe_payment_intent_id=intent.id, updated_at=utcnow())
            .returning(col(Payment.id))
        )
        still_open = written.first() is not None
    if not still_open:
        # A newer attempt ended this one while Stripe was creating its PaymentIntent: its
        # client secret is not handed out, and the PaymentIntent goes too.
        try:
            await gateway.cancel_intent(account=attempt.stripe_account, intent_id=intent.id)
        except stripe.StripeError as error:
            logger.warning("Stripe did not cancel superseded payment %s: %s", payment.id, error)
        raise _superseded()
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
        raise _provider_error() from error
