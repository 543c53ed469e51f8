from __future__ import annotations

import enum
from datetime import datetime

from sqlmodel import Field

from app.db.base import TenantOwned, UTCDateTime, enum_column, tenant_index


class StaffRole(enum.StrEnum):
    """The staff ladder, highest first."""

    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    ASSISTANT_MANAGER = "ASSISTANT_MANAGER"
    DISPATCHER = "DISPATCHER"
    TECHNICIAN = "TECHNICIAN"

    @property
    def rank(self) -> int:
        return len(_LADDER) - _LADDER.index(self)

    def at_least(self, minimum: StaffRole) -> bool:
        return self.rank >= minimum.rank


_LADDER = list(StaffRole)


class ActivityEmails(enum.StrEnum):
    """How a staff user is emailed what customers do (E15)."""

    NONE = "NONE"
    INSTANT = "INSTANT"
    DAILY = "DAILY"


class StaffUser(TenantOwned, table=True):
    __tablename__ = "staff_users"
    __table_args__ = (tenant_index("staff_users", "email", unique=True),)

    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    role: StaffRole = Field(sa_type=enum_column(StaffRole))
    password_hash: str | None = Field(default=None, max_length=255)
    is_active: bool = True
    password_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    activity_emails: ActivityEmails = Field(
        default=ActivityEmails.NONE,
        sa_type=enum_column(ActivityEmails),
        sa_column_kwargs={"server_default": "NONE"},
    )
    # What customers did up to this moment has been emailed (or was before they asked).
    activity_emailed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
