from __future__ import annotations

from app.dataloaders.base import ByIdLoader, ByParentLoader
from app.db.models import Job, JobVisit


class JobByIdLoader(ByIdLoader[Job]):
    model = Job


class JobVisitsByJobIdLoader(ByParentLoader[JobVisit]):
    model = JobVisit
    parent = "job_id"
    order_by = "starts_at"
