from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.dataloaders.base import ByIdLoader, ByParentLoader, SessionLoader
from app.db.models import RequestStatus, ServiceRequest, ServiceRequestEvent


class ServiceRequestByIdLoader(ByIdLoader[ServiceRequest]):
    model = ServiceRequest


class OpenRequestCountByCustomerIdLoader(SessionLoader[uuid.UUID, int]):
    """How many requests the viewer may see are still waiting for a decision, per customer."""

    async def fetch(self, session: AsyncSession, keys: list[uuid.UUID]) -> Sequence[int]:
        rows = await session.execute(
            sa.select(col(ServiceRequest.customer_id), sa.func.count())
            .where(
                col(ServiceRequest.customer_id).in_(keys),
                col(ServiceRequest.status).in_([RequestStatus.NEW, RequestStatus.READ]),
            )
            .group_by(col(ServiceRequest.customer_id))
        )
        counts = {customer_id: int(count) for customer_id, count in rows}
        return [counts.get(key, 0) for key in keys]


class EventsByRequestIdLoader(ByParentLoader[ServiceRequestEvent]):
    model = ServiceRequestEvent
    parent = "request_id"
    order_by = "created_at"
