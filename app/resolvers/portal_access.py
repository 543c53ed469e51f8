"""Who at a customer may use the portal: the access switch on each contact, and the
invitation it sends."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.onetime import issue_token
from app.auth.sessions import revoke
from app.context import Context
from app.db.base import utcnow
from app.db.models import (
    AuditEntry,
    AuthSession,
    Contact,
    OneTimeToken,
    PortalMembership,
    PortalModule,
    Tenant,
    TokenPurpose,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.errors import AppError, ErrorCode, NotFound
from app.mail import enqueue_email
from app.messages.live import ACCESS_CHANGED, LiveEvents, announce
from app.resolvers.audit import audit_entry
from app.settings import Settings
from app.validation import normalised_email


async def _contact(session: AsyncSession, contact_id: uuid.UUID) -> Contact:
    contact = (
        await session.scalars(sa.select(Contact).where(col(Contact.id) == contact_id))
    ).first()
    if contact is None:
        raise NotFound("There is no such contact.", field="contactId")
    return contact


def _require_portal(tenant: Tenant) -> None:
    """An invitation to a portal the business cannot offer would only bounce at sign-in."""
    if not tenant.has_portal_plan:
        raise AppError(
            "The customer portal is not part of this business's plan.",
            code=ErrorCode.PORTAL_NOT_IN_PLAN,
        )
    if not tenant.portal_enabled:
        raise AppError(
            "The customer portal is switched off in the portal settings.",
            code=ErrorCode.PORTAL_DISABLED,
        )


def _require_email(contact: Contact) -> str:
    email = normalised_email(contact.email)
    if email is None:
        raise AppError(
            "This contact needs a valid email address before they can use the portal.",
            code=ErrorCode.EMAIL_REQUIRED,
            field="email",
        )
    return email


async def _membership(session: AsyncSession, contact: Contact) -> PortalMembership | None:
    return (
        await session.scalars(
            sa.select(PortalMembership).where(col(PortalMembership.contact_id) == contact.id)
        )
    ).first()


async def portal_user_of(session: AsyncSession, contact: Contact) -> PortalMembership:
    """The contact's portal user, written now if it has none: it holds the modules given
    before anyone signs up, and is linked to an account when an invitation is accepted."""
    membership = await _membership(session, contact)
    if membership is None:
        membership = PortalMembership(tenant_id=contact.tenant_id, contact_id=contact.id)
        session.add(membership)
    return membership


async def invite(
    session: AsyncSession,
    settings: Settings,
    contact: Contact,
    email: str,
    *,
    modules: list[str] | None = None,
    username: str | None = None,
    narrow: bool = False,
) -> PortalMembership:
    """Writes a fresh invitation (the earlier link stops working) and its email, and the
    contact's portal user, waiting for acceptance unless it has an account already. With
    `narrow`, the user is given `modules` (None: all its customer has) and `username`."""
    tenant = await session.get(Tenant, contact.tenant_id)
    assert tenant is not None
    _require_portal(tenant)
    membership = await portal_user_of(session, contact)
    if narrow:
        membership.module_override = modules
        membership.invited_username = username
    accept_url = f"{settings.portal_app_url}/{tenant.slug}/accept-invitation"
    secret, token = await issue_token(
        session,
        purpose=TokenPurpose.INVITATION,
        email=email,
        tenant_id=contact.tenant_id,
        contact_id=contact.id,
    )
    await enqueue_email(
        session,
        template="invitation",
        to=email,
        tenant=tenant,
        context={
            "contact_name": contact.name,
            "accept_url": f"{accept_url}?token={secret}",
            "expires_at": token.expires_at,
        },
        settings=settings,
    )
    return membership


def _audit(ctx: Context, contact: Contact, action: str, before: bool, after: bool) -> AuditEntry:
    return audit_entry(
        ctx.viewer,
        tenant_id=contact.tenant_id,
        action=action,
        subject_type="Contact",
        subject_id=contact.id,
        before={"portal_access": before},
        after={"portal_access": after},
    )


async def set_portal_access(ctx: Context, *, contact_id: uuid.UUID, enabled: bool) -> Contact:
    """Switching on invites the contact; switching off ends their portal sessions here at
    once (every request re-checks access) and voids any invitation still out."""
    async with ctx.db.transaction(ctx.scope) as session:
        contact = await _contact(session, contact_id)
        account_id = await switch_access(ctx, session, contact, enabled)
    if account_id is not None:
        await end_sessions_without_access(ctx.db, account_id, ctx.live)
    return contact


async def switch_access(
    ctx: Context, session: AsyncSession, contact: Contact, enabled: bool, *, forget: bool = False
) -> uuid.UUID | None:
    """Sets the contact's access in the caller's transaction; answers the account whose
    sessions to check once it commits. With `forget` the portal user goes too, modules and
    all, so access given again starts afresh."""
    if contact.portal_access == enabled and not forget:
        return None
    account_id: uuid.UUID | None = None
    was = contact.portal_access
    contact.portal_access = enabled
    if enabled:
        email = _require_email(contact)
        contact.email = email
        await invite(session, ctx.settings, contact, email)
    else:
        await session.execute(
            sa.update(OneTimeToken)
            .where(
                col(OneTimeToken.contact_id) == contact.id,
                col(OneTimeToken.tenant_id) == contact.tenant_id,
                col(OneTimeToken.used_at).is_(None),
                col(OneTimeToken.revoked_at).is_(None),
            )
            .values(revoked_at=utcnow())
        )
        membership = await _membership(session, contact)
        if membership is not None:
            account_id = membership.account_id
            if forget:
                await session.delete(membership)
    contact.updated_at = utcnow()
    if was != enabled:
        action = "portal_access.enabled" if enabled else "portal_access.disabled"
        session.add(_audit(ctx, contact, action, was, enabled))
    return account_id


async def end_sessions_without_access(
    db: Database, account_id: uuid.UUID, live: LiveEvents | None = None
) -> None:
    """An account left with access at no business at all has its sessions revoked outright,
    so they stay ended even if access comes back. Until then, and for an account still in
    use elsewhere, every request re-reads the viewer, so this business is gone at once."""
    from app.auth.resolve import portal_tenants

    async with db.transaction(SYSTEM) as session:
        if not await portal_tenants(session, account_id):
            await revoke(
                session, col(AuthSession.account_id) == account_id, reason="portal-access-off"
            )
    # Its live connections end now, not at their next check.
    await announce(live, db, ACCESS_CHANGED)


async def resend_invitation(ctx: Context, *, contact_id: uuid.UUID) -> Contact:
    async with ctx.db.transaction(ctx.scope) as session:
        contact = await _contact(session, contact_id)
        if not contact.portal_access:
            raise AppError(
                "Switch portal access on for this contact first.",
                code=ErrorCode.INVALID_INPUT,
                field="contactId",
            )
        await invite(session, ctx.settings, contact, _require_email(contact))
        session.add(_audit(ctx, contact, "portal_access.invitation_resent", True, True))
    return contact


async def set_contact_modules(
    ctx: Context, *, contact_id: uuid.UUID, modules: Collection[PortalModule] | None
) -> Contact:
    """Narrows what the contact may use in the portal to `modules` (None: all its customer
    has), from its next request on, whether it has signed up yet or not."""
    stored = [m.value for m in PortalModule if m in modules] if modules is not None else None
    async with ctx.db.transaction(ctx.scope) as session:
        contact = await _contact(session, contact_id)
        membership = await portal_user_of(session, contact)
        before = membership.module_override
        if before != stored:
            membership.module_override = stored
            session.add(
                audit_entry(
                    ctx.viewer,
                    tenant_id=contact.tenant_id,
                    action="portal_user.modules_changed",
                    subject_type="Contact",
                    subject_id=contact.id,
                    before={"modules": before},
                    after={"modules": stored},
                )
            )
    return contact
