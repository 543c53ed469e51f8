"""Signed-in sessions: browser cookies, and mobile access tokens with rotating refresh
tokens. A session is the unit of sign-out: revoking it ends everything it issued."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.secrets import hash_secret, new_secret
from app.auth.tokens import Audience, issue_access_token
from app.db.base import utcnow
from app.db.models import AuthSession, RefreshToken, SessionAudience, SessionClient
from app.settings import Settings

# The absolute end of a session, however often it is refreshed.
LIFETIMES = {SessionClient.BROWSER: timedelta(days=14), SessionClient.MOBILE: timedelta(days=30)}
TOKEN_AUDIENCE = {SessionAudience.STAFF: Audience.STAFF, SessionAudience.PORTAL: Audience.PORTAL}


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a new or refreshed session hands the client: a cookie for a browser, an access
    and a refresh token for a mobile app."""

    session: AuthSession
    cookie: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    access_token_expires_at: datetime | None = None


async def start_session(
    session: AsyncSession,
    settings: Settings,
    *,
    audience: SessionAudience,
    client: SessionClient,
    account_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
    staff_user_id: uuid.UUID | None = None,
) -> Credentials:
    now = utcnow()
    auth_session = AuthSession(
        audience=audience,
        client=client,
        account_id=account_id,
        tenant_id=tenant_id,
        staff_user_id=staff_user_id,
        created_at=now,
        expires_at=now + LIFETIMES[client],
    )
    if client is SessionClient.BROWSER:
        cookie, auth_session.cookie_hash = new_secret()
        session.add(auth_session)
        return Credentials(session=auth_session, cookie=cookie)
    session.add(auth_session)
    await session.flush()
    return await _mobile_credentials(session, settings, auth_session)


async def _mobile_credentials(
    session: AsyncSession, settings: Settings, auth_session: AuthSession
) -> Credentials:
    refresh, refresh_hash = new_secret()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=refresh_hash))
    now = utcnow()
    subject = auth_session.staff_user_id or auth_session.account_id
    assert subject is not None
    access = issue_access_token(
        settings,
        audience=TOKEN_AUDIENCE[auth_session.audience],
        subject=subject,
        tenant_id=auth_session.tenant_id,
        session_id=auth_session.id,
        now=now.timestamp(),
    )
    return Credentials(
        session=auth_session,
        access_token=access,
        refresh_token=refresh,
        access_token_expires_at=now + timedelta(seconds=settings.access_token_seconds),
    )


async def refresh_session(
    session: AsyncSession, settings: Settings, refresh_token: str, *, audience: SessionAudience
) -> Credentials | None:
    """Trades a refresh token for new credentials, once. A token used a second time was
    copied: the whole session is revoked, so the thief's newer token dies with it."""
    now = utcnow()
    token_hash = hash_secret(refresh_token)
    # A token shown at the other schema's endpoint is refused without being used up.
    of_audience = sa.select(col(AuthSession.id)).where(col(AuthSession.audience) == audience)
    used = await session.execute(
        sa.update(RefreshToken)
        .where(
            col(RefreshToken.token_hash) == token_hash,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.session_id).in_(of_audience),
        )
        .values(used_at=now)
        .returning(col(RefreshToken.session_id))
        .execution_options(synchronize_session=False)
    )
    session_id = used.scalar_one_or_none()
    if session_id is None:
        replayed = await session.scalar(
            sa.select(col(RefreshToken.session_id)).where(
                col(RefreshToken.token_hash) == token_hash,
                col(RefreshToken.used_at).is_not(None),
                col(RefreshToken.session_id).in_(of_audience),
            )
        )
        if replayed is not None:
            await revoke(session, col(AuthSession.id) == replayed, reason="refresh-token-reuse")
        return None
    auth_session = await active_session(session, session_id)
    if auth_session is None:
        return None
    return await _mobile_credentials(session, settings, auth_session)


async def active_session(session: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    return (
        await session.scalars(
            sa.select(AuthSession).where(col(AuthSession.id) == session_id, _is_active())
        )
    ).first()


async def session_for_cookie(session: AsyncSession, cookie: str) -> AuthSession | None:
    return (
        await session.scalars(
            sa.select(AuthSession).where(
                col(AuthSession.cookie_hash) == hash_secret(cookie), _is_active()
            )
        )
    ).first()


def _is_active() -> sa.ColumnElement[bool]:
    return sa.and_(col(AuthSession.revoked_at).is_(None), col(AuthSession.expires_at) > utcnow())


async def revoke(session: AsyncSession, *where: sa.ColumnElement[bool], reason: str) -> None:
    """Revokes every active session matching `where`."""
    await session.execute(
        sa.update(AuthSession)
        .where(*where, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


def of_account(account_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return col(AuthSession.account_id) == account_id


def of_staff_user(tenant_id: uuid.UUID, user_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(AuthSession.tenant_id) == tenant_id, col(AuthSession.staff_user_id) == user_id
    )
