"""Appointments in the portal (E9): users with the DIARIES module."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.schema.permissions import module_type
from app.schema.portal.common import Contractor, contractor_of
from app.schema.relay import LoadedNode


@strawberry.type(
    description="A booked visit: an estimate for a quote, or work on a job.",
    directives=module_type(PortalModule.DIARIES),
)
class Appointment(LoadedNode):
    loader_name = "diary_event_by_id"
    id: relay.NodeID[str]
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    row: strawberry.Private[models.DiaryEvent]

    @classmethod
    def from_row(cls, row: models.DiaryEvent) -> Appointment:
        return cls(
            id=str(row.id),
            title=row.title,
            description=row.description,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            row=row,
        )

    @strawberry.field(description="The business coming.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)

    @strawberry.field(description="The number of the job this is for, when you may see it.")
    async def job_number(self, info: Info) -> str | None:
        if self.row.job_id is None:
            return None
        job = await info.context.loaders.job_by_id.load(self.row.job_id)
        return job.number if job is not None else None

    @strawberry.field(
        description="The number of the quote this estimate visit is for, when you may see it."
    )
    async def quote_number(self, info: Info) -> str | None:
        if self.row.quote_id is None:
            return None
        quote = await info.context.loaders.quote_by_id.load(self.row.quote_id)
        return quote.number if quote is not None else None

    @strawberry.field(description="The address of the visit, when it is at one of your sites.")
    async def address(self, info: Info) -> str | None:
        if self.row.site_id is None:
            return None
        site = await info.context.loaders.site_by_id.load(self.row.site_id)
        return site.one_line_address if site is not None else None
