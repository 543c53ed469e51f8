from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from sqlmodel import Field

from app.db.base import TenantOwned, tenant_fk, tenant_index


class Rental(TenantOwned, table=True):
    """A product on hire at a customer's site (a portable toilet, a skip...)."""

    __tablename__ = "rentals"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        tenant_fk(["product_id"], "requestable_items"),
        tenant_index("rentals", "customer_id"),
        tenant_index("rentals", "site_id"),
    )

    customer_id: uuid.UUID
    site_id: uuid.UUID
    product_id: uuid.UUID | None = None
    reference: str = Field(max_length=32)
    description: str = Field(max_length=500)
    starts_on: date
    ends_on: date | None = None
    # From a portal request: the customer's order number, the names as they were sent (the
    # service to go with the hire, too) and their words.
    po_number: str | None = Field(default=None, max_length=64)
    product_name: str | None = Field(default=None, max_length=120)
    service_name: str | None = Field(default=None, max_length=120)
    notes: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    source_request_id: uuid.UUID | None = None
