"""Turns a request's credentials into a viewer, re-checking the account on every request.

A token is only the start: the user behind it is loaded again each time, so switching off
a staff user, a contact's portal access, a customer's or tenant's portal, or the plan,
takes effect on the very next request.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from starlette.requests import Request

from app.auth.tokens import AccessClaims, Audience, read_access_token
from app.auth.viewer import ANONYMOUS, PortalViewer, StaffViewer, Viewer
from app.db.models import Contact, Customer, PortalAccount, PortalMembership, StaffUser, Tenant
from app.db.models.tenants import PLANS_WITH_PORTAL
from app.db.scope import SYSTEM, Scope
from app.db.session import Database
from app.errors import Unauthenticated
from app.settings import Settings


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def resolve_viewer(
    request: Request, db: Database, settings: Settings, audience: Audience
) -> Viewer:
    """The viewer for this request. Credentials that are presented but not valid raise
    `Unauthenticated` rather than quietly falling back to anonymous."""
    token = bearer_token(request)
    if token is None:
        return ANONYMOUS
    claims = read_access_token(settings, token, audience=audience)
    if claims is None:
        raise Unauthenticated("The access token is not valid.")
    viewer = await (
        _staff_viewer(db, claims) if audience is Audience.STAFF else _portal_viewer(db, claims)
    )
    if viewer is None:
        raise Unauthenticated("The account behind this access token can no longer sign in.")
    return viewer


async def _staff_viewer(db: Database, claims: AccessClaims) -> StaffViewer | None:
    if claims.tenant_id is None:
        return None
    async with db.session(Scope.tenant(claims.tenant_id)) as session:
        user = await session.get(StaffUser, (claims.tenant_id, claims.subject))
    if user is None or not user.is_active:
        return None
    return StaffViewer(
        user_id=user.id, tenant_id=user.tenant_id, role=user.role, name=user.name, email=user.email
    )


async def _portal_viewer(db: Database, claims: AccessClaims) -> PortalViewer | None:
    async with db.session(SYSTEM) as session:
        account = await session.get(PortalAccount, claims.subject)
        if account is None or not account.is_active:
            return None
        tenant_ids = await portal_tenants(session, account.id)
    if not tenant_ids:
        return None
    return PortalViewer(
        account_id=account.id, name=account.name, email=account.email, tenant_ids=tenant_ids
    )


async def portal_tenants(session: AsyncSession, account_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The tenants where this account may use the portal right now: its contact has access,
    the customer and the tenant have the portal on, and the tenant's plan includes it."""
    rows = await session.execute(
        sa.select(col(PortalMembership.tenant_id))
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
    )
    return frozenset(rows.scalars())
