"""Sites (properties) as the portal shows them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlmodel import col

from app.auth.viewer import PortalViewer
from app.context import Context
from app.db.models import PortalModule, Site
from app.db.reach import Grant
from app.errors import AppError, ErrorCode, NotFound
from app.resolvers.pagination import Page, tenant_page
from app.validation import plain_text


async def properties_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[Site]:
    """The sites the viewer may see, by name: all its customers' for a company contact, its
    own for a site contact (the data layer decides)."""
    return await tenant_page(
        ctx,
        Site,
        sort=col(Site.name),
        first=first,
        after=after,
        contractor=contractor,
        descending=False,
        loader=ctx.loaders.site_by_id,
    )


@dataclass(frozen=True, slots=True)
class PropertyDraft:
    name: str
    address_line1: str
    address_line2: str | None = None
    town: str | None = None
    postcode: str | None = None
    uprn: str | None = None
    is_company_site: bool = False


UPRN = re.compile(r"^\d{1,12}$")


def _text(value: str | None, *, limit: int, field: str, required: bool = False) -> str | None:
    text = plain_text((value or "").strip(), field=field)
    if required and not text:
        raise AppError("This is needed.", code=ErrorCode.INVALID_INPUT, field=field)
    if len(text) > limit:
        raise AppError(
            f"Keep this to {limit} characters.", code=ErrorCode.INVALID_INPUT, field=field
        )
    return text or None


def company_grant(
    viewer: PortalViewer, *, customer_id: uuid.UUID | None, module: PortalModule
) -> Grant:
    """The viewer's company grant with `module` at the customer named, or at its only such
    customer when none is named."""
    grants = [
        grant
        for grant in viewer.grants
        if grant.is_company
        and module in grant.modules
        and (customer_id is None or grant.customer_id == customer_id)
    ]
    if customer_id is not None and not grants:
        raise NotFound("There is no such customer.", field="customerId")
    if len({grant.customer_id for grant in grants}) != 1:
        raise AppError(
            "Say which of your companies this is for.",
            code=ErrorCode.INVALID_INPUT,
            field="customerId",
        )
    return grants[0]


async def add_property(
    ctx: Context, *, customer_id: uuid.UUID | None, draft: PropertyDraft
) -> Site:
    """Adds a site to one of the viewer's companies; staff see it like any other."""
    assert isinstance(ctx.viewer, PortalViewer), "guarded by RequiresModule"
    grant = company_grant(ctx.viewer, customer_id=customer_id, module=PortalModule.PROPERTIES)
    uprn = _text(draft.uprn, limit=12, field="uprn")
    if uprn is not None and not UPRN.match(uprn):
        raise AppError("A UPRN is up to 12 digits.", code=ErrorCode.INVALID_INPUT, field="uprn")
    site = Site(
        tenant_id=grant.tenant_id,
        customer_id=grant.customer_id,
        name=_text(draft.name, limit=200, field="name", required=True) or "",
        address_line1=_text(draft.address_line1, limit=200, field="addressLine1", required=True)
        or "",
        address_line2=_text(draft.address_line2, limit=200, field="addressLine2"),
        town=_text(draft.town, limit=100, field="town"),
        postcode=(_text(draft.postcode, limit=16, field="postcode") or "").upper() or None,
        uprn=uprn,
        is_company_site=draft.is_company_site,
    )
    async with ctx.db.transaction(ctx.scope) as session:
        session.add(site)
    ctx.loaders.site_by_id.prime(site.id, site)
    return site
