"""Turns a request's credentials into a viewer, re-checking the account on every request.

Credentials are only the start: the session and the user behind it are loaded again each
time, so a sign-out, a password reset, or switching off a staff user, a contact's portal
access, a customer's or tenant's portal, or the plan, takes effect on the very next
request, not at the next sign-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
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
    Plan,
    PortalAccount,
    PortalMembership,
    SessionAudience,
    StaffUser,
    Tenant,
)
from app.db.models.tenants import PLANS_WITH_PORTAL
from app.db.reach import Grant, effective_modules
from app.db.scope import SYSTEM
from app.db.session import ConnectionDropped, Database, connection_dropped
from app.errors import AppError, DatabaseUnavailable, ErrorCode, Unauthenticated
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
    """The viewer for this request, in one statement. A bearer token that is presented but
    not valid raises `Unauthenticated`; a stale cookie is simply no sign-in, so the browser
    can sign in again. A connection the database had dropped raises `DatabaseUnavailable`."""
    viewer, _ = await sign_in_of(
        db,
        settings,
        audience,
        token=bearer_token(request),
        cookie=session_cookie(request, audience),
    )
    return viewer


@dataclass(frozen=True, slots=True)
class SignIn:
    """How a long-lived connection signed in, to read its viewer again later."""

    audience: Audience
    by_token: bool
    key: uuid.UUID | str


async def sign_in_of(
    db: Database,
    settings: Settings,
    audience: Audience,
    *,
    token: str | None,
    cookie: str | None,
) -> tuple[Viewer, SignIn | None]:
    """The viewer and how to read it again (`viewer_again`), whatever the token's life."""
    if token is None and cookie is None:
        return ANONYMOUS, None
    if token is not None:
        claims = read_access_token(settings, token, audience=audience)
        if claims is None:
            raise Unauthenticated("The access token is not valid.")
        sign_in = SignIn(audience, True, claims.session_id)
    else:
        assert cookie is not None
        claims = None
        sign_in = SignIn(audience, False, hash_secret(cookie))
    viewer = await viewer_again(db, sign_in)
    if viewer is ANONYMOUS or (claims is not None and claims.subject != _subject(viewer)):
        if token is not None:
            raise Unauthenticated("The access token is not valid any more. Sign in again.")
        return ANONYMOUS, None
    return viewer, sign_in


async def viewer_again(db: Database, sign_in: SignIn) -> Viewer:
    """The viewer of a session as it stands now: anonymous once it is signed out, revoked
    or expired, or its user is; with the grants in effect now. One statement."""
    audience = sign_in.audience
    statements = _STAFF_VIEWER if audience is Audience.STAFF else _PORTAL_VIEWER
    statement = statements.by_token if sign_in.by_token else statements.by_cookie
    try:
        rows = await db.fetch(SYSTEM, statement, {"key": sign_in.key, "now": utcnow()})
    except (DBAPIError, ConnectionDropped) as error:
        if connection_dropped(error):
            # Nothing has run yet: the request may start again on a live connection.
            raise DatabaseUnavailable(retry_safe=True) from error
        raise
    viewer = _staff_viewer(rows) if audience is Audience.STAFF else _portal_viewer(rows)
    return ANONYMOUS if viewer is None else viewer


def _subject(viewer: Viewer) -> uuid.UUID | None:
    if isinstance(viewer, StaffViewer):
        return viewer.user_id
    if isinstance(viewer, PortalViewer):
        return viewer.account_id
    return None


# Every statement here is built once, at import, with its values as bound parameters: a
# request only binds its session key and the time, and SQLAlchemy's compiled cache hits.


@dataclass(frozen=True, slots=True)
class _ViewerStatements:
    by_token: sa.Select[Any]
    by_cookie: sa.Select[Any]


def _viewer_statements(
    statement: Callable[[sa.ColumnElement[bool]], sa.Select[Any]],
) -> _ViewerStatements:
    return _ViewerStatements(
        by_token=statement(col(AuthSession.id) == sa.bindparam("key")),
        by_cookie=statement(col(AuthSession.cookie_hash) == sa.bindparam("key")),
    )


def _active(
    which: sa.ColumnElement[bool], audience: SessionAudience
) -> list[sa.ColumnElement[bool]]:
    return [
        which,
        col(AuthSession.audience) == audience,
        col(AuthSession.revoked_at).is_(None),
        col(AuthSession.expires_at) > sa.bindparam("now"),
    ]


def _staff_statement(which: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The session and its staff user, both still in good standing."""
    return (
        sa.select(
            col(AuthSession.id),
            col(StaffUser.id),
            col(StaffUser.tenant_id),
            col(StaffUser.role),
            col(StaffUser.name),
            col(StaffUser.email),
        )
        .select_from(AuthSession)
        .join(
            StaffUser,
            sa.and_(
                col(StaffUser.tenant_id) == col(AuthSession.tenant_id),
                col(StaffUser.id) == col(AuthSession.staff_user_id),
            ),
        )
        .where(*_active(which, SessionAudience.STAFF), col(StaffUser.is_active).is_(True))
    )


_STAFF_VIEWER = _viewer_statements(_staff_statement)


def _staff_viewer(rows: Sequence[Sequence[Any]]) -> StaffViewer | None:
    if not rows:
        return None
    session_id, user_id, tenant_id, role, name, email = rows[0]
    return StaffViewer(
        session_id=session_id,
        user_id=user_id,
        tenant_id=tenant_id,
        role=role,
        name=name,
        email=email,
    )


# What each membership of an account decides, whether or not it grants anything: the values
# of its grant, and the switches and plan that decide whether there is one. Selected as
# columns rather than filtered, so the reason for no grant at all comes from the same rows.
_MEMBERSHIP = (
    col(PortalMembership.tenant_id),
    col(Contact.customer_id),
    col(Contact.id),
    col(Contact.site_id),
    col(Tenant.default_modules),
    col(Customer.module_override),
    col(PortalMembership.module_override),
    col(Tenant.invoice_visibility),
    col(Contact.portal_access),
    col(Customer.portal_enabled),
    col(Tenant.portal_enabled),
    col(Tenant.plan),
)


def _with_memberships(statement: sa.Select[Any], *, isouter: bool) -> sa.Select[Any]:
    """`statement`, already joined to `PortalMembership`, joined on to the contact, customer
    and tenant of each membership, in the order grants are kept."""
    return (
        statement.join(
            Contact,
            sa.and_(
                col(Contact.tenant_id) == col(PortalMembership.tenant_id),
                col(Contact.id) == col(PortalMembership.contact_id),
            ),
            isouter=isouter,
        )
        .join(
            Customer,
            sa.and_(
                col(Customer.tenant_id) == col(Contact.tenant_id),
                col(Customer.id) == col(Contact.customer_id),
            ),
            isouter=isouter,
        )
        .join(Tenant, col(Tenant.id) == col(PortalMembership.tenant_id), isouter=isouter)
        .order_by(col(PortalMembership.tenant_id), col(Contact.customer_id), col(Contact.id))
    )


def _portal_statement(which: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The session and its account, both still in good standing, once per membership of the
    account (once with no membership columns when it has none)."""
    return _with_memberships(
        sa.select(
            col(AuthSession.id),
            col(PortalAccount.id),
            col(PortalAccount.name),
            col(PortalAccount.email),
            col(PortalAccount.username),
            *_MEMBERSHIP,
        )
        .select_from(AuthSession)
        .join(PortalAccount, col(PortalAccount.id) == col(AuthSession.account_id))
        .join(
            PortalMembership,
            col(PortalMembership.account_id) == col(PortalAccount.id),
            isouter=True,
        )
        .where(*_active(which, SessionAudience.PORTAL), col(PortalAccount.is_active).is_(True)),
        isouter=True,
    )


_PORTAL_VIEWER = _viewer_statements(_portal_statement)

_MEMBERSHIPS = _with_memberships(
    sa.select(*_MEMBERSHIP)
    .select_from(PortalMembership)
    .where(col(PortalMembership.account_id) == sa.bindparam("account_id")),
    isouter=False,
)


def _portal_viewer(rows: Sequence[Sequence[Any]]) -> PortalViewer | None:
    if not rows:
        return None
    session_id, account_id, name, email, username = rows[0][:5]
    grants, refusal = _standing([row[5:] for row in rows])
    return PortalViewer(
        session_id=session_id,
        account_id=account_id,
        name=name,
        email=email,
        username=username,
        grants=grants,
        # Signed in, but with nothing to use: every portal field says why, with a stable code.
        refusal=refusal.code if refusal is not None else None,
    )


def _standing(
    memberships: Iterable[Sequence[Any]],
) -> tuple[tuple[Grant, ...], AppError | None]:
    """The grants of an account's memberships (`_MEMBERSHIP` rows), one per membership
    whose contact has access, whose customer and tenant have the portal on, and whose
    tenant's plan includes it, each with the modules in effect there; and, when there is
    none, why not."""
    grants: list[Grant] = []
    plans: set[Plan] = set()
    for (
        tenant_id,
        customer_id,
        contact_id,
        site_id,
        default_modules,
        customer_modules,
        user_modules,
        invoice_visibility,
        contact_has_access,
        customer_portal_on,
        tenant_portal_on,
        plan,
    ) in memberships:
        if tenant_id is None:
            # The outer join's one row for an account without memberships.
            continue
        plans.add(plan)
        if (
            contact_has_access
            and customer_portal_on
            and tenant_portal_on
            and plan in PLANS_WITH_PORTAL
        ):
            grants.append(
                Grant(
                    tenant_id=tenant_id,
                    customer_id=customer_id,
                    contact_id=contact_id,
                    site_id=site_id,
                    modules=effective_modules(
                        default_modules, customer=customer_modules, user=user_modules
                    ),
                    shows_paid_invoices=invoice_visibility
                    is InvoiceVisibility.OUTSTANDING_AND_PAID,
                )
            )
    if grants:
        return tuple(grants), None
    if plans and not plans & PLANS_WITH_PORTAL:
        return (), AppError(
            "Your contractor's plan does not include the customer portal.",
            code=ErrorCode.PORTAL_NOT_IN_PLAN,
        )
    return (), AppError("Your portal access is switched off.", code=ErrorCode.PORTAL_DISABLED)


async def _memberships(session: AsyncSession, account_id: uuid.UUID) -> Sequence[sa.Row[Any]]:
    return (await session.execute(_MEMBERSHIPS, {"account_id": account_id})).all()


async def portal_grants(session: AsyncSession, account_id: uuid.UUID) -> tuple[Grant, ...]:
    """What this account may use the portal for right now (see `_standing`), from the same
    joins the viewer is read with. One statement."""
    grants, _ = _standing(await _memberships(session, account_id))
    return grants


async def portal_tenants(session: AsyncSession, account_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The tenants where this account may use the portal right now."""
    return frozenset(grant.tenant_id for grant in await portal_grants(session, account_id))


async def portal_blocker(session: AsyncSession, account_id: uuid.UUID) -> AppError | None:
    """Why this account cannot use the portal anywhere, or None when it can somewhere. One
    statement."""
    _, refusal = _standing(await _memberships(session, account_id))
    return refusal
