"""Portal users of your company (E12): users with the USERS module."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.schema.permissions import PortalModuleEnum, module_type
from app.schema.portal.customers import Contact
from app.schema.relay import LoadedNode


@strawberry.type(
    description="Someone who may sign in to the portal as one of your contacts.",
    directives=module_type(PortalModule.USERS),
)
class PortalUser(LoadedNode):
    loader_name = "portal_membership_by_id"
    id: relay.NodeID[str]
    module_override: list[PortalModuleEnum] | None = strawberry.field(  # type: ignore[valid-type]
        description="The modules this user is narrowed to; null when not narrowed."
    )
    created_at: datetime
    row: strawberry.Private[models.PortalMembership]

    @classmethod
    def from_row(cls, row: models.PortalMembership) -> PortalUser:
        return cls(
            id=str(row.id),
            module_override=(
                [models.PortalModule(m) for m in row.module_override]
                if row.module_override is not None
                else None
            ),
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="The contact this user signs in as.")
    async def contact(self, info: Info) -> Contact | None:
        row = await info.context.loaders.contact_by_id.load(self.row.contact_id)
        return Contact.from_row(row) if row is not None else None

    @strawberry.field
    async def name(self, info: Info) -> str:
        return (await self._account(info)).name

    @strawberry.field
    async def email(self, info: Info) -> str:
        return (await self._account(info)).email

    @strawberry.field
    async def username(self, info: Info) -> str | None:
        return (await self._account(info)).username

    async def _account(self, info: Info) -> models.PortalAccount:
        account = await info.context.loaders.portal_account_by_id.load(self.row.account_id)
        assert account is not None, "a membership the viewer can read has an account it can read"
        return account
