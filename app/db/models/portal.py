from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db.base import TenantOwned, UTCDateTime, new_id, tenant_fk, tenant_index, timestamp_field


class PortalAccount(SQLModel, table=True):
    """One sign-in identity per email address; it may belong to contacts at many tenants."""

    __tablename__ = "portal_accounts"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    username: str | None = Field(default=None, max_length=64, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=200)
    password_hash: str | None = Field(default=None, max_length=255)
    is_active: bool = True
    created_at: datetime = timestamp_field()
    password_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PortalMembership(TenantOwned, table=True):
    """Links a portal account to the contact it signs in as at one tenant. It is written when
    the contact is invited, with the modules it is narrowed to, and linked on acceptance."""

    __tablename__ = "portal_memberships"
    __table_args__ = (
        tenant_fk(["contact_id"], "contacts", ondelete="CASCADE"),
        tenant_index("portal_memberships", "contact_id", unique=True),
        # The one index not led by tenant: signing in finds an account's memberships everywhere.
        sa.Index("ix_portal_memberships_account_id", "account_id"),
    )

    # None until the invitation is accepted: the user is invited, not yet signed up.
    account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    contact_id: uuid.UUID
    # The username whoever invited them proposed; the account's own once accepted.
    invited_username: str | None = Field(default=None, max_length=64)
    # None means "no narrowing" of the customer's effective modules.
    module_override: list[str] | None = Field(default=None, sa_type=sa.JSON)
