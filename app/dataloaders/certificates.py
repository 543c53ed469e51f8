from __future__ import annotations

from app.dataloaders.base import ByIdLoader
from app.db.models import Certificate


class CertificateByIdLoader(ByIdLoader[Certificate]):
    model = Certificate
