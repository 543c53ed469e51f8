from __future__ import annotations

from app.dataloaders.base import ByIdLoader
from app.db.models import Job


class JobByIdLoader(ByIdLoader[Job]):
    model = Job
