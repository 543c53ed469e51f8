"""Card payments through Stripe (E3), as one service: `Payments`.

Each tenant is paid into its own connected account (`Tenant.stripe_account_id`) through the
platform's keys. `start` opens (or reuses) an attempt and its PaymentIntent; `webhook` is the
`/webhooks/stripe` endpoint; `recover` applies events the webhook missed. The invoice
follows its payments only through Stripe's events, each applied exactly once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import stripe
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.db.models import Invoice, InvoiceStatus, Tenant
from app.db.scope import SYSTEM, Scope
from app.db.session import Database
from app.errors import ErrorCode
from app.messages.live import LiveEvents
from app.payments.amounts import Bounds, bounds_for
from app.payments.events import HANDLED_TYPES, StripeEventData, apply_event
from app.payments.gateway import StripeGateway
from app.payments.start import PaymentStart, start_payment
from app.settings import Settings

__all__ = ["Bounds", "PaymentStart", "Payments", "RecoveryReport"]

logger = logging.getLogger("app.payments")


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    listed: int
    applied: int
    already_recorded: int


class Payments:
    def __init__(self, db: Database, settings: Settings, *, live: LiveEvents | None = None) -> None:
        self._db = db
        self._settings = settings
        # Payments received are news to the office (E15).
        self._live = live
        self._gateway = StripeGateway(settings) if settings.payments_enabled else None

    @property
    def takes_cards(self) -> bool:
        """Whether this service takes card payments at all (Stripe is set up)."""
        return self._gateway is not None

    def bounds(self, tenant: Tenant, invoice: Invoice) -> Bounds | None:
        """What one payment towards `invoice` may be, when it can be paid online now."""
        if not self.takes_cards or not tenant.stripe_account_id:
            return None
        if invoice.status is not InvoiceStatus.UNPAID:
            return None
        bounds = bounds_for(invoice)
        return None if bounds is None or bounds.empty else bounds

    async def start(
        self,
        *,
        scope: Scope,
        account_id: uuid.UUID,
        invoice_id: uuid.UUID,
        amount: int | None,
    ) -> PaymentStart:
        """Opens an attempt to pay `amount` (all the balance not already being processed
        when None) of an invoice the scope reaches, or reuses the open one for the same
        invoice, amount and account; older unpaid attempts that would not fit beside it end."""
        return await start_payment(
            self._db,
            self._gateway,
            publishable_key=self._settings.stripe_publishable_key or "",
            scope=scope,
            account_id=account_id,
            invoice_id=invoice_id,
            amount=amount,
        )

    async def webhook(self, request: Request) -> Response:
        """POST /webhooks/stripe: 400 unless Stripe signed it (within the SDK's default
        tolerance of 300 s); 500 when it could not be applied, so Stripe sends it again."""
        secret = self._settings.stripe_webhook_secret
        if secret is None:
            return _refusal(404, ErrorCode.PAYMENTS_NOT_CONFIGURED, "Payments are not set up.")
        payload = await request.body()
        try:
            event = stripe.Webhook.construct_event(
                payload, request.headers.get("stripe-signature"), secret.get_secret_value()
            )
            data = StripeEventData.of(event.to_dict())
        except (stripe.SignatureVerificationError, ValueError, KeyError, TypeError):
            return _refusal(400, ErrorCode.BAD_REQUEST, "The event is not signed by Stripe.")
        try:
            outcome = await apply_event(self._db, self._settings, data, live=self._live)
        except Exception:
            request_id = request.state.request_id
            logger.exception("Stripe event %s failed (request %s)", data.id, request_id)
            return _refusal(500, ErrorCode.INTERNAL_ERROR, "Unexpected error.", request_id)
        return JSONResponse({"received": True, "outcome": outcome or "ALREADY_RECORDED"})

    async def recover(self, since: datetime) -> RecoveryReport:
        """Lists every handled event since `since` in each tenant's connected account and
        applies those not recorded yet, oldest first."""
        if self._gateway is None:
            raise RuntimeError("payments are not configured: set PORTAL_STRIPE_SECRET_KEY")
        async with self._db.session(SYSTEM) as session:
            accounts = sorted(
                {
                    account
                    for account in await session.scalars(
                        sa.select(col(Tenant.stripe_account_id)).distinct()
                    )
                    if account
                }
            )
        events = [
            StripeEventData.of(event, account=account)
            for account in accounts
            for event in await self._gateway.events_since(
                account=account, since=since, types=HANDLED_TYPES
            )
        ]
        events.sort(key=lambda event: event.created)
        applied = 0
        for event in events:
            if await apply_event(self._db, self._settings, event, live=self._live) is not None:
                applied += 1
        return RecoveryReport(
            listed=len(events), applied=applied, already_recorded=len(events) - applied
        )

    async def close(self) -> None:
        if self._gateway is not None:
            await self._gateway.close()


def _refusal(status: int, code: ErrorCode, message: str, request_id: str | None = None) -> Response:
    extensions: dict[str, str] = {"code": code.value}
    if request_id:
        extensions["requestId"] = request_id
    return JSONResponse(
        {"errors": [{"message": message, "extensions": extensions}]}, status_code=status
    )
