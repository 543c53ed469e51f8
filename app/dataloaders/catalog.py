from __future__ import annotations

from app.dataloaders.base import ByIdLoader
from app.db.models import RequestableItem


class RequestableItemByIdLoader(ByIdLoader[RequestableItem]):
    model = RequestableItem
