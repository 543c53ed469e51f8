"""A customer's own people, managed from the portal by users with the USERS module: its
contacts (E11) and who of them may sign in, with which modules (E12).

These are the rows staff see: a contact added here is a contact of the customer's in the
office too, and every change is in the audit trail with the portal user who made it. A
company contact manages the whole customer's people, a site contact those at its own site;
the data layer keeps the others out of reach, so they are not found. Nobody gives anyone
more modules than they have themselves, nobody changes their own access, and nobody sets
anyone's password: a new user is invited by email and chooses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.viewer import PortalViewer
from app.context import Context
from app.db.models import (
    Contact,
    ContactKind,
    Customer,
    PortalAccount,
    PortalMembership,
    PortalModule,
    ServiceRequest,
    Site,
    Tenant,
)
from app.db.reach import Grant, effective_modules
from app.db.scope import SYSTEM
from app.errors import AppError, ErrorCode, NotFound
from app.resolvers import customers
from app.resolvers.audit import audit_entry
from app.resolvers.customers import contact_values, row_of
from app.resolvers.pagination import Page, tenant_page
from app.resolvers.portal_access import end_sessions_without_access, invite, switch_access
from app.validation import checked_email, checked_text

USERS = PortalModule.USERS


def _viewer(ctx: Context) -> PortalViewer:
    viewer = ctx.viewer
    assert isinstance(viewer, PortalViewer), "guarded by RequiresModule(USERS)"
    return viewer


def _managing(viewer: PortalViewer, place: Contact | Site) -> Grant:
    """The viewer's grant with USERS that covers this contact, or a contact at this site:
    the company's, or that site's own."""
    site_id = place.id if isinstance(place, Site) else place.site_id
    grant = next(
        (
            grant
            for grant in viewer.grants
            if USERS in grant.modules
            and grant.tenant_id == place.tenant_id
            and grant.customer_id == place.customer_id
            and (grant.is_company or grant.site_id == site_id)
        ),
        None,
    )
    if grant is None:
        raise AppError(
            "Your portal access does not include managing this company's people.",
            code=ErrorCode.MODULE_FORBIDDEN,
        )
    return grant


def _not_yourself(viewer: PortalViewer, contact: Contact) -> None:
    if any(grant.contact_id == contact.id for grant in viewer.grants):
        raise AppError(
            "You cannot change your own access; ask another of your company's users.",
            code=ErrorCode.SELF_CHANGE_FORBIDDEN,
            field="id",
        )


def _within(grant: Grant, modules: Collection[PortalModule]) -> list[str]:
    """The modules asked for, stored in the ladder's order, if the giver has them all."""
    wider = set(modules) - grant.modules
    if wider:
        names = ", ".join(sorted(module.value for module in wider))
        raise AppError(
            f"You cannot give access you do not have yourself: {names}.",
            code=ErrorCode.MODULES_TOO_WIDE,
            field="modules",
        )
    return [module.value for module in PortalModule if module in modules]


async def _placed(
    ctx: Context, session: AsyncSession, *, customer_id: uuid.UUID | None, site_id: uuid.UUID | None
) -> tuple[Grant, uuid.UUID, Site | None]:
    """Where a new contact goes (a customer, and a site for a site contact) and the viewer's
    grant to put it there."""
    viewer = _viewer(ctx)
    if site_id is not None:
        site = (await session.scalars(sa.select(Site).where(col(Site.id) == site_id))).first()
        if site is None or (customer_id is not None and site.customer_id != customer_id):
            raise NotFound("There is no such site.", field="siteId")
        return _managing(viewer, site), site.customer_id, site
    grants = [
        grant
        for grant in viewer.grants
        if USERS in grant.modules and (customer_id is None or grant.customer_id == customer_id)
    ]
    if customer_id is not None and not any(g.customer_id == customer_id for g in viewer.grants):
        raise NotFound("There is no such customer.", field="customerId")
    company = [grant for grant in grants if grant.is_company]
    if grants and not company:
        raise AppError(
            "Only company contacts may add company contacts; add one at your site instead.",
            code=ErrorCode.CONTACT_FORBIDDEN,
            field="siteId",
        )
    if not grants:
        raise AppError(
            "Your portal access does not include managing this company's people.",
            code=ErrorCode.MODULE_FORBIDDEN,
        )
    if len({grant.customer_id for grant in company}) > 1:
        raise AppError(
            "Say which of your companies this is for.",
            code=ErrorCode.INVALID_INPUT,
            field="customerId",
        )
    return company[0], company[0].customer_id, None


def _contact_at(grant: Grant, customer_id: uuid.UUID, site: Site | None, **values: Any) -> Contact:
    """A new contact of the customer: at the site for a site contact, else the company's."""
    return Contact(
        tenant_id=grant.tenant_id,
        customer_id=customer_id,
        site_id=site.id if site is not None else None,
        kind=ContactKind.SITE if site is not None else ContactKind.COMPANY,
        **values,
    )


def _audit(
    ctx: Context,
    row: Contact | PortalMembership,
    action: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> Any:
    return audit_entry(
        ctx.viewer,
        tenant_id=row.tenant_id,
        action=action,
        subject_type="Contact",
        subject_id=row.id if isinstance(row, Contact) else row.contact_id,
        before=before,
        after=after,
    )


async def contacts_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[Contact]:
    """The contacts the viewer may manage, by name."""
    viewer = _viewer(ctx)
    managed = [
        sa.and_(
            col(Contact.tenant_id) == grant.tenant_id,
            col(Contact.customer_id) == grant.customer_id,
            sa.true() if grant.is_company else col(Contact.site_id) == grant.site_id,
        )
        for grant in viewer.grants
        if USERS in grant.modules
    ]
    return await tenant_page(
        ctx,
        Contact,
        sort=col(Contact.name),
        first=first,
        after=after,
        contractor=contractor,
        where=[sa.or_(sa.false(), *managed)],
        descending=False,
        loader=ctx.loaders.contact_by_id,
    )


async def users_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[PortalMembership]:
    """The users at the viewer's customers, invited or signed up, newest first."""
    with_access = (
        sa.select(col(Contact.id))
        .where(
            col(Contact.tenant_id) == col(PortalMembership.tenant_id),
            col(Contact.id) == col(PortalMembership.contact_id),
            col(Contact.portal_access).is_(True),
        )
        .exists()
    )
    return await tenant_page(
        ctx,
        PortalMembership,
        sort=col(PortalMembership.created_at),
        first=first,
        after=after,
        contractor=contractor,
        where=[with_access],
        loader=ctx.loaders.portal_membership_by_id,
    )


async def add_contact(
    ctx: Context,
    *,
    customer_id: uuid.UUID | None,
    site_id: uuid.UUID | None,
    values: Mapping[str, Any],
    portal_access: bool,
) -> Contact:
    """A new company contact, or site contact with `site_id`; with `portal_access`, invited."""
    checked = contact_values(values)
    async with ctx.db.transaction(ctx.scope) as session:
        grant, customer, site = await _placed(
            ctx, session, customer_id=customer_id, site_id=site_id
        )
        contact = _contact_at(grant, customer, site, **checked)
        session.add(contact)
        created = {**checked, "kind": contact.kind}
        session.add(_audit(ctx, contact, "contact.created", None, created))
        await session.flush()
        if portal_access:
            await switch_access(ctx, session, contact, True)
    ctx.loaders.contact_by_id.prime(contact.id, contact)
    return contact


async def update_contact(
    ctx: Context, *, contact_id: uuid.UUID, values: Mapping[str, Any]
) -> Contact:
    viewer = _viewer(ctx)
    contact = await customers.update_contact(
        ctx,
        contact_id=contact_id,
        values=values,
        may_change=lambda contact: _managing(viewer, contact),
    )
    ctx.loaders.contact_by_id.prime(contact.id, contact)
    return contact


async def delete_contact(ctx: Context, *, contact_id: uuid.UUID) -> uuid.UUID:
    """Deletes the contact for the office too. Its requests stay, under the name they were
    sent with; its portal user goes, and its sessions end if it has access nowhere else."""
    viewer = _viewer(ctx)
    async with ctx.db.transaction(ctx.scope) as session:
        contact = await row_of(session, Contact, contact_id, field="id")
        _managing(viewer, contact)
        _not_yourself(viewer, contact)
        # Its portal user goes with it (the foreign key cascades).
        account_id = await switch_access(ctx, session, contact, False)
        # Every request it sent, whatever modules the deleter has: the link goes, the request
        # and the name on it stay. Core, so the viewer's reach does not narrow it; the
        # contact was reached above, and the tenant and contact pin it.
        requests: sa.Table = ServiceRequest.__table__  # type: ignore[attr-defined]
        await session.execute(
            requests.update()
            .where(
                requests.c.tenant_id == contact.tenant_id,
                requests.c.contact_id == contact.id,
            )
            .values(
                contact_id=None,
                contact_name=sa.func.coalesce(requests.c.contact_name, contact.name),
            )
        )
        session.add(
            _audit(
                ctx,
                contact,
                "contact.deleted",
                {"name": contact.name, "email": contact.email, "kind": contact.kind},
                None,
            )
        )
        await session.delete(contact)
    if account_id is not None:
        await end_sessions_without_access(ctx.db, account_id, ctx.live)
    return contact.id


async def set_contact_access(ctx: Context, *, contact_id: uuid.UUID, enabled: bool) -> Contact:
    viewer = _viewer(ctx)
    async with ctx.db.transaction(ctx.scope) as session:
        contact = await row_of(session, Contact, contact_id, field="id")
        _managing(viewer, contact)
        _not_yourself(viewer, contact)
        account_id = await switch_access(ctx, session, contact, enabled)
    if account_id is not None:
        await end_sessions_without_access(ctx.db, account_id, ctx.live)
    ctx.loaders.contact_by_id.prime(contact.id, contact)
    return contact


async def _unclaimed(
    ctx: Context, *, tenant_id: uuid.UUID, customer_id: uuid.UUID, email: str, username: str | None
) -> None:
    """A new user's email may not already sign in for this company, nor its username belong
    to anyone else. Both are read across the business and every account: a site contact
    cannot see its company's other users, nor anyone else's account, but the clash is real.
    The answer tells no more than accepting an invitation with that username would."""
    async with ctx.db.session(SYSTEM) as session:
        already = await session.scalar(
            sa.select(col(Contact.id)).where(
                col(Contact.tenant_id) == tenant_id,
                col(Contact.customer_id) == customer_id,
                col(Contact.email) == email,
                col(Contact.portal_access).is_(True),
            )
        )
        holder = (
            await session.scalar(
                sa.select(col(PortalAccount.email)).where(col(PortalAccount.username) == username)
            )
            if username is not None
            else None
        )
    if already is not None:
        raise AppError(
            "Someone with this email address can already sign in for this company.",
            code=ErrorCode.ALREADY_A_USER,
            field="email",
        )
    if holder is not None and holder != email:
        raise AppError("This username is taken.", code=ErrorCode.USERNAME_TAKEN, field="username")


async def add_user(
    ctx: Context,
    *,
    customer_id: uuid.UUID | None,
    site_id: uuid.UUID | None,
    name: str,
    email: str,
    username: str | None,
    modules: Collection[PortalModule],
) -> PortalMembership:
    """A new contact with portal access and the modules given, invited by email."""
    address = checked_email(email)
    if address is None:
        raise AppError(
            "A portal user needs an email address.", code=ErrorCode.EMAIL_REQUIRED, field="email"
        )
    login = (username or "").strip().lower() or None
    if login is not None:
        login = checked_text(login, field="username", max_length=64)
    async with ctx.db.transaction(ctx.scope) as session:
        grant, customer, site = await _placed(
            ctx, session, customer_id=customer_id, site_id=site_id
        )
        stored = _within(grant, modules)
        await _unclaimed(
            ctx, tenant_id=grant.tenant_id, customer_id=customer, email=address, username=login
        )
        values = contact_values({"name": name})
        contact = _contact_at(grant, customer, site, email=address, portal_access=True, **values)
        session.add(contact)
        await session.flush()
        membership = await invite(
            session, ctx.settings, contact, address, modules=stored, username=login, narrow=True
        )
        session.add(
            _audit(
                ctx,
                contact,
                "portal_user.added",
                None,
                {"name": contact.name, "email": address, "kind": contact.kind, "modules": stored},
            )
        )
    ctx.loaders.contact_by_id.prime(contact.id, contact)
    ctx.loaders.portal_membership_by_id.prime(membership.id, membership)
    return membership


async def _user(
    ctx: Context, session: AsyncSession, membership_id: uuid.UUID
) -> tuple[PortalMembership, Contact, Grant]:
    """A user the viewer may manage, other than the viewer, with the viewer's grant there."""
    viewer = _viewer(ctx)
    membership = await row_of(session, PortalMembership, membership_id, field="id")
    contact = await row_of(session, Contact, membership.contact_id, field="id")
    if not contact.portal_access:
        raise NotFound("There is no such portal user.", field="id")
    grant = _managing(viewer, contact)
    _not_yourself(viewer, contact)
    return membership, contact, grant


async def _modules_now(
    session: AsyncSession, membership: PortalMembership, contact: Contact
) -> frozenset[PortalModule]:
    """What the user may use now: the business's defaults, the customer's, the user's."""
    row = (
        await session.execute(
            sa.select(col(Tenant.default_modules), col(Customer.module_override))
            .join(Customer, col(Customer.tenant_id) == col(Tenant.id))
            .where(col(Tenant.id) == contact.tenant_id, col(Customer.id) == contact.customer_id)
        )
    ).one()
    return effective_modules(row[0], customer=row[1], user=membership.module_override)


async def set_user_modules(
    ctx: Context, *, membership_id: uuid.UUID, modules: Collection[PortalModule]
) -> PortalMembership:
    """Gives the user exactly these modules (within what the customer has); it takes effect
    on the user's next request. Neither the new set nor the user's present one may reach
    past the changer's own."""
    async with ctx.db.transaction(ctx.scope) as session:
        membership, contact, grant = await _user(ctx, session, membership_id)
        _within(grant, await _modules_now(session, membership, contact))
        stored = _within(grant, modules)
        before = membership.module_override
        if before != stored:
            membership.module_override = stored
            session.add(
                _audit(
                    ctx,
                    membership,
                    "portal_user.modules_changed",
                    {"modules": before},
                    {"modules": stored},
                )
            )
    ctx.loaders.portal_membership_by_id.prime(membership.id, membership)
    return membership


async def remove_user(ctx: Context, *, membership_id: uuid.UUID) -> uuid.UUID:
    """The user can no longer sign in for this company: access off, the user and any
    invitation gone, sessions ended. The contact stays."""
    async with ctx.db.transaction(ctx.scope) as session:
        membership, contact, _grant = await _user(ctx, session, membership_id)
        account_id = await switch_access(ctx, session, contact, False, forget=True)
        session.add(
            _audit(
                ctx,
                membership,
                "portal_user.removed",
                {"modules": membership.module_override},
                None,
            )
        )
    if account_id is not None:
        await end_sessions_without_access(ctx.db, account_id, ctx.live)
    return membership.id


async def resend_user_invitation(ctx: Context, *, membership_id: uuid.UUID) -> PortalMembership:
    async with ctx.db.transaction(ctx.scope) as session:
        membership, contact, _grant = await _user(ctx, session, membership_id)
        if membership.account_id is not None:
            raise AppError(
                "This user has accepted their invitation already.",
                code=ErrorCode.USER_ALREADY_ACTIVE,
                field="id",
            )
        assert contact.email is not None, "a contact with portal access has an email address"
        await invite(session, ctx.settings, contact, contact.email)
        session.add(_audit(ctx, membership, "portal_access.invitation_resent", None, None))
    return membership
