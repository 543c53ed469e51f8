from __future__ import annotations

import uuid
from datetime import date

from sqlmodel import Field

from app.db.base import TenantOwned, tenant_fk, tenant_index


class Certificate(TenantOwned, table=True):
    """A compliance certificate (gas safety, waste transfer...) with its document."""

    __tablename__ = "certificates"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        tenant_fk(["job_id"], "jobs"),
        tenant_fk(["file_id"], "stored_files"),
        tenant_index("certificates", "customer_id", "issued_on"),
    )

    customer_id: uuid.UUID
    site_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    number: str = Field(max_length=32)
    title: str = Field(max_length=200)
    issued_on: date
    expires_on: date | None = None
    file_id: uuid.UUID
