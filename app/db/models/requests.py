from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field

from app.db.base import TenantOwned, UTCDateTime, enum_column, tenant_fk, tenant_index


class RequestKind(enum.StrEnum):
    SERVICE = "SERVICE"
    QUOTE = "QUOTE"
    JOB = "JOB"


class RequestStatus(enum.StrEnum):
    NEW = "NEW"
    READ = "READ"
    COMPLETED = "COMPLETED"
    DECLINED = "DECLINED"
    # Withdrawn by the customer while still open.
    CANCELLED = "CANCELLED"


class ServiceRequest(TenantOwned, table=True):
    """What a customer asked for from the portal, and what the office decided."""

    __tablename__ = "service_requests"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        tenant_fk(["contact_id"], "contacts"),
        tenant_fk(["product_id"], "requestable_items"),
        tenant_fk(["service_id"], "requestable_items"),
        tenant_fk(["rental_id"], "rentals"),
        tenant_fk(["converted_job_id"], "jobs"),
        tenant_fk(["converted_rental_id"], "rentals"),
        tenant_index("service_requests", "number", unique=True),
        tenant_index("service_requests", "status", "created_at"),
        tenant_index("service_requests", "customer_id", "created_at"),
        tenant_index("service_requests", "created_at"),
    )

    number: str = Field(max_length=32)
    kind: RequestKind = Field(default=RequestKind.SERVICE, sa_type=enum_column(RequestKind))
    status: RequestStatus = Field(default=RequestStatus.NEW, sa_type=enum_column(RequestStatus))
    customer_id: uuid.UUID
    site_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    # The sender's name as sent: the request keeps it when the contact is deleted.
    contact_name: str | None = Field(default=None, max_length=200)
    account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    product_id: uuid.UUID | None = None
    service_id: uuid.UUID | None = None
    # The names as submitted: renaming an item later leaves the request as the customer sent it.
    product_name: str | None = Field(default=None, max_length=120)
    service_name: str | None = Field(default=None, max_length=120)
    rental_id: uuid.UUID | None = None
    wants_new_rental: bool = False
    po_number: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=4000)
    notes: str = Field(default="", max_length=4000)
    preferred_date: date | None = None
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    read_by_staff_id: uuid.UUID | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by_staff_id: uuid.UUID | None = None
    decline_reason: str | None = Field(default=None, max_length=2000)
    cancel_reason: str | None = Field(default=None, max_length=2000)
    converted_job_id: uuid.UUID | None = None
    converted_rental_id: uuid.UUID | None = None


class ServiceRequestEvent(TenantOwned, table=True):
    """One step in a request's status history."""

    __tablename__ = "service_request_events"
    __table_args__ = (
        tenant_fk(["request_id"], "service_requests", ondelete="CASCADE"),
        tenant_fk(["staff_user_id"], "staff_users"),
        tenant_index("service_request_events", "request_id", "created_at"),
    )

    request_id: uuid.UUID
    from_status: RequestStatus | None = Field(default=None, sa_type=enum_column(RequestStatus))
    to_status: RequestStatus = Field(sa_type=enum_column(RequestStatus))
    staff_user_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    note: str = Field(default="", sa_type=sa.Text)
