from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlmodel import Field

from app.db.base import TenantOwned, UTCDateTime, enum_column, tenant_fk, tenant_index


class QuoteStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    SENT = "SENT"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    EXPIRED = "EXPIRED"


class Quote(TenantOwned, table=True):
    __tablename__ = "quotes"
    __table_args__ = (
        tenant_fk(["customer_id"], "customers"),
        tenant_fk(["site_id"], "sites"),
        tenant_index("quotes", "number", unique=True),
        tenant_index("quotes", "customer_id", "created_at"),
    )

    customer_id: uuid.UUID
    site_id: uuid.UUID | None = None
    number: str = Field(max_length=32)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    status: QuoteStatus = Field(default=QuoteStatus.DRAFT, sa_type=enum_column(QuoteStatus))
    currency: str = Field(max_length=3)
    total_minor: int = 0
    valid_until: date | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by_account_id: uuid.UUID | None = Field(default=None, foreign_key="portal_accounts.id")
    source_request_id: uuid.UUID | None = None


class QuoteLine(TenantOwned, table=True):
    __tablename__ = "quote_lines"
    __table_args__ = (
        tenant_fk(["quote_id"], "quotes", ondelete="CASCADE"),
        tenant_index("quote_lines", "quote_id", "position"),
    )

    quote_id: uuid.UUID
    position: int
    description: str = Field(max_length=500)
    quantity: int = 1
    unit_price_minor: int
    total_minor: int
