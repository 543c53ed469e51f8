"""Invoices in the portal (E2): company contacts with the INVOICES module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa
import strawberry
from strawberry import relay

from app.context import Info
from app.dataloaders.base import then
from app.db import models
from app.db.models import ContactKind, PortalModule
from app.payments import Bounds
from app.payments.amounts import minimum_payment_sql, payable_sql
from app.resolvers.invoices import (
    ShownInvoiceStatus,
    invoice_currency_sql,
    shown_status,
    shown_status_sql,
    start_invoice_payment,
)
from app.schema import compiled
from app.schema.permissions import RequiresContact, RequiresModule, guarded, module_type
from app.schema.portal.common import (
    Contractor,
    Money,
    contractor_filter,
    contractor_of,
    contractor_sql,
    money,
)
from app.schema.relay import LoadedNode, uuid_of

InvoiceStatus = strawberry.enum(
    ShownInvoiceStatus,
    name="InvoiceStatus",
    description="OVERDUE when unpaid past its due date in the business's time zone.",
)


@strawberry.type(
    description="One line of an invoice.", directives=module_type(PortalModule.INVOICES)
)
class InvoiceLine:
    description: str
    quantity: int
    unit_price: Money
    total: Money


@strawberry.type(
    description="A bill from a contractor.", directives=module_type(PortalModule.INVOICES)
)
class Invoice(LoadedNode):
    loader_name = "invoice_by_id"
    id: relay.NodeID[str]
    number: str
    description: str
    issued_on: date
    due_on: date
    total: Money
    paid: Money
    balance: Money
    row: strawberry.Private[models.Invoice]

    @classmethod
    def from_row(cls, row: models.Invoice) -> Invoice:
        return cls(
            id=str(row.id),
            number=row.number,
            description=row.description,
            issued_on=row.issued_on,
            due_on=row.due_on,
            total=Money(minor=row.total_minor, currency=row.currency),
            paid=Money(minor=row.paid_minor, currency=row.currency),
            balance=Money(minor=row.balance_minor, currency=row.currency),
            row=row,
        )

    @strawberry.field(graphql_type=InvoiceStatus)
    def status(self, info: Info) -> ShownInvoiceStatus | Awaitable[ShownInvoiceStatus]:
        return then(info.context.loaders.tenant_by_id.get(self.row.tenant_id), self._status)

    def _status(self, tenant: models.Tenant | None) -> ShownInvoiceStatus:
        assert tenant is not None, "a record the viewer can read belongs to a tenant it can read"
        return shown_status(self.row, tenant)

    @strawberry.field(
        description="Whether it can be paid by card now: outstanding, in a currency cards take,"
        " at a business that takes card payments. Without it there is no pay action."
    )
    async def can_pay(self, info: Info) -> bool:
        return await _bounds(info, self.row) is not None

    @strawberry.field(
        description="The smallest part payment Stripe takes in its currency; null when it"
        " cannot be paid by card. The largest is the balance, less payments Stripe is still"
        " processing."
    )
    async def minimum_payment(self, info: Info) -> Money | None:
        bounds = await _bounds(info, self.row)
        return Money(minor=bounds.minimum, currency=self.row.currency) if bounds else None

    @strawberry.field(description="The business that sent it.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)

    @strawberry.field(description="The address of the site the work was at, when there is one.")
    async def address(self, info: Info) -> str | None:
        site = await _site(info, self.row)
        return site.one_line_address if site is not None else None

    @strawberry.field(description="The UPRN of the site the work was at, when known.")
    async def uprn(self, info: Info) -> str | None:
        site = await _site(info, self.row)
        return site.uprn if site is not None else None

    @strawberry.field(
        description="What was charged, in order.",
        extensions=guarded(RequiresModule(PortalModule.INVOICES)),
    )
    async def lines(self, info: Info) -> list[InvoiceLine]:
        rows = await info.context.loaders.invoice_lines_by_invoice_id.load(self.row.id)
        return [
            InvoiceLine(
                description=line.description,
                quantity=line.quantity,
                unit_price=Money(minor=line.unit_price_minor, currency=self.row.currency),
                total=Money(minor=line.total_minor, currency=self.row.currency),
            )
            for line in rows
        ]


def _status_sql(row: Any, build: compiled.Build) -> sa.ColumnElement[Any]:
    return shown_status_sql(row, build.now)


def _payable_sql(row: Any, build: compiled.Build) -> sa.ColumnElement[bool]:
    return payable_sql(row, build.takes_cards)


def _line_currency(line: Any, _build: compiled.Build) -> sa.ColumnElement[str]:
    return invoice_currency_sql(line)


def _site_value(value: Callable[[Any], sa.ColumnElement[Any]]) -> compiled.Through:
    """A value of the site the invoice's work was at, when the viewer reaches that site."""
    return compiled.Through(
        models.Site,
        lambda row, site: sa.and_(site.tenant_id == row.tenant_id, site.id == row.site_id),
        value,
    )


compiled.register(
    "InvoiceLine",
    compiled.Source(
        models.InvoiceLine,
        {
            "description": compiled.column("description"),
            "quantity": compiled.column("quantity"),
            "unitPrice": money(compiled.column("unit_price_minor"), _line_currency),
            "total": money(compiled.column("total_minor"), _line_currency),
        },
    ),
)
compiled.register(
    "Invoice",
    compiled.Source(
        models.Invoice,
        {
            "id": compiled.node_id("Invoice"),
            "number": compiled.column("number"),
            "description": compiled.column("description"),
            "issuedOn": compiled.column("issued_on"),
            "dueOn": compiled.column("due_on"),
            "status": _status_sql,
            "total": money(compiled.column("total_minor"), compiled.column("currency")),
            "paid": money(compiled.column("paid_minor"), compiled.column("currency")),
            "balance": money(
                lambda row, _build: row.total_minor - row.paid_minor, compiled.column("currency")
            ),
            "canPay": _payable_sql,
            "minimumPayment": compiled.Embedded(
                {
                    "minor": lambda row, _build: minimum_payment_sql(row),
                    "currency": compiled.column("currency"),
                },
                when=_payable_sql,
            ),
            "contractor": contractor_sql(),
            "address": _site_value(models.Site.one_line_address_sql),
            "uprn": _site_value(lambda site: site.uprn),
            "lines": compiled.Many(
                "InvoiceLine",
                models.InvoiceLine,
                lambda row, line: sa.and_(
                    line.tenant_id == row.tenant_id, line.invoice_id == row.id
                ),
                lambda line: [line.position, line.id],
            ),
        },
    ),
)


def _invoices_where(row: Any) -> list[sa.ColumnElement[bool]]:
    contractor = sa.bindparam("contractor", type_=sa.Uuid)
    unpaid_only = sa.bindparam("unpaid_only", type_=sa.Boolean)
    return [
        sa.or_(contractor.is_(None), row.tenant_id == contractor),
        sa.or_(sa.not_(unpaid_only), row.status == models.InvoiceStatus.UNPAID),
    ]


def _invoices_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "contractor": contractor_filter(arguments.get("contractor")),
        "unpaid_only": arguments["unpaidOnly"],
        **compiled.page_arguments(arguments, date),
    }


compiled.ROOTS["invoices"] = compiled.Connection(
    "Invoice", models.Invoice, "issued_on", _invoices_where, _invoices_arguments
)


async def _bounds(info: Info, invoice: models.Invoice) -> Bounds | None:
    tenant = await info.context.loaders.tenant_by_id.load(invoice.tenant_id)
    assert tenant is not None
    return info.context.payments.bounds(tenant, invoice)


@strawberry.type(description="What Stripe Elements needs to take a card payment for an invoice.")
class InvoicePayment:
    client_secret: str = strawberry.field(
        description="The PaymentIntent's client secret, for `stripe.confirmPayment`."
    )
    publishable_key: str = strawberry.field(description="The key to load Stripe.js with.")
    stripe_account: str = strawberry.field(
        description="The business's connected Stripe account: load Stripe.js with it as"
        " `stripeAccount`."
    )
    amount: Money = strawberry.field(description="What this payment takes, as the server set it.")


@strawberry.type
class InvoiceMutation:
    @strawberry.mutation(
        description="Starts paying an outstanding invoice by card: all of its balance not"
        " already being processed, or `amount` (in the currency's minor unit) between"
        " `minimumPayment` and that. Asking again for the same amount reuses the payment not"
        " yet made; one that would take the payments not yet made past the balance cancels"
        " the oldest of them (`PAYMENT_SUPERSEDED`: another start at the same moment won, so"
        " start again). The invoice changes only once Stripe reports the payment.",
        extensions=guarded(
            RequiresModule(PortalModule.INVOICES), RequiresContact(ContactKind.COMPANY)
        ),
    )
    async def start_invoice_payment(
        self, info: Info, invoice_id: strawberry.ID, amount: int | None = None
    ) -> InvoicePayment:
        started = await start_invoice_payment(
            info.context,
            invoice_id=uuid_of(invoice_id, "Invoice", field="invoiceId"),
            amount=amount,
        )
        return InvoicePayment(
            client_secret=started.client_secret,
            publishable_key=started.publishable_key,
            stripe_account=started.stripe_account,
            amount=Money(minor=started.amount_minor, currency=started.currency),
        )


async def _site(info: Info, invoice: models.Invoice) -> models.Site | None:
    if invoice.site_id is None:
        return None
    return await info.context.loaders.site_by_id.load(invoice.site_id)
