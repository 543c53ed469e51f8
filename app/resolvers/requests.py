"""The office's side of portal requests: the inbox (S7) and the decisions on each (S8).

A decision locks the request's row first (SQLite: the write transaction locks the whole
database), so two staff deciding at once are served one after the other, and the second
sees the first's decision."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.viewer import StaffViewer
from app.context import Context
from app.db.base import utcnow
from app.db.models import (
    Contact,
    Customer,
    Job,
    PortalAccount,
    Rental,
    RequestStatus,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
    Tenant,
)
from app.db.text import folded_contains
from app.errors import AppError, ErrorCode, NotFound
from app.mail import enqueue_email
from app.resolvers.audit import audit_entry
from app.resolvers.customers import row_of
from app.resolvers.pagination import Page, keyset_page
from app.validation import checked_text, normalised_email

OPEN = (RequestStatus.NEW, RequestStatus.READ)
SEARCH_MAX = 100


class Conversion(enum.Enum):
    JOB = "JOB"
    RENTAL = "RENTAL"


def _staff(ctx: Context) -> StaffViewer:
    viewer = ctx.viewer
    assert isinstance(viewer, StaffViewer)
    return viewer


def _matching(
    statement: sa.Select[tuple[ServiceRequest]], search: str
) -> sa.Select[tuple[ServiceRequest]]:
    """Requests whose customer name, contact name, site number or PO number contains the
    words searched for, ignoring case."""
    request = ServiceRequest
    return (
        statement.join(
            Customer,
            sa.and_(
                col(Customer.tenant_id) == col(request.tenant_id),
                col(Customer.id) == col(request.customer_id),
            ),
        )
        .outerjoin(
            Contact,
            sa.and_(
                col(Contact.tenant_id) == col(request.tenant_id),
                col(Contact.id) == col(request.contact_id),
            ),
        )
        .outerjoin(
            Site,
            sa.and_(
                col(Site.tenant_id) == col(request.tenant_id),
                col(Site.id) == col(request.site_id),
            ),
        )
        .where(
            sa.or_(
                folded_contains(col(Customer.name), search),
                # The name it was sent under outlives the contact.
                folded_contains(
                    sa.func.coalesce(col(request.contact_name), col(Contact.name)), search
                ),
                folded_contains(col(Site.site_number), search),
                folded_contains(col(request.po_number), search),
            )
        )
    )


async def inbox_page(
    ctx: Context,
    *,
    statuses: Sequence[RequestStatus] | None,
    search: str | None,
    first: int | None,
    after: str | None,
) -> Page[ServiceRequest]:
    """Portal requests, newest first; in any of `statuses` (none means all), matching
    `search` when given."""
    statement = sa.select(ServiceRequest)
    if statuses:
        statement = statement.where(col(ServiceRequest.status).in_(set(statuses)))
    term = " ".join((search or "").split())
    if len(term) > SEARCH_MAX:
        raise AppError(f"Search for at most {SEARCH_MAX} characters.", field="search")
    if term:
        statement = _matching(statement, term)
    async with ctx.db.session(ctx.scope) as session:
        page = await keyset_page(
            session,
            statement,
            sort=col(ServiceRequest.created_at),
            row_id=col(ServiceRequest.id),
            first=first,
            after=after,
            descending=True,
        )
    ctx.loaders.service_request_by_id.prime_many({row.id: row for row in page.rows})
    return page


async def unread_count(ctx: Context) -> int:
    async with ctx.db.session(ctx.scope) as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(ServiceRequest)
            .where(col(ServiceRequest.status) == RequestStatus.NEW)
        )
    return int(count or 0)


def _event(
    request: ServiceRequest, viewer: StaffViewer, to: RequestStatus, note: str = ""
) -> ServiceRequestEvent:
    return ServiceRequestEvent(
        tenant_id=request.tenant_id,
        request_id=request.id,
        from_status=request.status,
        to_status=to,
        staff_user_id=viewer.user_id,
        note=note,
    )


async def open_request(ctx: Context, *, request_id: uuid.UUID) -> ServiceRequest:
    """The request's details as staff open them: a NEW request becomes READ, once, by
    whoever opened it first. The status moves in one conditional UPDATE, so of two staff
    opening it at once only one records the step."""
    viewer = _staff(ctx)
    async with ctx.db.transaction(ctx.scope) as session:
        now = utcnow()
        moved = await session.execute(
            sa.update(ServiceRequest)
            .where(
                col(ServiceRequest.id) == request_id,
                col(ServiceRequest.status) == RequestStatus.NEW,
            )
            .values(status=RequestStatus.READ, read_at=now, read_by_staff_id=viewer.user_id)
            .execution_options(synchronize_session=False)
        )
        request = (
            await session.scalars(
                sa.select(ServiceRequest).where(col(ServiceRequest.id) == request_id)
            )
        ).first()
        if request is None:
            raise NotFound("There is no such request.", field="id")
        if getattr(moved, "rowcount", 0) == 1:
            session.add(
                ServiceRequestEvent(
                    tenant_id=request.tenant_id,
                    request_id=request.id,
                    from_status=RequestStatus.NEW,
                    to_status=RequestStatus.READ,
                    staff_user_id=viewer.user_id,
                )
            )
    ctx.loaders.service_request_by_id.prime(request.id, request)
    return request


def _decidable(request: ServiceRequest) -> None:
    if request.status is RequestStatus.DECLINED:
        raise AppError(
            "This request was declined and cannot be accepted; the customer must send a new "
            "request.",
            code=ErrorCode.REQUEST_DECLINED,
            field="id",
        )
    if request.status is RequestStatus.CANCELLED:
        raise AppError(
            "The customer cancelled this request.", code=ErrorCode.REQUEST_CANCELLED, field="id"
        )
    if request.status not in OPEN:
        raise AppError(
            "This request has already been completed.",
            code=ErrorCode.REQUEST_ALREADY_DECIDED,
            field="id",
        )


def _title(request: ServiceRequest) -> str:
    names = [name for name in (request.service_name, request.product_name) if name]
    return (" - ".join(names) or f"Portal request {request.number}")[:200]


def _words(request: ServiceRequest) -> str:
    """The request's description and notes, for a rental, which has no description of its own
    to spare (it names what is on hire)."""
    return "\n\n".join(text for text in (request.description, request.notes) if text)


async def convert_request(
    ctx: Context, *, request_id: uuid.UUID, into: Conversion
) -> ServiceRequest:
    """Creates a job or a rental from the request, in the same transaction that completes
    the request and links the two. What the customer sent goes with it: the site, the PO
    number, the product and service names as sent, the preferred date (a job's, or the day a
    rental starts) and their words (a job's description and notes; a rental's notes)."""
    viewer = _staff(ctx)
    async with ctx.db.transaction(ctx.scope) as session:
        request = await row_of(session, ServiceRequest, request_id, field="id")
        _decidable(request)
        now = utcnow()
        if into is Conversion.JOB:
            job = Job(
                tenant_id=request.tenant_id,
                customer_id=request.customer_id,
                site_id=request.site_id,
                number=f"J-{request.number}",
                title=_title(request),
                description=request.description,
                po_number=request.po_number,
                product_name=request.product_name,
                service_name=request.service_name,
                preferred_date=request.preferred_date,
                notes=request.notes,
                source_request_id=request.id,
            )
            session.add(job)
            created: dict[str, object] = {"job_id": job.id, "job_number": job.number}
        else:
            if request.site_id is None:
                raise AppError("A rental needs the request to name a site.", field="id")
            rental = Rental(
                tenant_id=request.tenant_id,
                customer_id=request.customer_id,
                site_id=request.site_id,
                product_id=request.product_id,
                reference=f"R-{request.number}",
                description=_title(request)[:500],
                starts_on=request.preferred_date or now.date(),
                po_number=request.po_number,
                product_name=request.product_name,
                service_name=request.service_name,
                notes=_words(request),
                source_request_id=request.id,
            )
            session.add(rental)
            created = {"rental_id": rental.id, "rental_reference": rental.reference}
        # The new row goes in before the request points at it.
        await session.flush()
        session.add(_event(request, viewer, RequestStatus.COMPLETED))
        before = {"status": request.status}
        request.status = RequestStatus.COMPLETED
        request.decided_at = now
        request.decided_by_staff_id = viewer.user_id
        if into is Conversion.JOB:
            request.converted_job_id = job.id
            became = f"job {job.number}"
        else:
            request.converted_rental_id = rental.id
            became = f"rental {rental.reference}"
        await _tell_accepted(ctx, session, request, became)
        session.add(
            audit_entry(
                viewer,
                tenant_id=request.tenant_id,
                action=f"request.converted_to_{into.value.lower()}",
                subject_type="ServiceRequest",
                subject_id=request.id,
                before=before,
                after={"status": request.status, **created},
            )
        )
    return request


async def _submitter(session: AsyncSession, request: ServiceRequest) -> tuple[str, str] | None:
    """The name and address to tell about a decision: the account that sent the request,
    else its contact."""
    if request.account_id is not None:
        account = await session.get(PortalAccount, request.account_id)
        if account is not None and (email := normalised_email(account.email)):
            return account.name, email
    if request.contact_id is not None:
        contact = await session.get(Contact, (request.tenant_id, request.contact_id))
        if contact is not None and (email := normalised_email(contact.email)):
            return contact.name, email
    return None


async def _tell_accepted(
    ctx: Context, session: AsyncSession, request: ServiceRequest, became: str
) -> None:
    """Emails whoever sent the request what it became (E15), in the deciding transaction."""
    submitter = await _submitter(session, request)
    if submitter is None:
        return
    tenant = await session.get(Tenant, request.tenant_id)
    assert tenant is not None
    await enqueue_email(
        session,
        template="request_accepted",
        to=submitter[1],
        tenant=tenant,
        context={
            "contact_name": submitter[0],
            "request_number": request.number,
            "became": became,
            "url": f"{ctx.settings.portal_app_url}/{tenant.slug}/requests",
        },
        settings=ctx.settings,
    )


async def decline_request(ctx: Context, *, request_id: uuid.UUID, reason: str) -> ServiceRequest:
    """Declines the request and emails the reason to whoever sent it, through the outbox in
    the same transaction: declined and emailed, or neither."""
    viewer = _staff(ctx)
    reason = checked_text(reason, field="reason", max_length=2000, multiline=True)
    async with ctx.db.transaction(ctx.scope) as session:
        request = await row_of(session, ServiceRequest, request_id, field="id")
        if request.status is RequestStatus.DECLINED:
            raise AppError(
                "This request has already been declined.",
                code=ErrorCode.REQUEST_ALREADY_DECIDED,
                field="id",
            )
        _decidable(request)
        session.add(_event(request, viewer, RequestStatus.DECLINED, note=reason))
        before = {"status": request.status}
        request.status = RequestStatus.DECLINED
        request.decided_at = utcnow()
        request.decided_by_staff_id = viewer.user_id
        request.decline_reason = reason
        submitter = await _submitter(session, request)
        if submitter is not None:
            tenant = await session.get(Tenant, request.tenant_id)
            await enqueue_email(
                session,
                template="request_declined",
                to=submitter[1],
                tenant=tenant,
                context={
                    "contact_name": submitter[0],
                    "request_number": request.number,
                    "reason": reason,
                },
                settings=ctx.settings,
            )
        session.add(
            audit_entry(
                viewer,
                tenant_id=request.tenant_id,
                action="request.declined",
                subject_type="ServiceRequest",
                subject_id=request.id,
                before=before,
                after={"status": request.status, "reason": reason},
            )
        )
    return request
