"""Certificates in the portal (E8): users with the CERTIFICATES module."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.files.certificates import certificate_link
from app.schema.permissions import module_type, portal_viewer
from app.schema.portal.common import Contractor, contractor_of
from app.schema.relay import LoadedNode


@strawberry.type(
    description="A compliance certificate (gas safety, waste transfer...).",
    directives=module_type(PortalModule.CERTIFICATES),
)
class Certificate(LoadedNode):
    loader_name = "certificate_by_id"
    id: relay.NodeID[str]
    number: str
    title: str
    issued_on: date
    expires_on: date | None
    row: strawberry.Private[models.Certificate]

    @classmethod
    def from_row(cls, row: models.Certificate) -> Certificate:
        return cls(
            id=str(row.id),
            number=row.number,
            title=row.title,
            issued_on=row.issued_on,
            expires_on=row.expires_on,
            row=row,
        )

    @strawberry.field(
        description="Where to download the document: a link for you alone, good for five minutes."
    )
    def download_url(self, info: Info) -> str:
        return certificate_link(
            info.context.settings,
            account_id=portal_viewer(info).account_id,
            certificate_id=self.row.id,
        )

    @strawberry.field(description="The business that issued it.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)
