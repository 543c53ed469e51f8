from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from app.db.base import TenantOwned, tenant_fk, tenant_index


class AuditEntry(TenantOwned, table=True):
    """Who changed what, when, with the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        tenant_fk(["actor_staff_id"], "staff_users"),
        tenant_index("audit_log", "created_at"),
        tenant_index("audit_log", "subject_type", "subject_id"),
    )

    actor_staff_id: uuid.UUID | None = None
    actor_account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    action: str = Field(max_length=64)
    subject_type: str = Field(max_length=64)
    subject_id: uuid.UUID | None = None
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
