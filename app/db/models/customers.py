from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from app.db.base import TenantOwned, enum_column, tenant_fk, tenant_index, timestamp_field


class ContactKind(enum.StrEnum):
    COMPANY = "COMPANY"
    SITE = "SITE"


class Customer(TenantOwned, table=True):
    __tablename__ = "customers"
    __table_args__ = (
        tenant_index("customers", "portal_identifier", unique=True),
        tenant_index("customers", "name"),
    )

    name: str = Field(max_length=200)
    portal_identifier: str = Field(max_length=63)
    portal_enabled: bool = True
    # None means "no narrowing"; a list narrows the tenant's default modules.
    module_override: list[str] | None = Field(default=None, sa_type=sa.JSON)
    logo_file_id: uuid.UUID | None = None
    accent_colour: str | None = Field(default=None, max_length=7)
    updated_at: datetime = timestamp_field()


class Site(TenantOwned, table=True):
    """A property of a customer's where work is done."""

    __tablename__ = "sites"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_index("sites", "customer_id", "name"),
        tenant_index("sites", "site_number"),
    )

    customer_id: uuid.UUID
    name: str = Field(max_length=200)
    site_number: str | None = Field(default=None, max_length=32)
    address_line1: str = Field(max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    town: str | None = Field(default=None, max_length=100)
    postcode: str | None = Field(default=None, max_length=16)
    uprn: str | None = Field(default=None, max_length=12)
    is_company_site: bool = False
    updated_at: datetime = timestamp_field()

    @property
    def one_line_address(self) -> str:
        parts = (self.address_line1, self.address_line2, self.town, self.postcode)
        return ", ".join(part for part in parts if part)

    @staticmethod
    def one_line_address_sql(site: Any) -> sa.ColumnElement[str]:
        """`one_line_address` in SQL, for a site row's columns."""
        parts = (site.address_line1, site.address_line2, site.town, site.postcode)
        return sa.func.concat_ws(", ", *(sa.func.nullif(part, "") for part in parts))


class Contact(TenantOwned, table=True):
    """A person at a customer: a company contact, or a contact at one of its sites."""

    __tablename__ = "contacts"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        sa.CheckConstraint(
            "(kind = 'COMPANY' AND site_id IS NULL) OR (kind = 'SITE' AND site_id IS NOT NULL)",
            name="kind_matches_site",
        ),
        tenant_index("contacts", "customer_id", "name"),
        tenant_index("contacts", "site_id"),
        tenant_index("contacts", "email"),
    )

    customer_id: uuid.UUID
    site_id: uuid.UUID | None = None
    kind: ContactKind = Field(sa_type=enum_column(ContactKind))
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    portal_access: bool = False
    updated_at: datetime = timestamp_field()
