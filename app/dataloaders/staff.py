from __future__ import annotations

from app.dataloaders.base import ByIdLoader
from app.db.models import StaffUser


class StaffUserByIdLoader(ByIdLoader[StaffUser]):
    model = StaffUser
