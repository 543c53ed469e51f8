from __future__ import annotations

from app.dataloaders.base import ByIdLoader
from app.db.models import Rental


class RentalByIdLoader(ByIdLoader[Rental]):
    model = Rental
