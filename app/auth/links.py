"""Password-reset and sign-in links, asked for by email address.

Asking only records the request: the answer costs the same whether the address has an
account or not, so neither its content nor its timing tells. The delivery worker then
makes a link for each request whose address has an account that may use the portal, and
mails it; a request for any other address ends there.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.onetime import LIFETIMES, issue_token
from app.auth.resolve import portal_blocker
from app.db.base import utcnow
from app.db.models import EmailLinkRequest, PortalAccount, TokenPurpose
from app.db.scope import SYSTEM
from app.db.session import Database
from app.mail import enqueue_email
from app.settings import Settings

# Per purpose: the email template, its link's name in the template, and where it points.
_LINKS = {
    TokenPurpose.PASSWORD_RESET: ("password_reset", "reset_url", "{portal_app_url}/reset-password"),
    TokenPurpose.MAGIC_LINK: ("magic_link", "sign_in_url", "{public_url}/portal/magic-link"),
}
# A request older than the link it asks for would be is dropped, not answered late.
_STALE = timedelta(minutes=15)


def record_request(session: AsyncSession, *, purpose: TokenPurpose, email: str) -> None:
    session.add(EmailLinkRequest(purpose=purpose, email=email))


async def send_requested_links(db: Database, settings: Settings, *, batch_size: int = 50) -> int:
    """Answers waiting requests; returns how many links were mailed. Several workers may
    run at once: each request is claimed by one of them."""
    mailed = 0
    async with db.transaction(SYSTEM) as session:
        requests = list(
            await session.scalars(
                sa.select(EmailLinkRequest)
                .where(col(EmailLinkRequest.handled_at).is_(None))
                .order_by(col(EmailLinkRequest.requested_at))
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        now = utcnow()
        for request in requests:
            request.handled_at = now
            if request.requested_at < now - _STALE:
                continue
            account = (
                await session.scalars(
                    sa.select(PortalAccount).where(col(PortalAccount.email) == request.email)
                )
            ).first()
            if (
                account is None
                or not account.is_active
                or await portal_blocker(session, account.id)
            ):
                continue
            await _mail_link(session, settings, request.purpose, account)
            mailed += 1
    return mailed


async def _mail_link(
    session: AsyncSession, settings: Settings, purpose: TokenPurpose, account: PortalAccount
) -> None:
    secret, _ = await issue_token(
        session, purpose=purpose, email=account.email, account_id=account.id
    )
    template, link_name, link = _LINKS[purpose]
    url = link.format(portal_app_url=settings.portal_app_url, public_url=settings.public_url)
    await enqueue_email(
        session,
        template=template,
        to=account.email,
        context={
            "account_name": account.name,
            link_name: f"{url}?token={secret}",
            "expires_minutes": int(LIFETIMES[purpose].total_seconds() // 60),
        },
        settings=settings,
    )
