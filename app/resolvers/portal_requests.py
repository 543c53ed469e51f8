"""Service requests as the portal shows them, and as portal users submit them."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.viewer import PortalViewer
from app.context import Context
from app.db.base import utcnow
from app.db.models import (
    Contact,
    PortalModule,
    Rental,
    RequestableItem,
    RequestableKind,
    RequestKind,
    RequestStatus,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
)
from app.errors import AppError, ErrorCode, NotFound
from app.messages import live
from app.messages.live import LiveEvent
from app.resolvers.audit import audit_entry
from app.resolvers.customers import row_of
from app.resolvers.pagination import Page, tenant_page
from app.resolvers.requests import OPEN
from app.validation import checked_text, limited_text


async def requests_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[ServiceRequest]:
    return await tenant_page(
        ctx,
        ServiceRequest,
        sort=col(ServiceRequest.created_at),
        first=first,
        after=after,
        contractor=contractor,
        loader=ctx.loaders.service_request_by_id,
    )


@dataclass(frozen=True, slots=True)
class RequestDraft:
    """What a portal user asks for: a service on a rental, or a new quote or job."""

    kind: RequestKind
    site_id: uuid.UUID
    product_id: uuid.UUID | None = None
    service_id: uuid.UUID | None = None
    rental_id: uuid.UUID | None = None
    wants_new_rental: bool = False
    po_number: str | None = None
    description: str = ""
    notes: str = ""
    preferred_date: date | None = None


def _invalid(message: str, field: str) -> AppError:
    return AppError(message, code=ErrorCode.INVALID_INPUT, field=field)


async def _item(
    session: AsyncSession,
    item_id: uuid.UUID | None,
    *,
    kind: RequestableKind,
    field: str,
    site: Site,
) -> RequestableItem | None:
    if item_id is None:
        return None
    item = await session.scalar(
        sa.select(RequestableItem).where(
            col(RequestableItem.id) == item_id,
            col(RequestableItem.tenant_id) == site.tenant_id,
            col(RequestableItem.kind) == kind,
            col(RequestableItem.show_in_portal).is_(True),
        )
    )
    if item is None:
        raise NotFound(f"There is no such {kind.value.lower()} to ask for.", field=field)
    return item


async def submit_request(ctx: Context, draft: RequestDraft) -> ServiceRequest:
    """Records a request as NEW for the office's inbox, from the contact the viewer speaks
    as at the site's customer. Everything it names must be the viewer's to name."""
    viewer = ctx.viewer
    assert isinstance(viewer, PortalViewer), "guarded by RequiresModule"
    async with ctx.db.transaction(ctx.scope) as session:
        site = await session.scalar(sa.select(Site).where(col(Site.id) == draft.site_id))
        grant = next(
            (
                g
                for g in viewer.grants
                if site is not None
                and g.tenant_id == site.tenant_id
                and g.customer_id == site.customer_id
                and PortalModule.REQUESTS in g.modules
                and (g.is_company or g.site_id == site.id)
            ),
            None,
        )
        if site is None or grant is None:
            raise NotFound("There is no such site.", field="siteId")
        product = await _item(
            session, draft.product_id, kind=RequestableKind.PRODUCT, field="productId", site=site
        )
        service = await _item(
            session, draft.service_id, kind=RequestableKind.SERVICE, field="serviceId", site=site
        )
        if draft.kind is RequestKind.SERVICE:
            await _check_rental(session, draft, site)
            if product is None and service is None:
                raise _invalid("Pick a product or a service.", "serviceId")
        description = limited_text(
            draft.description, field="description", max_length=4000, multiline=True
        )
        if draft.kind is not RequestKind.SERVICE and not description:
            raise _invalid("Say what the work is.", "description")
        request = ServiceRequest(
            tenant_id=site.tenant_id,
            number="",
            kind=draft.kind,
            customer_id=site.customer_id,
            site_id=site.id,
            contact_id=grant.contact_id,
            contact_name=await session.scalar(
                sa.select(col(Contact.name)).where(col(Contact.id) == grant.contact_id)
            ),
            account_id=viewer.account_id,
            product_id=product.id if product else None,
            service_id=service.id if service else None,
            product_name=product.name if product else None,
            service_name=service.name if service else None,
            rental_id=draft.rental_id if draft.kind is RequestKind.SERVICE else None,
            wants_new_rental=draft.wants_new_rental and draft.kind is RequestKind.SERVICE,
            po_number=limited_text(draft.po_number, field="poNumber", max_length=64) or None,
            description=description,
            notes=limited_text(draft.notes, field="notes", max_length=4000, multiline=True),
            preferred_date=draft.preferred_date,
        )
        await _numbered(session, request)
        session.add(
            ServiceRequestEvent(
                tenant_id=request.tenant_id,
                request_id=request.id,
                to_status=RequestStatus.NEW,
                account_id=viewer.account_id,
            )
        )
        event = LiveEvent("request", request.tenant_id, request.customer_id, request.id)
        await live.stage(ctx.live, session, event)
    await live.committed(ctx.live, event)
    return request


async def _check_rental(session: AsyncSession, draft: RequestDraft, site: Site) -> None:
    if draft.rental_id is None:
        if not draft.wants_new_rental:
            raise _invalid("Pick the rental this is for, or ask for a new one.", "rentalId")
        return
    if draft.wants_new_rental:
        raise _invalid("Ask about an existing rental or a new one, not both.", "newRental")
    rental = await session.scalar(
        sa.select(Rental).where(col(Rental.id) == draft.rental_id, col(Rental.site_id) == site.id)
    )
    if rental is None:
        raise NotFound("There is no such rental at this site.", field="rentalId")


async def _numbered(session: AsyncSession, request: ServiceRequest) -> None:
    """Gives the request a number of its own. It is random, not the next in a sequence: a
    customer cannot count the business's other requests by it (nor could it: the data layer
    shows it none). The unique index catches the rare clash, and the next try differs."""
    for _ in range(5):
        request.number = f"PR-{secrets.randbelow(900_000) + 100_000}"
        try:
            async with session.begin_nested():
                session.add(request)
                await session.flush()
            return
        except IntegrityError:
            session.expunge(request)
    raise AppError("Could not number the request; try again.", code=ErrorCode.INTERNAL_ERROR)


async def requestable_items(ctx: Context, *, contractor: uuid.UUID | None) -> list[RequestableItem]:
    """What the viewer's contractors offer in the portal, by kind and name."""
    statement = sa.select(RequestableItem).where(col(RequestableItem.show_in_portal).is_(True))
    if contractor is not None:
        statement = statement.where(col(RequestableItem.tenant_id) == contractor)
    async with ctx.db.session(ctx.scope) as session:
        rows = list(
            await session.scalars(
                statement.order_by(
                    col(RequestableItem.kind), col(RequestableItem.name), col(RequestableItem.id)
                )
            )
        )
    ctx.loaders.requestable_item_by_id.prime_many({row.id: row for row in rows})
    return rows


async def cancel_request(ctx: Context, *, request_id: uuid.UUID, reason: str) -> ServiceRequest:
    """Withdraws a request the office has not decided on (NEW or READ), with the customer's
    reason. The row is locked as staff decisions lock it, so of a cancel and a conversion at
    once exactly one happens and the other is told why."""
    viewer = ctx.viewer
    assert isinstance(viewer, PortalViewer), "guarded by RequiresModule"
    reason = checked_text(reason, field="reason", max_length=2000, multiline=True)
    async with ctx.db.transaction(ctx.scope) as session:
        request = await row_of(session, ServiceRequest, request_id, field="id")
        if request.status not in OPEN:
            raise AppError(
                "The office has already dealt with this request; it can no longer be cancelled.",
                code=ErrorCode.REQUEST_ALREADY_DECIDED,
                field="id",
            )
        session.add(
            ServiceRequestEvent(
                tenant_id=request.tenant_id,
                request_id=request.id,
                from_status=request.status,
                to_status=RequestStatus.CANCELLED,
                account_id=viewer.account_id,
                note=reason,
            )
        )
        session.add(
            audit_entry(
                viewer,
                tenant_id=request.tenant_id,
                action="request.cancelled",
                subject_type="ServiceRequest",
                subject_id=request.id,
                before={"status": request.status},
                after={"status": RequestStatus.CANCELLED, "reason": reason},
            )
        )
        request.status = RequestStatus.CANCELLED
        request.cancel_reason = reason
        request.decided_at = utcnow()
    return request
