"""Quotes in the portal (E6): users with the QUOTES module."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.resolvers.quotes import decide_quote
from app.schema.permissions import RequiresModule, guarded, module_type
from app.schema.portal.common import Contractor, Money, contractor_of
from app.schema.relay import LoadedNode, uuid_of

QuoteStatus = strawberry.enum(models.QuoteStatus, name="QuoteStatus")


@strawberry.type(description="One line of a quote.", directives=module_type(PortalModule.QUOTES))
class QuoteLine:
    description: str
    quantity: int
    unit_price: Money
    total: Money


@strawberry.type(
    description="A price a contractor offers for work.",
    directives=module_type(PortalModule.QUOTES),
)
class Quote(LoadedNode):
    loader_name = "quote_by_id"
    id: relay.NodeID[str]
    number: str
    title: str
    description: str
    status: QuoteStatus  # type: ignore[valid-type]
    total: Money
    valid_until: date | None
    decided_at: datetime | None
    created_at: datetime
    row: strawberry.Private[models.Quote]

    @classmethod
    def from_row(cls, row: models.Quote) -> Quote:
        return cls(
            id=str(row.id),
            number=row.number,
            title=row.title,
            description=row.description,
            status=row.status,
            total=Money(minor=row.total_minor, currency=row.currency),
            valid_until=row.valid_until,
            decided_at=row.decided_at,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="The business that sent it.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)

    @strawberry.field(
        description="What is offered, in order.",
        extensions=guarded(RequiresModule(PortalModule.QUOTES)),
    )
    async def lines(self, info: Info) -> list[QuoteLine]:
        rows = await info.context.loaders.quote_lines_by_quote_id.load(self.row.id)
        return [
            QuoteLine(
                description=line.description,
                quantity=line.quantity,
                unit_price=Money(minor=line.unit_price_minor, currency=self.row.currency),
                total=Money(minor=line.total_minor, currency=self.row.currency),
            )
            for line in rows
        ]


@strawberry.type
class QuotesMutation:
    @strawberry.mutation(
        description="Approves or declines a quote the contractor sent, once.",
        extensions=guarded(RequiresModule(PortalModule.QUOTES)),
    )
    async def decide_quote(self, info: Info, quote_id: strawberry.ID, approve: bool) -> Quote:
        row = await decide_quote(
            info.context, quote_id=uuid_of(quote_id, "Quote", field="quoteId"), approve=approve
        )
        info.context.loaders.quote_by_id.prime(row.id, row)
        return Quote.from_row(row)
