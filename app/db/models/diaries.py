from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field

from app.db.base import TenantOwned, UTCDateTime, tenant_fk, tenant_index


class DiaryEvent(TenantOwned, table=True):
    """An appointment at a site: an estimate visit for a quote, or work on a job."""

    __tablename__ = "diary_events"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        tenant_fk(["job_id"], "jobs"),
        tenant_fk(["quote_id"], "quotes"),
        tenant_index("diary_events", "customer_id", "starts_at"),
    )

    customer_id: uuid.UUID
    site_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    quote_id: uuid.UUID | None = None
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
