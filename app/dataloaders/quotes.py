from __future__ import annotations

from app.dataloaders.base import ByIdLoader, ByParentLoader
from app.db.models import Quote, QuoteLine


class QuoteByIdLoader(ByIdLoader[Quote]):
    model = Quote


class QuoteLinesByQuoteIdLoader(ByParentLoader[QuoteLine]):
    model = QuoteLine
    parent = "quote_id"
    order_by = "position"
