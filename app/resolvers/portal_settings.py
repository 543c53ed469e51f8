"""Portal settings (S9, T5, T7): the tenant's switch, default modules, which invoices the
portal shows, branding, time zone and currency, and the Stripe account card payments go
to; and each customer's
overrides of them. Every change is
audited with the values before and after (S10)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.context import Context
from app.db.models import Customer, PortalModule, StoredFile, Tenant
from app.errors import AppError, ErrorCode
from app.files import Logo, stored_logo
from app.messages.live import ACCESS_CHANGED, announce
from app.resolvers.audit import audit_entry, changes
from app.resolvers.customers import row_of, staff_tenant
from app.validation import (
    checked_colour,
    checked_currency,
    checked_identifier,
    checked_stripe_account,
    checked_time_zone,
)

# A week: a message waits no longer than that before its customer is told.
NOTICE_MINUTES_MAX = 7 * 24 * 60


def _modules(modules: Sequence[PortalModule]) -> list[str]:
    """A module set as stored: each once, in the ladder's order."""
    chosen = set(modules)
    return [module.value for module in PortalModule if module in chosen]


async def _tenant(ctx: Context, session: AsyncSession, *, lock: bool = True) -> Tenant:
    """The business of the staff user asking, locked for a change by default (NO KEY
    UPDATE: rows that merely refer to the business can still be written meanwhile)."""
    statement = sa.select(Tenant).where(col(Tenant.id) == staff_tenant(ctx))
    if lock:
        statement = statement.with_for_update(key_share=True)
    return (await session.scalars(statement)).one()


async def portal_settings(ctx: Context) -> Tenant:
    async with ctx.db.session(ctx.scope) as session:
        return await _tenant(ctx, session, lock=False)


def _audited(
    ctx: Context,
    session: AsyncSession,
    row: Tenant | Customer,
    action: str,
    values: Mapping[str, Any],
) -> None:
    before, after = changes(row, values)
    if after:
        session.add(
            audit_entry(
                ctx.viewer,
                tenant_id=row.id if isinstance(row, Tenant) else row.tenant_id,
                action=action,
                subject_type=type(row).__name__,
                subject_id=row.id,
                before=before,
                after=after,
            )
        )


def _checked(values: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("default_modules", "module_override"):
            checked[name] = None if value is None else _modules(value)
        elif name == "accent_colour":
            checked[name] = checked_colour(value)
        elif name == "portal_identifier":
            checked[name] = checked_identifier(value or "")
        elif name == "stripe_account_id":
            checked[name] = checked_stripe_account(value)
        elif name == "message_notice_minutes":
            if value is None or not 0 <= value <= NOTICE_MINUTES_MAX:
                raise AppError(
                    f"Give 0 to {NOTICE_MINUTES_MAX} minutes.", field="messageNoticeMinutes"
                )
            checked[name] = value
        elif name == "time_zone":
            checked[name] = checked_time_zone(value)
        elif name == "currency":
            checked[name] = checked_currency(value)
        elif name in ("portal_enabled", "invoice_visibility", "message_staff_first_names"):
            if value is None:
                raise AppError("This cannot be null.", field=_camel(name))
            checked[name] = value
        else:
            raise ValueError(f"no portal setting {name}")
    return checked


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


async def update_settings(ctx: Context, *, values: Mapping[str, Any]) -> Tenant:
    """Switching the portal off here ends every portal session at this business on its
    next request: each request re-checks the switch. So does the Stripe account: payments
    started after a change go to the new one (or, with none, cannot start), while those
    already started finish in the account they began in."""
    if "default_modules" in values and values["default_modules"] is None:
        raise AppError("Give the default modules as a list.", field="defaultModules")
    checked = _checked(values)
    async with ctx.db.transaction(ctx.scope) as session:
        tenant = await _tenant(ctx, session)
        _audited(ctx, session, tenant, "portal_settings.updated", checked)
    if "portal_enabled" in checked:
        await announce(ctx.live, ctx.db, ACCESS_CHANGED)
    return tenant


async def _replace_logo(
    session: AsyncSession, row: Tenant | Customer, tenant_id: uuid.UUID, logo: Logo | None
) -> None:
    old = row.logo_file_id
    if logo is not None:
        stored = stored_logo(tenant_id, logo)
        session.add(stored)
        await session.flush()
        row.logo_file_id = stored.id
    else:
        row.logo_file_id = None
    if old is not None:
        await session.flush()
        await session.execute(
            sa.delete(StoredFile)
            .where(col(StoredFile.id) == old)
            .execution_options(synchronize_session=False)
        )


async def set_logo(ctx: Context, *, logo: Logo | None) -> Tenant:
    """Replaces (or with None removes) the business's logo; the old file goes with it."""
    async with ctx.db.transaction(ctx.scope) as session:
        tenant = await _tenant(ctx, session)
        before = tenant.logo_file_id
        await _replace_logo(session, tenant, tenant.id, logo)
        _logo_audit(ctx, session, tenant, tenant.id, "portal_settings.logo_changed", before)
    return tenant


def _logo_audit(
    ctx: Context,
    session: AsyncSession,
    row: Tenant | Customer,
    tenant_id: uuid.UUID,
    action: str,
    before: uuid.UUID | None,
) -> None:
    session.add(
        audit_entry(
            ctx.viewer,
            tenant_id=tenant_id,
            action=action,
            subject_type=type(row).__name__,
            subject_id=row.id,
            before={"logo_file_id": before},
            after={"logo_file_id": row.logo_file_id},
        )
    )


async def update_customer_portal(
    ctx: Context, *, customer_id: uuid.UUID, values: Mapping[str, Any]
) -> Customer:
    """A customer's own portal switch, identifier, modules (null: the business's defaults)
    and accent colour (null: the business's)."""
    checked = _checked(values)
    async with ctx.db.transaction(ctx.scope) as session:
        customer = await row_of(session, Customer, customer_id, field="customerId")
        identifier = checked.get("portal_identifier")
        if identifier is not None and identifier != customer.portal_identifier:
            taken = await session.scalar(
                sa.select(col(Customer.id)).where(col(Customer.portal_identifier) == identifier)
            )
            if taken is not None:
                raise _identifier_taken()
        _audited(ctx, session, customer, "customer_portal.updated", checked)
        try:
            await session.flush()
        except IntegrityError as error:
            # Another customer took the identifier since the check above.
            raise _identifier_taken() from error
    if "portal_enabled" in checked:
        await announce(ctx.live, ctx.db, ACCESS_CHANGED)
    return customer


def _identifier_taken() -> AppError:
    return AppError(
        "Another customer already has this portal identifier.",
        code=ErrorCode.PORTAL_IDENTIFIER_TAKEN,
        field="portalIdentifier",
    )


async def set_customer_logo(ctx: Context, *, customer_id: uuid.UUID, logo: Logo | None) -> Customer:
    """A customer's own logo instead of the business's; None goes back to the business's."""
    async with ctx.db.transaction(ctx.scope) as session:
        customer = await row_of(session, Customer, customer_id, field="customerId")
        before = customer.logo_file_id
        await _replace_logo(session, customer, customer.tenant_id, logo)
        _logo_audit(
            ctx, session, customer, customer.tenant_id, "customer_portal.logo_changed", before
        )
    return customer
