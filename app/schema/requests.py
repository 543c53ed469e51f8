"""Portal requests as the office sees them: the inbox (S7) and the decisions (S8)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.resolvers import requests
from app.schema.accounts import StaffUser
from app.schema.catalog import RequestableItem
from app.schema.customers import Contact, Customer, Site, customer_of, site_of
from app.schema.jobs import Job
from app.schema.permissions import RequiresRole, guarded
from app.schema.relay import LoadedNode, connection, uuid_of
from app.schema.rentals import Rental

# S1: the requests inbox and every decision on a request.
INBOX_ROLE = StaffRole.ASSISTANT_MANAGER

RequestStatus = strawberry.enum(
    models.RequestStatus,
    name="RequestStatus",
    description="NEW until staff open it, READ, then COMPLETED or DECLINED; CANCELLED when"
    " the customer withdrew it.",
)
RequestKind = strawberry.enum(
    models.RequestKind, name="RequestKind", description="What the customer asked for."
)
Conversion = strawberry.enum(
    requests.Conversion, name="Conversion", description="What a request becomes when accepted."
)


async def _staff_user(info: Info, user_id: object) -> StaffUser | None:
    if user_id is None:
        return None
    row = await info.context.loaders.staff_user_by_id.load(user_id)  # type: ignore[arg-type]
    return StaffUser.from_row(row) if row is not None else None


@strawberry.type(description="One step in a request's status history.")
class ServiceRequestEvent:
    from_status: RequestStatus | None  # type: ignore[valid-type]
    to_status: RequestStatus  # type: ignore[valid-type]
    at: datetime
    note: str
    row: strawberry.Private[models.ServiceRequestEvent]

    @strawberry.field(description="The staff user who made the step; null for the customer.")
    async def staff_user(self, info: Info) -> StaffUser | None:
        return await _staff_user(info, self.row.staff_user_id)


@strawberry.type(description="What a customer asked for from the portal.")
class ServiceRequest(LoadedNode):
    loader_name = "service_request_by_id"
    visible_to = RequiresRole(INBOX_ROLE)
    id: relay.NodeID[str]
    number: str
    kind: RequestKind  # type: ignore[valid-type]
    status: RequestStatus  # type: ignore[valid-type]
    created_at: datetime
    product_name: str | None = strawberry.field(
        description="The product's name as the customer picked it, whatever it is called now."
    )
    service_name: str | None = strawberry.field(
        description="The service's name as the customer picked it, whatever it is called now."
    )
    wants_new_rental: bool
    po_number: str | None
    description: str
    notes: str
    preferred_date: date | None
    read_at: datetime | None
    decided_at: datetime | None
    decline_reason: str | None
    cancel_reason: str | None = strawberry.field(description="Why the customer withdrew it.")
    row: strawberry.Private[models.ServiceRequest]

    @classmethod
    def from_row(cls, row: models.ServiceRequest) -> ServiceRequest:
        return cls(
            id=str(row.id),
            number=row.number,
            kind=row.kind,
            status=row.status,
            created_at=row.created_at,
            product_name=row.product_name,
            service_name=row.service_name,
            wants_new_rental=row.wants_new_rental,
            po_number=row.po_number,
            description=row.description,
            notes=row.notes,
            preferred_date=row.preferred_date,
            read_at=row.read_at,
            decided_at=row.decided_at,
            decline_reason=row.decline_reason,
            cancel_reason=row.cancel_reason,
            row=row,
        )

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return await customer_of(info, self.row.customer_id)

    @strawberry.field
    async def site(self, info: Info) -> Site | None:
        return await site_of(info, self.row.site_id)

    @strawberry.field(
        description="The name of the contact who sent it, as it was then; kept when the"
        " contact is deleted."
    )
    def contact_name(self) -> str | None:
        return self.row.contact_name

    @strawberry.field(description="The contact who sent it; null once deleted.")
    async def contact(self, info: Info) -> Contact | None:
        if self.row.contact_id is None:
            return None
        row = await info.context.loaders.contact_by_id.load(self.row.contact_id)
        return Contact.from_row(row) if row is not None else None

    @strawberry.field(description="The product picked; its name today may differ.")
    async def product(self, info: Info) -> RequestableItem | None:
        if self.row.product_id is None:
            return None
        row = await info.context.loaders.requestable_item_by_id.load(self.row.product_id)
        return RequestableItem.from_row(row) if row is not None else None

    @strawberry.field(description="The service picked; its name today may differ.")
    async def service(self, info: Info) -> RequestableItem | None:
        if self.row.service_id is None:
            return None
        row = await info.context.loaders.requestable_item_by_id.load(self.row.service_id)
        return RequestableItem.from_row(row) if row is not None else None

    @strawberry.field(description="Who opened it first.")
    async def read_by(self, info: Info) -> StaffUser | None:
        return await _staff_user(info, self.row.read_by_staff_id)

    @strawberry.field(description="Who completed or declined it.")
    async def decided_by(self, info: Info) -> StaffUser | None:
        return await _staff_user(info, self.row.decided_by_staff_id)

    @strawberry.field(description="The job this request was converted into.")
    async def converted_job(self, info: Info) -> Job | None:
        if self.row.converted_job_id is None:
            return None
        row = await info.context.loaders.job_by_id.load(self.row.converted_job_id)
        return Job.from_row(row) if row is not None else None

    @strawberry.field(description="The rental this request was converted into.")
    async def converted_rental(self, info: Info) -> Rental | None:
        if self.row.converted_rental_id is None:
            return None
        row = await info.context.loaders.rental_by_id.load(self.row.converted_rental_id)
        return Rental.from_row(row) if row is not None else None

    @strawberry.field(description="Every status step, oldest first.")
    async def history(self, info: Info) -> list[ServiceRequestEvent]:
        rows = await info.context.loaders.events_by_request_id.load(self.row.id)
        return [
            ServiceRequestEvent(
                from_status=row.from_status,
                to_status=row.to_status,
                at=row.created_at,
                note=row.note,
                row=row,
            )
            for row in rows
        ]


@strawberry.type
class RequestsQuery:
    @strawberry.field(
        description="Portal requests, newest first. `statuses` keeps those in any of them "
        "(none or empty: all); `search` matches customer name, contact name, site number or "
        "PO number, ignoring case.",
        extensions=guarded(RequiresRole(INBOX_ROLE)),
    )
    async def service_requests(
        self,
        info: Info,
        statuses: list[RequestStatus] | None = None,  # type: ignore[valid-type]
        search: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[ServiceRequest]:
        page = await requests.inbox_page(
            info.context, statuses=statuses, search=search, first=first, after=after
        )
        return connection(page, ServiceRequest.from_row)

    @strawberry.field(
        description="How many requests nobody has opened yet: the inbox badge.",
        extensions=guarded(RequiresRole(INBOX_ROLE)),
    )
    async def unread_service_request_count(self, info: Info) -> int:
        return await requests.unread_count(info.context)


@strawberry.type
class RequestsMutation:
    @strawberry.mutation(
        description="Open a request's details: a NEW request becomes READ, recording who "
        "opened it. Reading it through `node` changes nothing.",
        extensions=guarded(RequiresRole(INBOX_ROLE)),
    )
    async def open_service_request(self, info: Info, id: strawberry.ID) -> ServiceRequest:
        row = await requests.open_request(
            info.context, request_id=uuid_of(id, "ServiceRequest", field="id")
        )
        return ServiceRequest.from_row(row)

    @strawberry.mutation(
        description="Accept a request by creating a job or a rental from it; the request "
        "becomes COMPLETED and links to it. A declined request cannot be accepted "
        "(REQUEST_DECLINED): the customer must send a new one.",
        extensions=guarded(RequiresRole(INBOX_ROLE)),
    )
    async def convert_service_request(
        self,
        info: Info,
        id: strawberry.ID,
        into: Conversion,  # type: ignore[valid-type]
    ) -> ServiceRequest:
        row = await requests.convert_request(
            info.context, request_id=uuid_of(id, "ServiceRequest", field="id"), into=into
        )
        return ServiceRequest.from_row(row)

    @strawberry.mutation(
        description="Decline a request with a reason; the customer is emailed the reason.",
        extensions=guarded(RequiresRole(INBOX_ROLE)),
    )
    async def decline_service_request(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> ServiceRequest:
        row = await requests.decline_request(
            info.context, request_id=uuid_of(id, "ServiceRequest", field="id"), reason=reason
        )
        return ServiceRequest.from_row(row)
