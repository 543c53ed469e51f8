"""Turns a request's credentials into a viewer, re-checking the account on every request.

Credentials are only the start: the session and the user behind it are loaded again each
time, so a sign-out, a password reset, or switching off a staff user, a contact's portal
access, a customer's or tenant's portal, or the plan, takes effect on the very next
request, not at the next sign-in.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from starlette.requests import Request

from app.auth.secrets import hash_secret
from app.auth.tokens import Audience, read_access_token
from app.auth.viewer import ANONYMOUS, PortalViewer, StaffViewer, Viewer
from app.db.base import utcnow
from app.db.models import (
    AuthSession,
    Contact,
    Customer,
    InvoiceVisibility,
    PortalAccount,
    PortalMembership,
    SessionAudience,
    StaffUser,
    Tenant,
)
from app.db.models.tenants import PLANS_WITH_PORTAL
from app.db.reach import Grant, effective_modules
from app.db.scope import SYSTEM
from app.db.session import Database
from app.errors import AppError, ErrorCode, Unauthenticated
from app.settings import Settings

COOKIE_NAMES = {Audience.STAFF: "__Host-staff_session", Audience.PORTAL: "__Host-portal_session"}


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def session_cookie(request: Request, audience: Audience) -> str | None:
    return request.cookies.get(COOKIE_NAMES[audience]) or None


async def resolve_viewer(
    request: Request, db: Database, settings: Settings, audience: Audience
) -> Viewer:
    """The viewer for this request. A bearer token that is presented but not valid raises
    `Unauthenticated`; a stale cookie is simply no sign-in, so the browser can sign in again."""
    token = bearer_token(request)
    cookie = session_cookie(request, audience)
    if token is None and cookie is None:
        return ANONYMOUS
    if token is not None:
        claims = read_access_token(settings, token, audience=audience)
        if claims is None:
            raise Unauthenticated("The access token is not valid.")
        which = col(AuthSession.id) == claims.session_id
    else:
        assert cookie is not None
        which = col(AuthSession.cookie_hash) == hash_secret(cookie)
    async with db.session(SYSTEM) as session:
        if audience is Audience.STAFF:
            viewer: Viewer | None = await _staff_viewer(session, which)
        else:
            viewer = await _portal_viewer(session, which)
    if viewer is None or (
        token is not None and claims is not None and claims.subject != _subject(viewer)
    ):
        if token is not None:
            raise Unauthenticated("The access token is not valid any more. Sign in again.")
        return ANONYMOUS
    return viewer


def _subject(viewer: Viewer) -> uuid.UUID | None:
    if isinstance(viewer, StaffViewer):
        return viewer.user_id
    if isinstance(viewer, PortalViewer):
        return viewer.account_id
    return None


def _active(
    which: sa.ColumnElement[bool], audience: SessionAudience
) -> list[sa.ColumnElement[bool]]:
    return [
        which,
        col(AuthSession.audience) == audience,
        col(AuthSession.revoked_at).is_(None),
        col(AuthSession.expires_at) > utcnow(),
    ]


async def _staff_viewer(session: AsyncSession, which: sa.ColumnElement[bool]) -> StaffViewer | None:
    """The session and its staff user in one statement, both still in good standing."""
    row = (
        await session.execute(
            sa.select(col(AuthSession.id), StaffUser)
            .join(
                StaffUser,
                sa.and_(
                    col(StaffUser.tenant_id) == col(AuthSession.tenant_id),
                    col(StaffUser.id) == col(AuthSession.staff_user_id),
                ),
            )
            .where(*_active(which, SessionAudience.STAFF), col(StaffUser.is_active).is_(True))
        )
    ).first()
    if row is None:
        return None
    session_id, user = row
    return StaffViewer(
        session_id=session_id,
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=user.role,
        name=user.name,
        email=user.email,
    )


async def _portal_viewer(
    session: AsyncSession, which: sa.ColumnElement[bool]
) -> PortalViewer | None:
    row = (
        await session.execute(
            sa.select(col(AuthSession.id), PortalAccount)
            .join(PortalAccount, col(PortalAccount.id) == col(AuthSession.account_id))
            .where(*_active(which, SessionAudience.PORTAL), col(PortalAccount.is_active).is_(True))
        )
    ).first()
    if row is None:
        return None
    session_id, account = row
    grants = await portal_grants(session, account.id)
    # Signed in, but with nothing to use: every portal field says why, with a stable code.
    refusal = None if grants else await _refusal(session, account.id)
    return PortalViewer(
        session_id=session_id,
        account_id=account.id,
        name=account.name,
        email=account.email,
        username=account.username,
        grants=grants,
        refusal=refusal.code if refusal is not None else None,
    )


async def portal_grants(session: AsyncSession, account_id: uuid.UUID) -> tuple[Grant, ...]:
    """What this account may use the portal for right now, one grant per membership whose
    contact has access, whose customer and tenant have the portal on, and whose tenant's
    plan includes it; each with the modules in effect there. One statement."""
    rows = await session.execute(
        sa.select(
            col(PortalMembership.tenant_id),
            col(Contact.customer_id),
            col(Contact.id),
            col(Contact.site_id),
            col(Tenant.default_modules),
            col(Customer.module_override),
            col(PortalMembership.module_override),
            col(Tenant.invoice_visibility),
        )
        .join(
            Contact,
            sa.and_(
                col(Contact.tenant_id) == col(PortalMembership.tenant_id),
                col(Contact.id) == col(PortalMembership.contact_id),
            ),
        )
        .join(
            Customer,
            sa.and_(
                col(Customer.tenant_id) == col(Contact.tenant_id),
                col(Customer.id) == col(Contact.customer_id),
            ),
        )
        .join(Tenant, col(Tenant.id) == col(PortalMembership.tenant_id))
        .where(
            col(PortalMembership.account_id) == account_id,
            col(Contact.portal_access).is_(True),
            col(Customer.portal_enabled).is_(True),
            col(Tenant.portal_enabled).is_(True),
            col(Tenant.plan).in_(PLANS_WITH_PORTAL),
        )
        .order_by(col(PortalMembership.tenant_id), col(Contact.customer_id), col(Contact.id))
    )
    return tuple(
        Grant(
            tenant_id=row[0],
            customer_id=row[1],
            contact_id=row[2],
            site_id=row[3],
            modules=effective_modules(row[4], customer=row[5], user=row[6]),
            shows_paid_invoices=row[7] is InvoiceVisibility.OUTSTANDING_AND_PAID,
        )
        for row in rows
    )


async def portal_tenants(session: AsyncSession, account_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The tenants where this account may use the portal right now."""
    return frozenset(grant.tenant_id for grant in await portal_grants(session, account_id))


async def portal_blocker(session: AsyncSession, account_id: uuid.UUID) -> AppError | None:
    """Why this account cannot use the portal anywhere, or None when it can somewhere."""
    if await portal_tenants(session, account_id):
        return None
    return await _refusal(session, account_id)


async def _refusal(session: AsyncSession, account_id: uuid.UUID) -> AppError:
    plans = set(
        await session.scalars(
            sa.select(col(Tenant.plan))
            .join(PortalMembership, col(PortalMembership.tenant_id) == col(Tenant.id))
            .where(col(PortalMembership.account_id) == account_id)
        )
    )
    if plans and not plans & PLANS_WITH_PORTAL:
        return AppError(
            "Your contractor's plan does not include the customer portal.",
            code=ErrorCode.PORTAL_NOT_IN_PLAN,
        )
    return AppError("Your portal access is switched off.", code=ErrorCode.PORTAL_DISABLED)
