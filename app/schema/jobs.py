"""Jobs, as far as the office needs them here: what a request was converted into."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.schema.customers import Customer, Site, customer_of, site_of
from app.schema.permissions import RequiresRole
from app.schema.relay import LoadedNode

JobStatus = strawberry.enum(models.JobStatus, name="JobStatus", description="Where a job is.")


@strawberry.type(description="A piece of work for a customer.")
class Job(LoadedNode):
    loader_name = "job_by_id"
    # Staff reach it through the requests inbox, as what a request was converted into.
    visible_to = RequiresRole(StaffRole.ASSISTANT_MANAGER)
    id: relay.NodeID[str]
    number: str
    title: str
    description: str
    status: JobStatus  # type: ignore[valid-type]
    po_number: str | None
    product_name: str | None = strawberry.field(
        description="The product the customer asked for, named as it was then."
    )
    service_name: str | None = strawberry.field(
        description="The service the customer asked for, named as it was then."
    )
    preferred_date: date | None = strawberry.field(
        description="The day the customer would like the work done."
    )
    notes: str = strawberry.field(description="The customer's notes, as sent with the request.")
    created_at: datetime
    row: strawberry.Private[models.Job]

    @classmethod
    def from_row(cls, row: models.Job) -> Job:
        return cls(
            id=str(row.id),
            number=row.number,
            title=row.title,
            description=row.description,
            status=row.status,
            po_number=row.po_number,
            product_name=row.product_name,
            service_name=row.service_name,
            preferred_date=row.preferred_date,
            notes=row.notes,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return await customer_of(info, self.row.customer_id)

    @strawberry.field
    async def site(self, info: Info) -> Site | None:
        return await site_of(info, self.row.site_id)
