"""The look of a business's sign-in page, for anyone who asks: its name, logo and colour,
and a customer's own where it has them. Nothing else is read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col

from app.db.models import Customer, Tenant
from app.db.models.tenants import PLANS_WITH_PORTAL
from app.db.scope import SYSTEM
from app.db.session import Database


@dataclass(frozen=True, slots=True)
class Branding:
    name: str
    accent_colour: str | None
    logo_file_id: uuid.UUID | None
    tenant_id: uuid.UUID
    # Set when the logo shown is the customer's own.
    logo_customer_id: uuid.UUID | None = None


async def branding_for(
    db: Database, *, business: str, customer: str | None = None
) -> Branding | None:
    """A business's branding by its slug, with a customer's overrides when its portal
    identifier is given; None for a business without a portal, or a customer it lacks."""
    # Public by design: it spans tenants, so it reads only these columns, never a row.
    async with db.session(SYSTEM) as session:
        tenant = (
            await session.execute(
                sa.select(
                    col(Tenant.id),
                    col(Tenant.name),
                    col(Tenant.accent_colour),
                    col(Tenant.logo_file_id),
                ).where(
                    col(Tenant.slug) == business.strip().lower(),
                    col(Tenant.plan).in_(PLANS_WITH_PORTAL),
                    col(Tenant.portal_enabled).is_(True),
                )
            )
        ).first()
        if tenant is None:
            return None
        branding = Branding(
            name=tenant.name,
            accent_colour=tenant.accent_colour,
            logo_file_id=tenant.logo_file_id,
            tenant_id=tenant.id,
        )
        if customer is None:
            return branding
        own = (
            await session.execute(
                sa.select(
                    col(Customer.id), col(Customer.accent_colour), col(Customer.logo_file_id)
                ).where(
                    col(Customer.tenant_id) == tenant.id,
                    col(Customer.portal_identifier) == customer.strip().lower(),
                    col(Customer.portal_enabled).is_(True),
                )
            )
        ).first()
    if own is None:
        return None
    return Branding(
        name=tenant.name,
        accent_colour=own.accent_colour or tenant.accent_colour,
        logo_file_id=own.logo_file_id or tenant.logo_file_id,
        tenant_id=tenant.id,
        logo_customer_id=own.id if own.logo_file_id else None,
    )
