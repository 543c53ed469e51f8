"""Service requests in the portal (E4, E5): users with the REQUESTS module."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable
from datetime import date, datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.resolvers.portal_requests import RequestDraft, cancel_request, submit_request
from app.schema.permissions import RequiresModule, guarded, module_type
from app.schema.portal.common import Contractor, contractor_of
from app.schema.portal.customers import Site, site_of
from app.schema.relay import LoadedNode, uuid_of

RequestKind = strawberry.enum(
    models.RequestKind,
    name="RequestKind",
    description="A service (on a rental), a new quote, or a new job.",
)
RequestStatus = strawberry.enum(
    models.RequestStatus,
    name="RequestStatus",
    description="NEW until the office opens it, READ after; COMPLETED or DECLINED when decided;"
    " CANCELLED when withdrawn by the customer.",
)


@strawberry.type(
    description="Something you asked a contractor for, and where it stands.",
    directives=module_type(PortalModule.REQUESTS),
)
class ServiceRequest(LoadedNode):
    loader_name = "service_request_by_id"
    id: relay.NodeID[str]
    number: str
    kind: RequestKind  # type: ignore[valid-type]
    status: RequestStatus  # type: ignore[valid-type]
    product_name: str | None = strawberry.field(description="As it was named when you asked.")
    service_name: str | None = strawberry.field(description="As it was named when you asked.")
    po_number: str | None = strawberry.field(description="Your purchase order number.")
    description: str
    notes: str
    preferred_date: date | None
    decline_reason: str | None = strawberry.field(description="Why the office declined it.")
    cancel_reason: str | None = strawberry.field(description="Why it was withdrawn.")
    created_at: datetime
    row: strawberry.Private[models.ServiceRequest]

    @classmethod
    def from_row(cls, row: models.ServiceRequest) -> ServiceRequest:
        return cls(
            id=str(row.id),
            number=row.number,
            kind=row.kind,
            status=row.status,
            product_name=row.product_name,
            service_name=row.service_name,
            po_number=row.po_number,
            description=row.description,
            notes=row.notes,
            preferred_date=row.preferred_date,
            decline_reason=row.decline_reason,
            cancel_reason=row.cancel_reason,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="The business asked.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)

    @strawberry.field(description="The site it is for, when it is for one.")
    async def site(self, info: Info) -> Site | None:
        return await site_of(info, self.row.site_id)


RequestableKind = strawberry.enum(models.RequestableKind, name="RequestableKind")


@strawberry.type(
    description="A product or service a contractor lets customers ask for.",
    directives=module_type(PortalModule.REQUESTS),
)
class RequestableItem(LoadedNode):
    loader_name = "requestable_item_by_id"
    id: relay.NodeID[str]
    kind: RequestableKind  # type: ignore[valid-type]
    name: str
    row: strawberry.Private[models.RequestableItem]

    @classmethod
    def from_row(cls, row: models.RequestableItem) -> RequestableItem:
        return cls(id=str(row.id), kind=row.kind, name=row.name, row=row)

    @strawberry.field(description="The business offering it.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)


@strawberry.input(description="A service on a rental you have, or on a new one (E4).")
class ServiceRequestInput:
    site_id: strawberry.ID
    product_id: strawberry.ID | None = None
    service_id: strawberry.ID | None = None
    rental_id: strawberry.ID | None = strawberry.field(
        default=None, description="The rental it is for; leave out and set newRental for a new one."
    )
    new_rental: bool = False
    po_number: str | None = None
    notes: str | None = None
    preferred_date: date | None = None


@strawberry.enum(name="WorkKind", description="What to ask a contractor for.")
class WorkKind(enum.StrEnum):
    QUOTE = "QUOTE"
    JOB = "JOB"


@strawberry.input(description="A new quote or a new job to ask for (E5).")
class WorkRequestInput:
    kind: WorkKind
    site_id: strawberry.ID
    description: str
    po_number: str | None = None
    preferred_date: date | None = None


def _optional(global_id: strawberry.ID | None, type_name: str, field: str) -> uuid.UUID | None:
    return uuid_of(global_id, type_name, field=field) if global_id is not None else None


@strawberry.type
class RequestsMutation:
    @strawberry.mutation(
        description="Asks for a service at one of your sites; it reaches the office as NEW.",
        extensions=guarded(RequiresModule(PortalModule.REQUESTS)),
    )
    async def submit_service_request(
        self, info: Info, input: ServiceRequestInput
    ) -> ServiceRequest:
        draft = RequestDraft(
            kind=models.RequestKind.SERVICE,
            site_id=uuid_of(input.site_id, "Site", field="siteId"),
            product_id=_optional(input.product_id, "RequestableItem", "productId"),
            service_id=_optional(input.service_id, "RequestableItem", "serviceId"),
            rental_id=_optional(input.rental_id, "Rental", "rentalId"),
            wants_new_rental=input.new_rental,
            po_number=input.po_number,
            notes=input.notes or "",
            preferred_date=input.preferred_date,
        )
        return ServiceRequest.from_row(await submit_request(info.context, draft))

    @strawberry.mutation(
        description="Asks for a new quote or a new job at one of your sites.",
        extensions=guarded(RequiresModule(PortalModule.REQUESTS)),
    )
    async def request_work(self, info: Info, input: WorkRequestInput) -> ServiceRequest:
        draft = RequestDraft(
            kind=models.RequestKind(input.kind.value),
            site_id=uuid_of(input.site_id, "Site", field="siteId"),
            po_number=input.po_number,
            description=input.description,
            preferred_date=input.preferred_date,
        )
        return ServiceRequest.from_row(await submit_request(info.context, draft))

    @strawberry.mutation(
        description="Withdraws one of your requests while the office has not decided on it"
        " (NEW or READ), saying why; REQUEST_ALREADY_DECIDED once it has.",
        extensions=guarded(RequiresModule(PortalModule.REQUESTS)),
    )
    async def cancel_request(
        self, info: Info, request_id: strawberry.ID, reason: str
    ) -> ServiceRequest:
        row = await cancel_request(
            info.context,
            request_id=uuid_of(request_id, "ServiceRequest", field="requestId"),
            reason=reason,
        )
        return ServiceRequest.from_row(row)
