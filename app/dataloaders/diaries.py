from __future__ import annotations

from app.dataloaders.base import ByIdLoader
from app.db.models import DiaryEvent


class DiaryEventByIdLoader(ByIdLoader[DiaryEvent]):
    model = DiaryEvent
