from __future__ import annotations

from app.dataloaders.base import ByIdLoader, ByParentLoader
from app.db.models import Rental


class RentalByIdLoader(ByIdLoader[Rental]):
    model = Rental


class RentalsBySiteIdLoader(ByParentLoader[Rental]):
    model = Rental
    parent = "site_id"
    order_by = "reference"
