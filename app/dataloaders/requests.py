from __future__ import annotations

from app.dataloaders.base import ByIdLoader, ByParentLoader
from app.db.models import ServiceRequest, ServiceRequestEvent


class ServiceRequestByIdLoader(ByIdLoader[ServiceRequest]):
    model = ServiceRequest


class EventsByRequestIdLoader(ByParentLoader[ServiceRequestEvent]):
    model = ServiceRequestEvent
    parent = "request_id"
    order_by = "created_at"
