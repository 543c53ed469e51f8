from __future__ import annotations

from app.dataloaders.base import ByIdLoader
from app.db.models import ServiceRequest


class ServiceRequestByIdLoader(ByIdLoader[ServiceRequest]):
    model = ServiceRequest
