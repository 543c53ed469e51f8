"""Customers, their sites and their contacts: reading them, and staff creating and
changing them (S2). Every change is recorded in the audit trail, so staff see who changed a
record last, the office or the customer from the portal."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.viewer import StaffViewer
from app.context import Context
from app.db.base import TenantOwned, utcnow
from app.db.models import Contact, ContactKind, Customer, Site, Tenant
from app.errors import AppError, ErrorCode, NotFound
from app.resolvers.audit import audit_entry, changes
from app.resolvers.pagination import Page, keyset_page
from app.validation import (
    checked_email,
    checked_phone,
    checked_text,
    identifier_from,
    optional_text,
)

M = TypeVar("M", bound=TenantOwned)


async def customers_page(ctx: Context, *, first: int | None, after: str | None) -> Page[Customer]:
    async with ctx.db.session(ctx.scope) as session:
        page = await keyset_page(
            session,
            sa.select(Customer),
            sort=col(Customer.name),
            row_id=col(Customer.id),
            first=first,
            after=after,
        )
    ctx.loaders.customer_by_id.prime_many({row.id: row for row in page.rows})
    return page


class ShownPortalStatus(enum.StrEnum):
    AVAILABLE = "AVAILABLE"
    NOT_IN_PLAN = "NOT_IN_PLAN"
    BUSINESS_PORTAL_OFF = "BUSINESS_PORTAL_OFF"
    CUSTOMER_PORTAL_OFF = "CUSTOMER_PORTAL_OFF"


def portal_status(tenant: Tenant, customer: Customer) -> ShownPortalStatus:
    """What stops this customer's portal users, the plan first: it is the one staff cannot
    switch back on themselves."""
    if not tenant.has_portal_plan:
        return ShownPortalStatus.NOT_IN_PLAN
    if not tenant.portal_enabled:
        return ShownPortalStatus.BUSINESS_PORTAL_OFF
    if not customer.portal_enabled:
        return ShownPortalStatus.CUSTOMER_PORTAL_OFF
    return ShownPortalStatus.AVAILABLE


def staff_tenant(ctx: Context) -> uuid.UUID:
    """The tenant of the staff user asking; the field's role guard has made sure it is one."""
    viewer = ctx.viewer
    assert isinstance(viewer, StaffViewer)
    return viewer.tenant_id


async def row_of(session: AsyncSession, model: type[M], row_id: uuid.UUID, *, field: str) -> M:
    """A row of the viewer's tenant, locked for the change (SQLite locks the whole database
    for the write transaction instead); any other is not found."""
    row = (
        await session.scalars(sa.select(model).where(col(model.id) == row_id).with_for_update())
    ).first()
    if row is None:
        raise NotFound(f"There is no such {model.__name__.lower()}.", field=field)
    return row


# What each form field may hold, checked the same way on create and update.
_SITE_TEXT = {"name": 200, "address_line1": 200}
_SITE_OPTIONAL = {
    "site_number": 32,
    "address_line2": 200,
    "town": 100,
    "postcode": 16,
    "uprn": 12,
}
_CAMEL = {
    "address_line1": "addressLine1",
    "address_line2": "addressLine2",
    "site_number": "siteNumber",
    "is_company_site": "isCompanySite",
}


def _site_values(values: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in values.items():
        field = _CAMEL.get(name, name)
        if name in _SITE_TEXT:
            checked[name] = checked_text(value, field=field, max_length=_SITE_TEXT[name])
        elif name in _SITE_OPTIONAL:
            checked[name] = optional_text(value, field=field, max_length=_SITE_OPTIONAL[name])
        elif name == "is_company_site":
            checked[name] = bool(value)
        else:
            raise ValueError(f"a site has no field {name}")
    if checked.get("uprn") is not None and not checked["uprn"].isdigit():
        raise AppError("A UPRN is up to 12 digits.", field="uprn")
    return checked


def contact_values(values: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name == "name":
            checked[name] = checked_text(value, field="name", max_length=200)
        elif name == "email":
            checked[name] = checked_email(value)
        elif name == "phone":
            checked[name] = checked_phone(value)
        else:
            raise ValueError(f"a contact has no field {name}")
    return checked


async def _free_identifier(session: AsyncSession, name: str) -> str:
    """A portal identifier made from the name, numbered when the plain one is taken."""
    base = identifier_from(name)
    taken = set(
        await session.scalars(
            sa.select(col(Customer.portal_identifier)).where(
                col(Customer.portal_identifier).startswith(base, autoescape=True)
            )
        )
    )
    number = 1
    identifier = base
    while identifier in taken:
        number += 1
        identifier = f"{base}-{number}"
    return identifier


# The site every customer starts with, standing for the customer's own premises.
COMPANY_SITE_NAME = "Company Site"


def company_site(customer: Customer, address: Mapping[str, Any]) -> Site:
    """The customer's company site, at `address` (checked site values) or, without one, at
    no address yet."""
    return Site(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        name=COMPANY_SITE_NAME,
        is_company_site=True,
        **{"address_line1": "", **address},
    )


async def create_customer(
    ctx: Context, *, name: str, address: Mapping[str, Any] | None = None
) -> Customer:
    """A customer and its company site, together."""
    tenant_id = staff_tenant(ctx)
    name = checked_text(name, field="name", max_length=200)
    checked_address = _site_values(address or {})
    async with ctx.db.transaction(ctx.scope) as session:
        # One customer added at a time per business, so two of one name cannot both take
        # the same free identifier. NO KEY UPDATE leaves the business's other inserts free.
        await session.execute(
            sa.select(col(Tenant.id))
            .where(col(Tenant.id) == tenant_id)
            .with_for_update(key_share=True)
        )
        customer = Customer(
            tenant_id=tenant_id, name=name, portal_identifier=await _free_identifier(session, name)
        )
        session.add(customer)
        await session.flush()
        site = company_site(customer, checked_address)
        session.add(site)
        session.add(
            audit_entry(
                ctx.viewer,
                tenant_id=tenant_id,
                action="customer.created",
                subject_type="Customer",
                subject_id=customer.id,
                before=None,
                after={
                    "name": name,
                    "portal_identifier": customer.portal_identifier,
                    "company_site_id": site.id,
                    **checked_address,
                },
            )
        )
    return customer


async def update_customer(
    ctx: Context, *, customer_id: uuid.UUID, values: Mapping[str, Any]
) -> Customer:
    values = {
        name: checked_text(value, field=name, max_length=200) for name, value in values.items()
    }
    async with ctx.db.transaction(ctx.scope) as session:
        customer = await row_of(session, Customer, customer_id, field="id")
        apply_change(ctx, session, customer, "customer.updated", values)
    return customer


def apply_change(
    ctx: Context, session: AsyncSession, row: Customer | Site | Contact, action: str, values: Any
) -> None:
    """Applies `values` to `row` and records what changed; a change to nothing is no change."""
    before, after = changes(row, values)
    if not after:
        return
    row.updated_at = utcnow()
    session.add(
        audit_entry(
            ctx.viewer,
            tenant_id=row.tenant_id,
            action=action,
            subject_type=type(row).__name__,
            subject_id=row.id,
            before=before,
            after=after,
        )
    )


async def create_site(ctx: Context, *, customer_id: uuid.UUID, values: Mapping[str, Any]) -> Site:
    checked = _site_values(values)
    async with ctx.db.transaction(ctx.scope) as session:
        customer = await row_of(session, Customer, customer_id, field="customerId")
        site = Site(tenant_id=customer.tenant_id, customer_id=customer.id, **checked)
        session.add(site)
        session.add(
            audit_entry(
                ctx.viewer,
                tenant_id=site.tenant_id,
                action="site.created",
                subject_type="Site",
                subject_id=site.id,
                before=None,
                after=checked,
            )
        )
    return site


async def update_site(ctx: Context, *, site_id: uuid.UUID, values: Mapping[str, Any]) -> Site:
    checked = _site_values(values)
    async with ctx.db.transaction(ctx.scope) as session:
        site = await row_of(session, Site, site_id, field="id")
        apply_change(ctx, session, site, "site.updated", checked)
    return site


async def create_contact(
    ctx: Context,
    *,
    customer_id: uuid.UUID,
    site_id: uuid.UUID | None,
    values: Mapping[str, Any],
) -> Contact:
    """A company contact, or with `site_id` a contact at one of the customer's sites."""
    checked = contact_values(values)
    async with ctx.db.transaction(ctx.scope) as session:
        customer = await row_of(session, Customer, customer_id, field="customerId")
        if site_id is not None:
            site = await row_of(session, Site, site_id, field="siteId")
            if site.customer_id != customer.id:
                raise NotFound("There is no such site at this customer.", field="siteId")
        contact = Contact(
            tenant_id=customer.tenant_id,
            customer_id=customer.id,
            site_id=site_id,
            kind=ContactKind.COMPANY if site_id is None else ContactKind.SITE,
            **checked,
        )
        session.add(contact)
        session.add(
            audit_entry(
                ctx.viewer,
                tenant_id=contact.tenant_id,
                action="contact.created",
                subject_type="Contact",
                subject_id=contact.id,
                before=None,
                after={**checked, "kind": contact.kind},
            )
        )
    return contact


async def update_contact(
    ctx: Context,
    *,
    contact_id: uuid.UUID,
    values: Mapping[str, Any],
    may_change: Callable[[Contact], object] | None = None,
) -> Contact:
    """Changes a contact's details; `may_change` raises when the caller may not change this
    one (the portal's narrower rule; staff may change any of the business's)."""
    checked = contact_values(values)
    async with ctx.db.transaction(ctx.scope) as session:
        contact = await row_of(session, Contact, contact_id, field="id")
        if may_change is not None:
            may_change(contact)
        if "email" in checked and checked["email"] is None and contact.portal_access:
            raise AppError(
                "A contact with portal access needs an email address; switch access off first.",
                code=ErrorCode.EMAIL_REQUIRED,
                field="email",
            )
        apply_change(ctx, session, contact, "contact.updated", checked)
    return contact
