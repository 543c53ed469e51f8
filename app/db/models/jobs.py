from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlmodel import Field

from app.db.base import TenantOwned, UTCDateTime, enum_column, tenant_fk, tenant_index


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class VisitStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class Job(TenantOwned, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        tenant_index("jobs", "number", unique=True),
        tenant_index("jobs", "customer_id", "created_at"),
    )

    customer_id: uuid.UUID
    site_id: uuid.UUID | None = None
    number: str = Field(max_length=32)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    status: JobStatus = Field(default=JobStatus.PENDING, sa_type=enum_column(JobStatus))
    po_number: str | None = Field(default=None, max_length=64)
    # From a portal request: what the customer asked for, in its words, and when they would
    # like it; the names as they were sent, whatever the items are called later.
    product_name: str | None = Field(default=None, max_length=120)
    service_name: str | None = Field(default=None, max_length=120)
    preferred_date: date | None = None
    notes: str = Field(default="", max_length=4000, sa_column_kwargs={"server_default": ""})
    source_request_id: uuid.UUID | None = None


class JobVisit(TenantOwned, table=True):
    __tablename__ = "job_visits"
    __table_args__ = (
        tenant_fk(["job_id"], "jobs", ondelete="CASCADE"),
        tenant_fk(["technician_id"], "staff_users"),
        tenant_index("job_visits", "job_id", "starts_at"),
        tenant_index("job_visits", "starts_at"),
    )

    job_id: uuid.UUID
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: VisitStatus = Field(default=VisitStatus.SCHEDULED, sa_type=enum_column(VisitStatus))
    technician_id: uuid.UUID | None = None
    notes: str = Field(default="", max_length=2000)
