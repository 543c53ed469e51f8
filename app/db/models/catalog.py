from __future__ import annotations

import enum

from sqlmodel import Field

from app.db.base import TenantOwned, enum_column, tenant_index


class RequestableKind(enum.StrEnum):
    PRODUCT = "PRODUCT"
    SERVICE = "SERVICE"


class RequestableItem(TenantOwned, table=True):
    """A product or service customers may pick in a portal request. Never deleted, so old
    requests keep what they referred to."""

    __tablename__ = "requestable_items"
    __table_args__ = (tenant_index("requestable_items", "kind", "name"),)

    kind: RequestableKind = Field(sa_type=enum_column(RequestableKind))
    name: str = Field(max_length=120)
    show_in_portal: bool = True
