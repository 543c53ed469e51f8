from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db.base import enum_column, new_id, timestamp_field


class Plan(enum.StrEnum):
    STARTER = "STARTER"
    PRO = "PRO"


class PortalModule(enum.StrEnum):
    QUOTES = "QUOTES"
    JOBS = "JOBS"
    INVOICES = "INVOICES"
    CERTIFICATES = "CERTIFICATES"
    DIARIES = "DIARIES"
    REQUESTS = "REQUESTS"
    PROPERTIES = "PROPERTIES"
    USERS = "USERS"


ALL_MODULES: list[str] = [module.value for module in PortalModule]


class InvoiceVisibility(enum.StrEnum):
    OUTSTANDING = "OUTSTANDING"
    OUTSTANDING_AND_PAID = "OUTSTANDING_AND_PAID"


PLANS_WITH_PORTAL = frozenset({Plan.PRO})


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    slug: str = Field(max_length=63, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=200)
    plan: Plan = Field(default=Plan.STARTER, sa_type=enum_column(Plan))
    time_zone: str = Field(default="UTC", max_length=64)
    currency: str = Field(default="GBP", max_length=3)
    portal_enabled: bool = True
    default_modules: list[str] = Field(default_factory=lambda: list(ALL_MODULES), sa_type=sa.JSON)
    invoice_visibility: InvoiceVisibility = Field(
        default=InvoiceVisibility.OUTSTANDING, sa_type=enum_column(InvoiceVisibility)
    )
    logo_file_id: uuid.UUID | None = None
    accent_colour: str | None = Field(default=None, max_length=7)
    stripe_account_id: str | None = Field(default=None, max_length=255)
    # How long a message to a customer waits unread before its users are emailed.
    message_notice_minutes: int = 15
    # Whether customers see the first name of the staff member who wrote, or only the
    # business's name.
    message_staff_first_names: bool = False
    created_at: datetime = timestamp_field()

    @property
    def has_portal_plan(self) -> bool:
        return self.plan in PLANS_WITH_PORTAL
