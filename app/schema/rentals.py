"""Rentals, as far as the office needs them here: what a request was converted into."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.schema.catalog import RequestableItem
from app.schema.customers import Site, site_of
from app.schema.permissions import RequiresRole
from app.schema.relay import LoadedNode


@strawberry.type(description="A product on hire at a customer's site.")
class Rental(LoadedNode):
    loader_name = "rental_by_id"
    # Staff reach it through the requests inbox, as what a request was converted into.
    visible_to = RequiresRole(StaffRole.ASSISTANT_MANAGER)
    id: relay.NodeID[str]
    reference: str
    description: str
    starts_on: date
    ends_on: date | None
    po_number: str | None = strawberry.field(description="The customer's order number.")
    product_name: str | None = strawberry.field(
        description="The product the customer asked for, named as it was then."
    )
    service_name: str | None = strawberry.field(
        description="The service the customer asked to go with it, named as it was then."
    )
    notes: str = strawberry.field(description="The customer's words, as sent with the request.")
    row: strawberry.Private[models.Rental]

    @classmethod
    def from_row(cls, row: models.Rental) -> Rental:
        return cls(
            id=str(row.id),
            reference=row.reference,
            description=row.description,
            starts_on=row.starts_on,
            ends_on=row.ends_on,
            po_number=row.po_number,
            product_name=row.product_name,
            service_name=row.service_name,
            notes=row.notes,
            row=row,
        )

    @strawberry.field
    async def site(self, info: Info) -> Site:
        site = await site_of(info, self.row.site_id)
        assert site is not None, "a rental the viewer can read is at a site it can read"
        return site

    @strawberry.field
    async def product(self, info: Info) -> RequestableItem | None:
        if self.row.product_id is None:
            return None
        row = await info.context.loaders.requestable_item_by_id.load(self.row.product_id)
        return RequestableItem.from_row(row) if row is not None else None
