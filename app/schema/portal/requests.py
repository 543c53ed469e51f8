"""Service requests in the portal (E4, E5): users with the REQUESTS module."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.schema.permissions import module_type
from app.schema.portal.common import Contractor, contractor_of
from app.schema.portal.customers import Site, site_of
from app.schema.relay import LoadedNode

RequestKind = strawberry.enum(
    models.RequestKind,
    name="RequestKind",
    description="A service (on a rental), a new quote, or a new job.",
)
RequestStatus = strawberry.enum(
    models.RequestStatus,
    name="RequestStatus",
    description="NEW until the office opens it, READ after; COMPLETED or DECLINED when decided.",
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
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="The business asked.")
    async def contractor(self, info: Info) -> Contractor:
        return await contractor_of(info, self.row.tenant_id)

    @strawberry.field(description="The site it is for, when it is for one.")
    async def site(self, info: Info) -> Site | None:
        return await site_of(info, self.row.site_id)
