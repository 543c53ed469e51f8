"""Sign-in state: one-time tokens (invitations, resets, magic links), sessions with their
refresh tokens, and rate-limit counters."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db.base import UTCDateTime, enum_column, new_id, timestamp_field


class TokenPurpose(enum.StrEnum):
    INVITATION = "INVITATION"
    PASSWORD_RESET = "PASSWORD_RESET"  # noqa: S105  (a name, not a secret)
    MAGIC_LINK = "MAGIC_LINK"
    # Sent to the address a portal user wants instead of theirs; its `email` is the new one.
    EMAIL_CHANGE = "EMAIL_CHANGE"


class OneTimeToken(SQLModel, table=True):
    """A secret sent by email. Only its SHA-256 is stored; it works once, until it expires,
    and an invitation only at the tenant that sent it."""

    __tablename__ = "one_time_tokens"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "contact_id"], ["contacts.tenant_id", "contacts.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_one_time_tokens_tenant_id_contact_id", "tenant_id", "contact_id"),
        sa.Index("ix_one_time_tokens_account_id", "account_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    purpose: TokenPurpose = Field(sa_type=enum_column(TokenPurpose))
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    email: str = Field(max_length=254)
    created_at: datetime = timestamp_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SessionAudience(enum.StrEnum):
    STAFF = "STAFF"
    PORTAL = "PORTAL"


class SessionClient(enum.StrEnum):
    BROWSER = "BROWSER"
    MOBILE = "MOBILE"


class AuthSession(SQLModel, table=True):
    """One signed-in client: a browser holding a cookie, or a mobile app holding a chain of
    refresh tokens. Revoking it ends every credential it issued at once."""

    __tablename__ = "auth_sessions"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "staff_user_id"],
            ["staff_users.tenant_id", "staff_users.id"],
            ondelete="CASCADE",
        ),
        sa.Index("ix_auth_sessions_tenant_id_staff_user_id", "tenant_id", "staff_user_id"),
        sa.Index("ix_auth_sessions_account_id", "account_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    audience: SessionAudience = Field(sa_type=enum_column(SessionAudience))
    client: SessionClient = Field(sa_type=enum_column(SessionClient))
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    staff_user_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = Field(
        default=None, foreign_key="portal_accounts.id", ondelete="CASCADE"
    )
    # The browser cookie's secret, hashed; mobile sessions have refresh tokens instead.
    cookie_hash: str | None = Field(default=None, max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = timestamp_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=64)


class RefreshToken(SQLModel, table=True):
    """One link in a mobile session's chain. Each is used once; a second use means it was
    stolen, and the whole session is revoked."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="auth_sessions.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = timestamp_field()
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RateLimitCounter(SQLModel, table=True):
    """Attempts under one key (an action and an account or a client address) in the
    current window."""

    __tablename__ = "rate_limit_counters"

    key: str = Field(primary_key=True, max_length=255)
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    hits: int = 0


class EmailLinkRequest(SQLModel, table=True):
    """Someone asked for a reset or sign-in link for this address. The request is answered
    at once, the same way whether the address has an account or not; the link is made and
    mailed later, only when it has one."""

    __tablename__ = "email_link_requests"
    __table_args__ = (
        sa.Index("ix_email_link_requests_handled_at_requested_at", "handled_at", "requested_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    purpose: TokenPurpose = Field(sa_type=enum_column(TokenPurpose))
    email: str = Field(max_length=254)
    requested_at: datetime = timestamp_field()
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
