"""One-time tokens sent by email: issued with earlier ones revoked, consumed exactly once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.secrets import hash_secret, new_secret
from app.db.base import utcnow
from app.db.models import OneTimeToken, TokenPurpose

LIFETIMES = {
    TokenPurpose.INVITATION: timedelta(days=7),
    TokenPurpose.PASSWORD_RESET: timedelta(hours=1),
    TokenPurpose.MAGIC_LINK: timedelta(minutes=15),
    TokenPurpose.EMAIL_CHANGE: timedelta(hours=24),
}


async def issue_token(
    session: AsyncSession,
    *,
    purpose: TokenPurpose,
    email: str,
    tenant_id: uuid.UUID | None = None,
    contact_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> tuple[str, OneTimeToken]:
    """A new token for this purpose and target; any earlier unused one stops working."""
    now = now or utcnow()
    target = (
        col(OneTimeToken.contact_id) == contact_id
        if contact_id is not None
        else col(OneTimeToken.email) == email
    )
    await session.execute(
        sa.update(OneTimeToken)
        .where(
            col(OneTimeToken.purpose) == purpose,
            target,
            col(OneTimeToken.used_at).is_(None),
            col(OneTimeToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    secret, secret_hash = new_secret()
    token = OneTimeToken(
        purpose=purpose,
        token_hash=secret_hash,
        tenant_id=tenant_id,
        contact_id=contact_id,
        account_id=account_id,
        email=email,
        created_at=now,
        expires_at=now + LIFETIMES[purpose],
    )
    session.add(token)
    return secret, token


async def consume_token(
    session: AsyncSession,
    secret: str,
    *,
    purpose: TokenPurpose,
    tenant_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> OneTimeToken | None:
    """The token, marked used, if it is genuine, unused, unexpired, unrevoked, for this
    purpose (and tenant, for invitations). Of two requests racing with the same token, the
    conditional UPDATE lets exactly one through."""
    now = now or utcnow()
    conditions = [
        col(OneTimeToken.token_hash) == hash_secret(secret),
        col(OneTimeToken.purpose) == purpose,
        col(OneTimeToken.used_at).is_(None),
        col(OneTimeToken.revoked_at).is_(None),
        col(OneTimeToken.expires_at) > now,
    ]
    if tenant_id is not None:
        conditions.append(col(OneTimeToken.tenant_id) == tenant_id)
    result = await session.execute(
        sa.update(OneTimeToken)
        .where(*conditions)
        .values(used_at=now)
        .returning(col(OneTimeToken.id))
        .execution_options(synchronize_session=False)
    )
    token_id = result.scalar_one_or_none()
    if token_id is None:
        return None
    return await session.get(OneTimeToken, token_id, populate_existing=True)
