"""Jobs in the portal (E7): users with the JOBS module."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.schema.permissions import RequiresModule, guarded, module_type
from app.schema.portal.common import Contractor, contractor_of
from app.schema.relay import LoadedNode

JobStatus = strawberry.enum(models.JobStatus, name="JobStatus")
VisitStatus = strawberry.enum(models.VisitStatus, name="VisitStatus")


@strawberry.type(description="One visit to do a job.", directives=module_type(PortalModule.JOBS))
class Visit:
    starts_at: datetime
    ends_at: datetime
    status: VisitStatus  # type: ignore[valid-type]
    row: strawberry.Private[models.JobVisit]

    @classmethod
    def from_row(cls, row: models.JobVisit) -> Visit:
        return cls(starts_at=row.starts_at, ends_at=row.ends_at, status=row.status, row=row)

    @strawberry.field(
        description="The job this visit is for.",
        extensions=guarded(RequiresModule(PortalModule.JOBS)),
    )
    async def job(self, info: Info) -> Job:
        row = await info.context.loaders.job_by_id.load(self.row.job_id)
        assert row is not None, "a visit the viewer can read is on a job it can read"
        return Job.from_row(row)


@strawberry.type(
    description="Work a contractor does for you.", directives=module_type(PortalModule.JOBS)
)
class Job(LoadedNode):
    loader_name = "job_by_id"
    id: relay.NodeID[str]
    number: str
    title: str
    description: str
    status: JobStatus  # type: ignore[valid-type]
    po_number: str | None = strawberry.field(description="Your purchase order number.")
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
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="The business doing it.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)

    @strawberry.field(
        description="Its visits, earliest first.",
        extensions=guarded(RequiresModule(PortalModule.JOBS)),
    )
    async def visits(self, info: Info) -> list[Visit]:
        rows = await info.context.loaders.job_visits_by_job_id.load(self.row.id)
        return [Visit.from_row(row) for row in rows]
