"""How much may be paid online: Stripe's smallest charge per currency, at most the balance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.db.base import table_of
from app.db.models import Invoice, InvoiceStatus, Tenant

# Stripe's minimum charge in each settlement currency, in its minor unit
# (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
MINIMUM_MINOR: dict[str, int] = {
    "AED": 200,
    "AUD": 50,
    "BGN": 100,
    "BRL": 50,
    "CAD": 50,
    "CHF": 50,
    "CZK": 1500,
    "DKK": 250,
    "EUR": 50,
    "GBP": 30,
    "HKD": 400,
    "HUF": 17500,
    "INR": 50,
    "JPY": 50,
    "MXN": 1000,
    "MYR": 200,
    "NOK": 300,
    "NZD": 50,
    "PLN": 200,
    "RON": 200,
    "SEK": 300,
    "SGD": 50,
    "THB": 1000,
    "USD": 50,
}
# The largest amount one PaymentIntent can take (eight digits).
MAXIMUM_MINOR = 99_999_999
ZERO_DECIMAL = frozenset({"JPY"})


@dataclass(frozen=True, slots=True)
class Bounds:
    minimum: int
    maximum: int

    def allows(self, amount: int) -> bool:
        return self.minimum <= amount <= self.maximum

    @property
    def empty(self) -> bool:
        return self.maximum < self.minimum


def bounds_for(invoice: Invoice, *, holding: int = 0) -> Bounds | None:
    """What one payment towards `invoice` may be, beside payments `holding` so much of its
    balance already; None when its currency cannot be paid."""
    minimum = MINIMUM_MINOR.get(invoice.currency.upper())
    if minimum is None:
        return None
    return Bounds(minimum=minimum, maximum=min(invoice.balance_minor - holding, MAXIMUM_MINOR))


def format_money(minor: int, currency: str) -> str:
    """`GBP 12.50`, as receipts show amounts."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return f"{code} {minor:,}"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{code} {whole:,}.{cents:02d}"


def minimum_payment_sql(invoice: Any) -> sa.ColumnElement[int]:
    """`MINIMUM_MINOR` of an invoice row's currency, in SQL; null for one cards do not take."""
    return sa.case(
        *(
            (sa.func.upper(invoice.currency) == code, minimum)
            for code, minimum in MINIMUM_MINOR.items()
        ),
        else_=sa.null(),
    )


def payable_sql(invoice: Any, takes_cards: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """`Payments.bounds(...) is not None` in SQL, for an invoice row's columns: cards taken
    here (`takes_cards`) and by the business, the invoice outstanding, its currency one
    cards take, and its balance at least that currency's minimum."""
    tenants = table_of(Tenant).c
    account = (
        sa.select(tenants.stripe_account_id)
        .where(tenants.id == invoice.tenant_id)
        .scalar_subquery()
    )
    minimum = minimum_payment_sql(invoice)
    return sa.and_(
        takes_cards,
        sa.func.coalesce(account, "") != "",
        invoice.status == InvoiceStatus.UNPAID,
        minimum.is_not(None),
        sa.func.least(invoice.total_minor - invoice.paid_minor, MAXIMUM_MINOR) >= minimum,
    )
