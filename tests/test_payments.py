"""E3 and SECURITY rows 22 to 25: paying invoices through Stripe, exactly once. The real
Stripe SDK talks to a local stand-in (tests/stripe_standin.py); webhooks are signed with the
SDK's own helper; receipts go through the outbox to a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import event as sa_event
from sqlmodel import col
from starlette.applications import Starlette
from strawberry.relay import to_base64

from app.cli import main
from app.db.base import utcnow
from app.db.models import (
    ActivityEmails,
    AuditEntry,
    Customer,
    Invoice,
    InvoiceStatus,
    InvoiceVisibility,
    OutboxEmail,
    Payment,
    PaymentStatus,
    StaffRole,
    StaffUser,
    StripeEvent,
    StripeEventOutcome,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database, create_engine
from app.mail import OutboxWorker
from app.main import create_app
from app.messages.activity_emails import send_activity_emails
from app.payments import Payments
from app.payments.gateway import OPEN_STATUSES
from app.settings import Settings, get_settings
from tests.conftest import http_client, make_settings, stripe_settings
from tests.databases import run_in_thread
from tests.smtp import SmtpServer
from tests.stripe_standin import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StandInServer,
    StripeStandIn,
    signed,
)
from tests.support import (
    PORTAL,
    PortalUser,
    error_codes,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
    rows,
    staff_token,
)

ACCOUNT = "acct_acme"
WEBHOOK = "/webhooks/stripe"
START = """
mutation ($invoiceId: ID!, $amount: Int) {
  startInvoicePayment(invoiceId: $invoiceId, amount: $amount) {
    clientSecret publishableKey stripeAccount amount { minor currency }
  }
}"""


@pytest.fixture
def pay_settings(
    database_url: str, stripe_server: StandInServer, stripe_standin: StripeStandIn
) -> Settings:
    return make_settings(database_url, **stripe_settings(stripe_server.url))


@pytest.fixture
def pay_app(db: Database, pay_settings: Settings) -> Starlette:
    return create_app(pay_settings, db=db)


@pytest.fixture
async def pay_client(pay_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(pay_app) as http:
        yield http


@dataclass
class Shop:
    """A tenant paid into its own connected account, a company contact signed in, and an
    unpaid invoice of 100.00 GBP."""

    db: Database
    settings: Settings
    client: httpx.AsyncClient
    stripe: StripeStandIn
    user: PortalUser
    token: str
    invoice: Invoice

    @property
    def invoice_id(self) -> str:
        return to_base64("Invoice", str(self.invoice.id))

    async def start(
        self, amount: int | None = None, *, token: str | None = None, **variables: Any
    ) -> dict[str, Any]:
        return await gql(
            self.client,
            START,
            {"invoiceId": self.invoice_id, "amount": amount, **variables},
            path=PORTAL,
            token=token or self.token,
        )

    async def started_intent(self, amount: int | None = None, *, token: str | None = None) -> str:
        body = await self.start(amount, token=token)
        assert "errors" not in body, body
        return intent_of(body)

    async def colleague(self) -> str:
        """The token of another company contact at the same customer, on another device."""
        other = await make_portal_user(
            self.db,
            self.user.tenant,
            email="kim@customer.example",
            username="kim",
            customer=self.user.customer,
        )
        return await portal_token(self.db, self.settings, other.account)

    def payable(self) -> dict[str, int]:
        """The PaymentIntents Stripe could still take money through, with their amounts."""
        return {
            intent_id: intent["amount"]
            for intent_id, intent in self.stripe.intents.items()
            if intent["status"] in OPEN_STATUSES
        }

    async def deliver(self, event: dict[str, Any], **sign: Any) -> httpx.Response:
        body, headers = signed(event, **sign)
        return await self.client.post(WEBHOOK, content=body, headers=headers)

    async def reload(self) -> Invoice:
        return await invoice_row(self.db, self.invoice.id)


def intent_of(body: dict[str, Any]) -> str:
    secret: str = body["data"]["startInvoicePayment"]["clientSecret"]
    return secret.split("_secret_")[0]


async def invoice_row(db: Database, invoice_id: uuid.UUID) -> Invoice:
    async with db.session(SYSTEM) as session:
        row = await session.scalar(sa.select(Invoice).where(col(Invoice.id) == invoice_id))
    assert row is not None
    return row


async def add_invoice(
    db: Database,
    tenant: Tenant,
    customer: Customer,
    *,
    total: int = 10_000,
    status: InvoiceStatus = InvoiceStatus.UNPAID,
    number: str = "INV-1",
) -> Invoice:
    invoice = Invoice(
        tenant_id=tenant.id,
        customer_id=customer.id,
        number=number,
        status=status,
        currency="GBP",
        total_minor=total,
        paid_minor=total if status is InvoiceStatus.PAID else 0,
        issued_on=date.today(),
        due_on=date.today() + timedelta(days=30),
    )
    async with db.transaction(SYSTEM) as session:
        session.add(invoice)
    return invoice


async def connect(db: Database, tenant: Tenant, account: str | None = ACCOUNT) -> None:
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.id) == tenant.id).values(stripe_account_id=account)
        )


async def open_shop(
    db: Database,
    settings: Settings,
    client: httpx.AsyncClient,
    stripe: StripeStandIn,
    *,
    total: int = 10_000,
) -> Shop:
    tenant, _ = await make_tenant(db, slug="acme")
    await connect(db, tenant)
    user = await make_portal_user(db, tenant)
    invoice = await add_invoice(db, tenant, user.customer, total=total)
    token = await portal_token(db, settings, user.account)
    return Shop(db, settings, client, stripe, user, token, invoice)


@pytest.fixture
async def shop(
    db: Database,
    pay_settings: Settings,
    pay_client: httpx.AsyncClient,
    stripe_standin: StripeStandIn,
) -> Shop:
    return await open_shop(db, pay_settings, pay_client, stripe_standin)


# -- Starting a payment (row 24) ---------------------------------------------------------------


async def test_e3_starting_a_payment_creates_one_payment_intent_on_the_tenants_account(
    shop: Shop,
) -> None:
    body = await shop.start()
    started = body["data"]["startInvoicePayment"]
    assert started["publishableKey"] == PUBLISHABLE_KEY
    assert started["stripeAccount"] == ACCOUNT
    assert started["amount"] == {"minor": 10_000, "currency": "GBP"}

    [create] = shop.stripe.creates()
    [payment] = await rows(shop.db, Payment)
    assert create.account == ACCOUNT
    assert create.idempotency_key == payment.idempotency_key
    assert create.params["amount"] == "10000" and create.params["currency"] == "gbp"
    assert create.params["metadata"] == {
        "tenant_id": str(shop.invoice.tenant_id),
        "invoice_id": str(shop.invoice.id),
        "payment_id": str(payment.id),
    }
    [intent] = shop.stripe.intents.values()
    assert started["clientSecret"] == intent["client_secret"]
    assert payment.stripe_payment_intent_id == intent["id"]
    assert payment.status is PaymentStatus.PENDING
    assert payment.account_id == shop.user.account.id
    assert payment.stripe_account_id == ACCOUNT
    # Starting changes nothing on the invoice: only Stripe's events do.
    assert (await shop.reload()).paid_minor == 0


async def test_e3_a_double_click_reuses_the_open_attempt(shop: Shop) -> None:
    first, second = await asyncio.gather(shop.start(2_500), shop.start(2_500))
    third = await shop.start(2_500)

    secrets = {b["data"]["startInvoicePayment"]["clientSecret"] for b in (first, second, third)}
    assert len(secrets) == 1
    assert len(shop.stripe.intents) == 1
    assert len(await rows(shop.db, Payment)) == 1
    assert len({call.idempotency_key for call in shop.stripe.creates()}) == 1
    # Another amount is another attempt, with its own key.
    await shop.start(3_000)
    assert len(shop.stripe.intents) == 2
    assert len({call.idempotency_key for call in shop.stripe.creates()}) == 2


async def test_e3_the_server_bounds_the_amount_and_the_client_never_picks_the_currency(
    shop: Shop,
) -> None:
    for amount in (10_001, 29, 0, -500):
        body = await shop.start(amount)
        assert error_codes(body) == ["AMOUNT_OUT_OF_RANGE"], (amount, body)
        assert body["errors"][0]["extensions"]["field"] == "amount"
    with_currency = await gql(
        shop.client,
        'mutation ($id: ID!) { startInvoicePayment(invoiceId: $id, currency: "USD") '
        "{ clientSecret } }",
        {"id": shop.invoice_id},
        path=PORTAL,
        token=shop.token,
    )
    assert "currency" in with_currency["errors"][0]["message"]
    assert shop.stripe.calls == []
    assert await rows(shop.db, Payment) == []
    # The bounds themselves: Stripe's minimum for GBP, and the whole balance.
    assert "errors" not in await shop.start(30)
    assert "errors" not in await shop.start(10_000)


async def test_e3_another_customers_invoice_is_not_found_and_reaches_no_stripe(
    shop: Shop,
) -> None:
    other = Customer(tenant_id=shop.invoice.tenant_id, name="Other", portal_identifier="other")
    async with shop.db.transaction(SYSTEM) as session:
        session.add(other)
    tenant = Tenant(id=shop.invoice.tenant_id, slug="acme", name="Acme")
    theirs = await add_invoice(shop.db, tenant, other, number="INV-2")
    body = await gql(
        shop.client,
        START,
        {"invoiceId": to_base64("Invoice", str(theirs.id))},
        path=PORTAL,
        token=shop.token,
    )
    assert error_codes(body) == ["NOT_FOUND"]
    assert shop.stripe.calls == []
    assert await rows(shop.db, Payment) == []


async def test_e3_a_tenant_without_payments_shows_invoices_without_a_pay_action(
    shop: Shop,
) -> None:
    query = "{ invoices { edges { node { canPay minimumPayment { minor currency } } } } }"
    shown = await gql(shop.client, query, path=PORTAL, token=shop.token)
    assert shown["data"]["invoices"]["edges"][0]["node"] == {
        "canPay": True,
        "minimumPayment": {"minor": 30, "currency": "GBP"},
    }

    tenant = Tenant(id=shop.invoice.tenant_id, slug="acme", name="Acme")
    await connect(shop.db, tenant, None)
    shown = await gql(shop.client, query, path=PORTAL, token=shop.token)
    assert shown["data"]["invoices"]["edges"][0]["node"] == {
        "canPay": False,
        "minimumPayment": None,
    }
    assert error_codes(await shop.start()) == ["PAYMENTS_NOT_CONFIGURED"]
    assert shop.stripe.calls == []


async def test_e3_a_paid_invoice_cannot_be_paid_again(shop: Shop) -> None:
    async with shop.db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant)
            .where(col(Tenant.id) == shop.invoice.tenant_id)
            .values(invoice_visibility=InvoiceVisibility.OUTSTANDING_AND_PAID)
        )
        await session.execute(
            sa.update(Invoice)
            .where(col(Invoice.id) == shop.invoice.id)
            .values(status=InvoiceStatus.PAID, paid_minor=10_000)
        )
    assert error_codes(await shop.start()) == ["INVOICE_NOT_PAYABLE"]
    assert shop.stripe.calls == []


async def test_e3_a_retry_after_a_failed_stripe_call_reuses_the_attempt_and_its_key(
    shop: Shop,
) -> None:
    # Stripe answers 500 to the call and to each of the SDK's own retries.
    shop.stripe.failures.extend([(500, "api_error")] * 3)
    assert error_codes(await shop.start()) == ["PAYMENT_PROVIDER_ERROR"]
    [pending] = await rows(shop.db, Payment)
    assert pending.status is PaymentStatus.PENDING and pending.stripe_payment_intent_id is None

    assert "errors" not in await shop.start()
    [payment] = await rows(shop.db, Payment)
    assert payment.id == pending.id and payment.stripe_payment_intent_id is not None
    assert {call.idempotency_key for call in shop.stripe.creates()} == {pending.idempotency_key}
    assert len(shop.stripe.intents) == 1

    # A refusal is final: that attempt is over and the next click is a new one.
    shop.stripe.failures.append((400, "invalid_request_error"))
    assert error_codes(await shop.start(2_000)) == ["PAYMENT_PROVIDER_ERROR"]
    refused = [p for p in await rows(shop.db, Payment) if p.amount_minor == 2_000]
    assert [p.status for p in refused] == [PaymentStatus.FAILED]
    assert "errors" not in await shop.start(2_000)
    assert len([p for p in await rows(shop.db, Payment) if p.amount_minor == 2_000]) == 2


# -- The business's Stripe account, as staff set it (S9) ---------------------------------------

SET_ACCOUNT = """mutation ($account: String) {
  updatePortalSettings(input: {stripeAccountId: $account}) { stripeAccountId }
}"""


async def test_s9_a_manager_sets_the_stripe_account_and_portal_payments_go_to_it(
    db: Database,
    pay_settings: Settings,
    pay_client: httpx.AsyncClient,
    stripe_standin: StripeStandIn,
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    dispatcher = StaffUser(
        tenant_id=tenant.id,
        email="dispatcher@acme.example",
        name="Dee Dispatcher",
        role=StaffRole.DISPATCHER,
    )
    async with db.transaction(SYSTEM) as session:
        session.add(dispatcher)
    user = await make_portal_user(db, tenant)
    invoice = await add_invoice(db, tenant, user.customer)
    shop = Shop(
        db,
        pay_settings,
        pay_client,
        stripe_standin,
        user,
        await portal_token(db, pay_settings, user.account),
        invoice,
    )
    managers = await staff_token(db, pay_settings, manager)
    dispatchers = await staff_token(db, pay_settings, dispatcher)
    assert error_codes(await shop.start()) == ["PAYMENTS_NOT_CONFIGURED"]

    account = "acct_1PzQ9xLkT2b3C4d5"
    refused = await gql(pay_client, SET_ACCOUNT, {"account": account}, token=dispatchers)
    assert error_codes(refused) == ["ROLE_FORBIDDEN"]
    unseen = await gql(pay_client, "{ portalSettings { stripeAccountId } }", token=dispatchers)
    assert error_codes(unseen) == ["ROLE_FORBIDDEN"]
    set_ = await gql(pay_client, SET_ACCOUNT, {"account": account}, token=managers)
    assert set_["data"]["updatePortalSettings"] == {"stripeAccountId": account}

    body = await shop.start(2_500)
    assert body["data"]["startInvoicePayment"]["stripeAccount"] == account
    [create] = stripe_standin.creates()
    assert create.account == account and create.params["amount"] == "2500"
    assert stripe_standin.intent_accounts[intent_of(body)] == account

    cleared = await gql(pay_client, SET_ACCOUNT, {"account": None}, token=managers)
    assert cleared["data"]["updatePortalSettings"] == {"stripeAccountId": None}
    assert error_codes(await shop.start(2_500)) == ["PAYMENTS_NOT_CONFIGURED"]
    assert len(stripe_standin.calls) == 1
    async with db.session(SYSTEM) as session:
        trail = list(
            await session.scalars(sa.select(AuditEntry).order_by(col(AuditEntry.created_at)))
        )
    assert [(e.action, e.actor_staff_id, e.after) for e in trail] == [
        ("portal_settings.updated", manager.id, {"stripe_account_id": account}),
        ("portal_settings.updated", manager.id, {"stripe_account_id": None}),
    ]


# -- Overlapping attempts never add up past the balance (row 24) -------------------------------


async def statuses(db: Database) -> dict[int, PaymentStatus]:
    return {p.amount_minor: p.status for p in await rows(db, Payment)}


async def test_e3_attempts_that_fit_stay_open_and_one_that_does_not_cancels_the_oldest(
    shop: Shop,
) -> None:
    first = await shop.started_intent(6_000)
    second = await shop.started_intent(3_000)
    assert shop.stripe.cancels() == []
    assert shop.payable() == {first: 6_000, second: 3_000}

    # 5,000 fits beside 3,000 but not beside both: the oldest unpaid attempt gives way.
    third = await shop.started_intent(5_000)
    assert shop.stripe.cancels() == [first]
    assert shop.stripe.intents[first]["cancellation_reason"] == "abandoned"
    assert shop.payable() == {second: 3_000, third: 5_000}
    assert await statuses(shop.db) == {
        6_000: PaymentStatus.CANCELED,
        3_000: PaymentStatus.PENDING,
        5_000: PaymentStatus.PENDING,
    }
    # Stripe's own report of the cancellation changes nothing more.
    canceled = shop.stripe.intent_event("payment_intent.canceled", first)
    assert (await shop.deliver(canceled)).json()["outcome"] == "IGNORED"
    # Still the most one payment may be is the whole balance: others give way to it.
    whole = await shop.started_intent()
    assert shop.payable() == {whole: 10_000}


async def test_e3_an_abandoned_attempt_never_locks_out_another_device_or_a_colleague(
    shop: Shop,
) -> None:
    kim = await shop.colleague()
    mine = await shop.started_intent()
    # Jo walked away from the form; Kim pays the whole balance from another device.
    kims = await shop.started_intent(token=kim)
    assert shop.payable() == {kims: 10_000}
    # Jo comes back days later: the old attempt is past reuse, and Kim's gives way.
    async with shop.db.transaction(SYSTEM) as session:
        await session.execute(sa.update(Payment).values(created_at=utcnow() - timedelta(days=2)))
    again = await shop.started_intent()
    assert again not in (mine, kims)
    assert shop.payable() == {again: 10_000}
    assert shop.stripe.cancels() == [mine, kims]
    await shop.deliver(shop.stripe.intent_event("payment_intent.succeeded", again))
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (10_000, InvoiceStatus.PAID)


async def test_e3_a_declined_attempt_can_still_take_money_so_it_gives_way_too(
    shop: Shop,
) -> None:
    kim = await shop.colleague()
    declined = await shop.started_intent()
    # The card was declined; Stripe keeps the form open for another card.
    await shop.deliver(shop.stripe.intent_event("payment_intent.payment_failed", declined))
    assert await statuses(shop.db) == {10_000: PaymentStatus.FAILED}
    assert shop.payable() == {declined: 10_000}

    kims = await shop.started_intent(token=kim)
    assert shop.stripe.cancels() == [declined]
    assert shop.payable() == {kims: 10_000}
    by_intent = {p.stripe_payment_intent_id: p.status for p in await rows(shop.db, Payment)}
    assert by_intent == {declined: PaymentStatus.CANCELED, kims: PaymentStatus.PENDING}


async def test_e3_an_attempt_stripe_no_longer_has_simply_ends(shop: Shop) -> None:
    gone = await shop.started_intent()
    del shop.stripe.intents[gone]
    assert "errors" not in await shop.start(4_000)
    assert shop.stripe.cancels() == [gone]
    assert await statuses(shop.db) == {
        10_000: PaymentStatus.CANCELED,
        4_000: PaymentStatus.PENDING,
    }


async def test_e3_money_being_processed_lowers_the_largest_payment_and_is_never_cancelled(
    shop: Shop,
) -> None:
    debit = await shop.started_intent(7_000)
    shop.stripe.set_status(debit, "processing")
    await shop.deliver(shop.stripe.intent_event("payment_intent.processing", debit))

    too_much = await shop.start(5_000)
    assert error_codes(too_much) == ["AMOUNT_OUT_OF_RANGE"]
    assert too_much["errors"][0]["message"] == (
        "Pay between GBP 0.30 and GBP 30.00. GBP 70.00 of the balance is already being paid."
    )
    rest = await shop.start()
    assert rest["data"]["startInvoicePayment"]["amount"] == {"minor": 3_000, "currency": "GBP"}
    assert shop.stripe.cancels() == []
    assert sum(shop.payable().values()) == 3_000
    # Nothing is left once the rest is being processed too.
    shop.stripe.set_status(intent_of(rest), "processing")
    await shop.deliver(shop.stripe.intent_event("payment_intent.processing", intent_of(rest)))
    assert error_codes(await shop.start(30)) == ["INVOICE_NOT_PAYABLE"]

    # The debit fails: its 70.00 is free again.
    shop.stripe.set_status(debit, "requires_payment_method")
    await shop.deliver(shop.stripe.intent_event("payment_intent.payment_failed", debit))
    assert "errors" not in await shop.start(7_000)
    assert error_codes(await shop.start(7_001)) == ["AMOUNT_OUT_OF_RANGE"]


async def test_e3_an_attempt_paid_but_not_yet_reported_holds_its_amount(shop: Shop) -> None:
    kim = await shop.colleague()
    paid = await shop.started_intent(7_000)
    # Jo's card went through; Stripe's event is still on its way.
    shop.stripe.set_status(paid, "succeeded")

    refused = await shop.start(5_000, token=kim)
    assert error_codes(refused) == ["AMOUNT_OUT_OF_RANGE"]
    assert "GBP 70.00 of the balance is already being paid" in refused["errors"][0]["message"]
    assert shop.stripe.cancels() == [paid]
    assert await statuses(shop.db) == {7_000: PaymentStatus.PENDING}

    rest = await shop.started_intent(3_000, token=kim)
    for intent in (paid, rest):
        await shop.deliver(shop.stripe.intent_event("payment_intent.succeeded", intent))
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (10_000, InvoiceStatus.PAID)


async def test_e3_two_devices_starting_at_once_never_leave_more_payable_than_the_balance(
    shop: Shop,
) -> None:
    kim = await shop.colleague()
    for _ in range(3):
        bodies = await asyncio.gather(shop.start(8_000), shop.start(6_000, token=kim))
        for body in bodies:
            assert "errors" not in body or error_codes(body) == ["PAYMENT_SUPERSEDED"], body
        handed_out = {intent_of(body) for body in bodies if "errors" not in body}
        payable = shop.payable()
        assert sum(payable.values()) <= 10_000
        assert set(payable) <= handed_out
        # Every attempt still open here is one Stripe could take, and the other way round.
        open_rows = {
            p.stripe_payment_intent_id
            for p in await rows(shop.db, Payment)
            if p.status is PaymentStatus.PENDING
        }
        assert open_rows == set(payable)


# -- The webhook: authenticity (row 22) --------------------------------------------------------


async def test_e3_the_webhook_refuses_events_stripe_did_not_sign(shop: Shop) -> None:
    intent = await shop.started_intent()
    event = shop.stripe.intent_event("payment_intent.succeeded", intent)
    body, headers = signed(event)

    refusals = {
        "no signature": await shop.client.post(
            WEBHOOK, content=body, headers={"content-type": "application/json"}
        ),
        "bad signature": await shop.deliver(event, secret="whsec_someone_else"),
        "one byte changed": await shop.client.post(
            WEBHOOK, content=body.replace(b'"amount": 10000', b'"amount": 10001'), headers=headers
        ),
        "301 s old": await shop.deliver(event, at=int(time.time()) - 301),
    }
    assert {why: r.status_code for why, r in refusals.items()} == dict.fromkeys(refusals, 400)
    assert await rows(shop.db, StripeEvent) == []
    assert (await shop.reload()).paid_minor == 0

    accepted = await shop.deliver(event)
    assert accepted.status_code == 200
    assert (await shop.reload()).status is InvoiceStatus.PAID


# -- Duplicates, order and failures (row 23) ---------------------------------------------------


async def test_e3_the_same_event_twice_at_once_has_one_effect(shop: Shop) -> None:
    intent = await shop.started_intent(4_000)
    event = shop.stripe.intent_event("payment_intent.succeeded", intent)

    first, second = await asyncio.gather(shop.deliver(event), shop.deliver(event))
    assert (first.status_code, second.status_code) == (200, 200)
    assert sorted([first.json()["outcome"], second.json()["outcome"]]) == [
        "ALREADY_RECORDED",
        "APPLIED",
    ]
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (4_000, InvoiceStatus.UNPAID)
    assert len(await rows(shop.db, StripeEvent)) == 1
    assert len(await rows(shop.db, OutboxEmail)) == 1


async def test_e3_events_out_of_order_end_in_the_right_state(shop: Shop) -> None:
    paid = await shop.started_intent(9_500)
    pending = await shop.started_intent(500)
    now = int(time.time())
    processing = shop.stripe.intent_event("payment_intent.processing", paid, created=now - 5)
    failed = shop.stripe.intent_event("payment_intent.payment_failed", paid, created=now - 9)
    succeeded = shop.stripe.intent_event("payment_intent.succeeded", paid, created=now)
    # An older failure arriving after a newer "processing" does not move that back either.
    later = shop.stripe.intent_event("payment_intent.processing", pending, created=now)
    earlier = shop.stripe.intent_event("payment_intent.payment_failed", pending, created=now - 1)

    for event in (succeeded, processing, failed, later, earlier):
        assert (await shop.deliver(event)).status_code == 200
    statuses = {p.amount_minor: p.status for p in await rows(shop.db, Payment)}
    assert statuses == {9_500: PaymentStatus.SUCCEEDED, 500: PaymentStatus.PROCESSING}
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (9_500, InvoiceStatus.UNPAID)


@pytest.fixture
def fail_once(db: Database) -> Iterator[list[int]]:
    """The database refuses the first write of an invoice's balance, as a dropped
    connection or a full disk would."""
    failures: list[int] = []

    def refuse(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE INVOICES") and not failures:
            failures.append(1)
            raise RuntimeError("the database went away")

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", refuse)
    yield failures
    sa_event.remove(db.engine.sync_engine, "before_cursor_execute", refuse)


async def test_e3_a_handler_that_fails_once_answers_5xx_so_stripe_retries(
    shop: Shop, fail_once: list[int]
) -> None:
    intent = await shop.started_intent()
    event = shop.stripe.intent_event("payment_intent.succeeded", intent)

    failed = await shop.deliver(event)
    assert failed.status_code == 500 and fail_once == [1]
    assert failed.json()["errors"][0]["extensions"]["code"] == "INTERNAL_ERROR"
    assert await rows(shop.db, StripeEvent) == []
    assert await rows(shop.db, OutboxEmail) == []
    assert (await shop.reload()).paid_minor == 0

    retried = await shop.deliver(event)
    assert retried.status_code == 200 and retried.json()["outcome"] == "APPLIED"
    assert (await shop.reload()).status is InvoiceStatus.PAID
    assert len(await rows(shop.db, OutboxEmail)) == 1


# -- The webhook checks what it is told (row 24) -----------------------------------------------


async def test_e3_the_webhook_checks_amount_currency_account_and_metadata(shop: Shop) -> None:
    intent = await shop.started_intent(5_000)
    metadata = shop.stripe.intents[intent]["metadata"]
    forged = [
        shop.stripe.intent_event("payment_intent.succeeded", intent, amount=10_000),
        shop.stripe.intent_event("payment_intent.succeeded", intent, amount_received=9_000),
        shop.stripe.intent_event("payment_intent.succeeded", intent, currency="usd"),
        shop.stripe.intent_event(
            "payment_intent.succeeded",
            intent,
            metadata={**metadata, "invoice_id": str(uuid.uuid4())},
        ),
        {
            **shop.stripe.intent_event("payment_intent.succeeded", intent),
            "account": "acct_someone_else",
        },
        shop.stripe.refund_event(intent, 6_000),
    ]
    for event in forged:
        response = await shop.deliver(event)
        assert response.status_code == 200 and response.json()["outcome"] == "REJECTED", event
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (0, InvoiceStatus.UNPAID)
    [payment] = await rows(shop.db, Payment)
    assert payment.status is PaymentStatus.PENDING
    assert await rows(shop.db, OutboxEmail) == []


async def test_e3_a_payment_arriving_over_the_balance_is_counted_and_flagged_for_staff(
    shop: Shop,
) -> None:
    intent = await shop.started_intent()
    # The office lowers the invoice by a credit note while the payment form is open.
    async with shop.db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Invoice).where(col(Invoice.id) == shop.invoice.id).values(total_minor=8_000)
        )
    response = await shop.deliver(shop.stripe.intent_event("payment_intent.succeeded", intent))
    assert response.status_code == 200 and response.json()["outcome"] == "APPLIED"

    # The money is never lost: counted in full, the invoice is in credit by the excess.
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.balance_minor) == (10_000, -2_000)
    assert invoice.status is InvoiceStatus.PAID
    [event] = await rows(shop.db, StripeEvent)
    assert event.detail == "payment SUCCEEDED; 2000 over the balance, to refund or credit"
    # Staff see it in the audit trail, from the system, to refund or credit.
    async with shop.db.session(SYSTEM) as session:
        owner = await session.scalar(
            sa.select(StaffUser).where(col(StaffUser.tenant_id) == shop.invoice.tenant_id)
        )
    assert owner is not None
    trail = await gql(
        shop.client,
        "{ auditTrail { edges { node { action actorKind subjectType subjectId before after } } } }",
        token=await staff_token(shop.db, shop.settings, owner),
    )
    [entry] = [edge["node"] for edge in trail["data"]["auditTrail"]["edges"]]
    [payment] = await rows(shop.db, Payment)
    assert entry == {
        "action": "payment.over_balance",
        "actorKind": "SYSTEM",
        "subjectType": "Invoice",
        "subjectId": shop.invoice_id,
        "before": {"balance_minor": 8_000},
        "after": {
            "balance_minor": -2_000,
            "over_minor": 2_000,
            "currency": "GBP",
            "invoice_number": "INV-1",
            "payment_id": str(payment.id),
            "stripe_payment_intent_id": intent,
            "stripe_account_id": ACCOUNT,
        },
    }


# -- The invoice follows (E3) ------------------------------------------------------------------


async def test_e3_part_payments_add_up_and_a_refund_reopens_the_balance(shop: Shop) -> None:
    first = await shop.started_intent(6_000)
    second = await shop.started_intent(4_000)
    await shop.deliver(shop.stripe.intent_event("payment_intent.succeeded", first))
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (6_000, InvoiceStatus.UNPAID)
    await shop.deliver(shop.stripe.intent_event("payment_intent.succeeded", second))
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (10_000, InvoiceStatus.PAID)
    # This business shows outstanding invoices only: a paid one is not there to pay.
    assert error_codes(await shop.start()) == ["NOT_FOUND"]

    # Refunds: running totals per charge, applied once each, in any order.
    part, full = shop.stripe.refund_event(second, 1_000), shop.stripe.refund_event(second, 4_000)
    for event in (part, full, part):
        assert (await shop.deliver(event)).status_code == 200
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (6_000, InvoiceStatus.UNPAID)
    assert "errors" not in await shop.start()


async def test_e3_a_refund_before_its_success_still_counts_once(shop: Shop) -> None:
    intent = await shop.started_intent(5_000)
    refund = shop.stripe.refund_event(intent, 2_000)
    succeeded = shop.stripe.intent_event("payment_intent.succeeded", intent)
    for event in (refund, succeeded):
        assert (await shop.deliver(event)).status_code == 200
    assert (await shop.reload()).paid_minor == 3_000


# -- Nothing lost (row 25) ---------------------------------------------------------------------


async def test_e3_concurrent_success_events_for_one_invoice_leave_an_exact_balance(
    db: Database,
    database_url: str,
    pay_settings: Settings,
    pay_client: httpx.AsyncClient,
    stripe_standin: StripeStandIn,
) -> None:
    # 200 on PostgreSQL, as production runs; SQLite serialises writers, so fewer prove it.
    count = 200 if db.dialect == "postgresql" else 20
    amounts = [100 + n for n in range(count)]
    shop = await open_shop(db, pay_settings, pay_client, stripe_standin, total=sum(amounts))
    intents = [await shop.started_intent(amount) for amount in amounts]
    events = [stripe_standin.intent_event("payment_intent.succeeded", i) for i in intents]

    # Every event delivered twice, all at once.
    responses = await asyncio.gather(*(shop.deliver(e) for e in [*events, *events]))

    assert [r.status_code for r in responses] == [200] * (2 * count)
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["ALREADY_RECORDED"] * count + ["APPLIED"] * count
    invoice = await shop.reload()
    assert (invoice.paid_minor, invoice.status) == (sum(amounts), InvoiceStatus.PAID)
    stored = await rows(db, StripeEvent)
    assert len(stored) == count
    assert {e.outcome for e in stored} == {StripeEventOutcome.APPLIED}
    assert {p.status for p in await rows(db, Payment)} == {PaymentStatus.SUCCEEDED}
    assert len(await rows(db, OutboxEmail)) == count


async def test_e3_the_receipt_goes_through_the_outbox_and_is_sent_once(
    shop: Shop, smtp: SmtpServer
) -> None:
    intent = await shop.started_intent(2_550)
    event = shop.stripe.intent_event("payment_intent.succeeded", intent)
    await shop.deliver(event)
    await shop.deliver(event)

    [email] = await rows(shop.db, OutboxEmail)
    assert email.kind == "payment_receipt" and email.to_address == shop.user.account.email
    assert "GBP 25.50" in email.text_body and "GBP 74.50" in email.text_body
    settings = shop.settings.model_copy(update={"smtp_url": SecretStr(smtp.url)})
    worker = OutboxWorker(shop.db, settings)
    assert await worker.deliver_due() == 1
    assert await worker.deliver_due() == 0
    assert smtp.inbox.recipients == [shop.user.account.email]


# -- Recovery ----------------------------------------------------------------------------------


async def test_e3_recovery_applies_the_events_the_webhook_missed(shop: Shop) -> None:
    since = utcnow() - timedelta(minutes=1)
    first = await shop.started_intent(3_000)
    second = await shop.started_intent(2_000)
    delivered = shop.stripe.intent_event("payment_intent.succeeded", first)
    await shop.deliver(delivered)
    shop.stripe.intent_event("payment_intent.succeeded", second)  # never delivered
    shop.stripe.refund_event(first, 500)  # never delivered

    payments = Payments(shop.db, shop.settings)
    report = await payments.recover(since)
    assert (report.listed, report.applied, report.already_recorded) == (3, 2, 1)
    assert (await shop.reload()).paid_minor == 4_500
    again = await payments.recover(since)
    assert (again.applied, again.already_recorded) == (0, 3)
    assert (await shop.reload()).paid_minor == 4_500
    assert {call.account for call in shop.stripe.calls if call.path == "/v1/events"} == {ACCOUNT}
    await payments.close()


def test_e3_portal_stripe_recover_applies_missed_events(
    database_url: str,
    stripe_server: StandInServer,
    stripe_standin: StripeStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(database_url, **stripe_settings(stripe_server.url))

    async def prepare() -> uuid.UUID:
        db = Database(create_engine(database_url))
        try:
            tenant, _ = await make_tenant(db, slug="acme")
            await connect(db, tenant)
            user = await make_portal_user(db, tenant)
            invoice = await add_invoice(db, tenant, user.customer)
            payment = Payment(
                tenant_id=tenant.id,
                invoice_id=invoice.id,
                amount_minor=1_200,
                currency="GBP",
                account_id=user.account.id,
                stripe_account_id=ACCOUNT,
                stripe_payment_intent_id="pi_missed",
                idempotency_key="payment-missed",
            )
            async with db.transaction(SYSTEM) as session:
                session.add(payment)
            stripe_standin.intents["pi_missed"] = {
                "id": "pi_missed",
                "object": "payment_intent",
                "amount": 1_200,
                "currency": "gbp",
                "metadata": {
                    "tenant_id": str(tenant.id),
                    "invoice_id": str(invoice.id),
                    "payment_id": str(payment.id),
                },
            }
            stripe_standin.intent_accounts["pi_missed"] = ACCOUNT
            stripe_standin.intent_event("payment_intent.succeeded", "pi_missed")
            return invoice.id
        finally:
            await db.dispose()

    invoice_id = run_in_thread(prepare)
    environment = {
        "PORTAL_ENV": "test",
        "DATABASE_URL": database_url,
        "PORTAL_VAR_DIR": str(settings.var_dir),
        "PORTAL_STRIPE_SECRET_KEY": SECRET_KEY,
        "PORTAL_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "PORTAL_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PORTAL_STRIPE_API_BASE": stripe_server.url,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        since = (utcnow() - timedelta(hours=1)).isoformat()
        main(["stripe-recover", "--since", since])
        assert "applied 1, 0 already recorded" in capsys.readouterr().out
        main(["stripe-recover", "--since", since])
        assert "applied 0, 1 already recorded" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()

    async def paid() -> int:
        db = Database(create_engine(database_url))
        try:
            return (await invoice_row(db, invoice_id)).paid_minor
        finally:
            await db.dispose()

    assert run_in_thread(paid) == 1_200


# -- The office hears of payments (E15) --------------------------------------------------------


async def test_e15_a_payment_received_is_news_to_the_office_once_and_in_its_emails(
    shop: Shop, pay_app: Starlette
) -> None:
    async with shop.db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(StaffUser)
            .where(col(StaffUser.tenant_id) == shop.invoice.tenant_id)
            .values(
                activity_emails=ActivityEmails.INSTANT,
                activity_emailed_until=utcnow() - timedelta(minutes=1),
            )
        )
    live = pay_app.state.live
    async with live.listen() as queue:
        intent = await shop.started_intent(2_550)
        await shop.deliver(shop.stripe.intent_event("payment_intent.processing", intent))
        succeeded = shop.stripe.intent_event("payment_intent.succeeded", intent)
        assert (await shop.deliver(succeeded)).status_code == 200
        assert (await shop.deliver(succeeded)).status_code == 200
        heard = await asyncio.wait_for(queue.get(), 10)
        assert heard is not None
        assert (heard.kind, heard.tenant_id, heard.customer_id) == (
            "payment",
            shop.invoice.tenant_id,
            shop.invoice.customer_id,
        )
        # Money being processed is not yet news, and the repeated event is not news again.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(), 1)
    assert await send_activity_emails(shop.db, shop.settings) == 1
    [email] = [row for row in await rows(shop.db, OutboxEmail) if row.kind == "office_activity"]
    assert email.to_address == "owner@acme.example"
    assert f"Invoice {shop.invoice.number}: GBP 25.50" in email.text_body
