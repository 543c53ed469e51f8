from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dataloaders.base import ByIdLoader, ByParentLoader, SessionLoader
from app.db.models import Invoice, InvoiceLine, InvoiceStatus


class InvoiceByIdLoader(ByIdLoader[Invoice]):
    model = Invoice


class InvoiceLinesByInvoiceIdLoader(ByParentLoader[InvoiceLine]):
    model = InvoiceLine
    parent = "invoice_id"
    order_by = "position"


class InvoicesByCustomerIdLoader(ByParentLoader[Invoice]):
    model = Invoice
    parent = "customer_id"
    order_by = "issued_on"


class OutstandingByCustomerIdLoader(SessionLoader[uuid.UUID, tuple[int, str] | None]):
    """What each customer owes on the invoices the viewer may see: (minor units, currency),
    or None when nothing is outstanding."""

    async def fetch(
        self, session: AsyncSession, keys: list[uuid.UUID]
    ) -> Sequence[tuple[int, str] | None]:
        rows = await session.execute(
            sa.select(
                col(Invoice.customer_id),
                sa.func.sum(col(Invoice.total_minor) - col(Invoice.paid_minor)),
                col(Invoice.currency),
            )
            .where(col(Invoice.customer_id).in_(keys), col(Invoice.status) == InvoiceStatus.UNPAID)
            .group_by(col(Invoice.customer_id), col(Invoice.currency))
        )
        owed = {customer_id: (int(total), currency) for customer_id, total, currency in rows}
        return [owed.get(key) for key in keys]
