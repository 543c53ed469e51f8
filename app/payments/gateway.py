"""The calls we make to Stripe, through the SDK's `StripeClient`, and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe

from app.settings import Settings

# A PaymentIntent in one of these can still be paid with the client secret it gave out.
OPEN_STATUSES = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    client_secret: str
    status: str
    amount: int
    currency: str

    @classmethod
    def of(cls, intent: stripe.PaymentIntent) -> Intent:
        return cls(
            id=intent.id,
            client_secret=intent.client_secret or "",
            status=intent.status,
            amount=intent.amount,
            currency=intent.currency.upper(),
        )

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


class StripeGateway:
    """One `StripeClient` for the platform; every call names the tenant's connected account.
    The client is made on first use, inside the event loop that will use it."""

    def __init__(self, settings: Settings) -> None:
        assert settings.stripe_secret_key is not None
        self._secret_key = settings.stripe_secret_key.get_secret_value()
        self._base = settings.stripe_api_base.rstrip("/")
        self._client: stripe.StripeClient | None = None
        self._http: stripe.HTTPXClient | None = None

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            self._http = stripe.HTTPXClient()
            self._client = stripe.StripeClient(
                self._secret_key,
                base_addresses={"api": self._base, "connect": self._base, "files": self._base},
                http_client=self._http,
                # The SDK retries network failures with the same idempotency key.
                max_network_retries=2,
            )
        return self._client

    async def create_intent(
        self,
        *,
        account: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        description: str,
    ) -> Intent:
        intent = await self.client.v1.payment_intents.create_async(
            {
                "amount": amount,
                "currency": currency.lower(),
                "automatic_payment_methods": {"enabled": True},
                "description": description,
                "metadata": dict(metadata),
            },
            {"stripe_account": account, "idempotency_key": idempotency_key},
        )
        return Intent.of(intent)

    async def retrieve_intent(self, *, account: str, intent_id: str) -> Intent:
        intent = await self.client.v1.payment_intents.retrieve_async(
            intent_id, options={"stripe_account": account}
        )
        return Intent.of(intent)

    async def cancel_intent(self, *, account: str, intent_id: str) -> Intent:
        """Cancels a PaymentIntent nobody has paid yet; one Stripe can no longer cancel
        (processing, succeeded) comes back as it is, for the caller to read its status."""
        try:
            intent = await self.client.v1.payment_intents.cancel_async(
                intent_id,
                {"cancellation_reason": "abandoned"},
                {"stripe_account": account},
            )
        except stripe.InvalidRequestError as error:
            if error.code != "payment_intent_unexpected_state":
                raise
            return await self.retrieve_intent(account=account, intent_id=intent_id)
        return Intent.of(intent)

    async def events_since(
        self, *, account: str, since: datetime, types: list[str]
    ) -> list[dict[str, Any]]:
        """Every event of these types in `account` since `since` (Stripe keeps 30 days)."""
        page = await self.client.v1.events.list_async(
            {"created": {"gte": int(since.timestamp())}, "limit": 100, "types": types},
            {"stripe_account": account},
        )
        return [event.to_dict() async for event in page.auto_paging_iter()]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close_async()  # type: ignore[no-untyped-call]
