from __future__ import annotations

from app.dataloaders.base import ByIdLoader, ByParentLoader
from app.db.models import Invoice, InvoiceLine


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
