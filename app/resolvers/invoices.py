"""Invoices as the portal shows them."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col

from app.auth.viewer import PortalViewer
from app.context import Context
from app.db.base import table_of
from app.db.models import Invoice, InvoiceStatus, Tenant
from app.payments import PaymentStart
from app.resolvers.pagination import Page, tenant_page


class ShownInvoiceStatus(enum.StrEnum):
    UNPAID = "UNPAID"
    PART_PAID = "PART_PAID"
    OVERDUE = "OVERDUE"
    PAID = "PAID"


def today_at(tenant: Tenant, now: datetime | None = None) -> date:
    """Today's date where the business is: an invoice due today is not overdue there yet."""
    return (now or datetime.now(ZoneInfo("UTC"))).astimezone(ZoneInfo(tenant.time_zone)).date()


def shown_status(invoice: Invoice, tenant: Tenant) -> ShownInvoiceStatus:
    """OVERDUE is not stored: it follows from the due date in the business's time zone."""
    if invoice.status is InvoiceStatus.PAID:
        return ShownInvoiceStatus.PAID
    if invoice.due_on < today_at(tenant):
        return ShownInvoiceStatus.OVERDUE
    return ShownInvoiceStatus.PART_PAID if invoice.paid_minor else ShownInvoiceStatus.UNPAID


def shown_status_sql(invoice: Any, now: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
    """`shown_status` in SQL, for the columns of an invoice row and the time `now`."""
    tenants = table_of(Tenant).c
    zone = sa.select(tenants.time_zone).where(tenants.id == invoice.tenant_id).scalar_subquery()
    today = sa.cast(sa.func.timezone(zone, now), sa.Date)
    return sa.case(
        (invoice.status == InvoiceStatus.PAID, ShownInvoiceStatus.PAID.value),
        (invoice.due_on < today, ShownInvoiceStatus.OVERDUE.value),
        (invoice.paid_minor != 0, ShownInvoiceStatus.PART_PAID.value),
        else_=ShownInvoiceStatus.UNPAID.value,
    )


def invoice_currency_sql(line: Any) -> sa.ColumnElement[str]:
    """The currency of the invoice an invoice line's columns belong to."""
    invoices = table_of(Invoice).c
    return (
        sa.select(invoices.currency)
        .where(invoices.tenant_id == line.tenant_id, invoices.id == line.invoice_id)
        .scalar_subquery()
    )


async def invoices_page(
    ctx: Context,
    *,
    contractor: uuid.UUID | None,
    unpaid_only: bool,
    first: int | None,
    after: str | None,
) -> Page[Invoice]:
    """The viewer's invoices, newest first. Which it may see at all (never drafts or void
    ones, paid ones only where the business shows them) is decided in the data layer."""
    return await tenant_page(
        ctx,
        Invoice,
        sort=col(Invoice.issued_on),
        first=first,
        after=after,
        contractor=contractor,
        where=[col(Invoice.status) == InvoiceStatus.UNPAID] if unpaid_only else [],
        loader=ctx.loaders.invoice_by_id,
        with_contractors=True,
    )


async def start_invoice_payment(
    ctx: Context, *, invoice_id: uuid.UUID, amount: int | None
) -> PaymentStart:
    """Starts (or resumes) paying an invoice the viewer reaches; the field's guards have
    made sure the viewer is a portal user."""
    viewer = ctx.viewer
    assert isinstance(viewer, PortalViewer)
    return await ctx.payments.start(
        scope=ctx.scope, account_id=viewer.account_id, invoice_id=invoice_id, amount=amount
    )
