"""A customer's people, managed from the portal (E11, E12): users with the USERS module."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import PortalModule
from app.schema.permissions import PortalModuleEnum, module_type
from app.schema.portal.customers import Contact
from app.schema.relay import LoadedNode


@strawberry.enum(description="Whether a portal user has accepted their invitation.")
class PortalUserStatus(enum.Enum):
    INVITED = "INVITED"
    ACTIVE = "ACTIVE"


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

    @strawberry.field(description="INVITED until they accept their invitation, then ACTIVE.")
    def status(self) -> PortalUserStatus:
        return PortalUserStatus.INVITED if self.row.account_id is None else PortalUserStatus.ACTIVE

    @strawberry.field(description="The contact this user signs in as.")
    async def contact(self, info: Info) -> Contact | None:
        row = await info.context.loaders.contact_by_id.load(self.row.contact_id)
        return Contact.from_row(row) if row is not None else None

    @strawberry.field(description="The name they chose; the contact's until they accept.")
    async def name(self, info: Info) -> str:
        account = await self._account(info)
        if account is not None:
            return account.name
        contact = await info.context.loaders.contact_by_id.load(self.row.contact_id)
        return contact.name if contact is not None else ""

    @strawberry.field(description="The address they sign in with, or were invited at.")
    async def email(self, info: Info) -> str:
        account = await self._account(info)
        if account is not None:
            return account.email
        contact = await info.context.loaders.contact_by_id.load(self.row.contact_id)
        return (contact.email or "") if contact is not None else ""

    @strawberry.field(description="Their username; the one proposed until they accept.")
    async def username(self, info: Info) -> str | None:
        account = await self._account(info)
        return account.username if account is not None else self.row.invited_username

    async def _account(self, info: Info) -> models.PortalAccount | None:
        if self.row.account_id is None:
            return None
        return await info.context.loaders.portal_account_by_id.load(self.row.account_id)
