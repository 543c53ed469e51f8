"""Who is signed in: staff users and portal accounts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry import relay

from app.auth.viewer import PortalViewer
from app.context import Info
from app.db import models
from app.schema.permissions import StaffRoleEnum
from app.schema.relay import LoadedNode, parse_uuid


@strawberry.interface(description="Whoever made a change: a staff user, or a portal user.")
class Actor:
    name: str
    email: str


@strawberry.type(description="A member of the office staff.")
class StaffUser(LoadedNode, Actor):
    loader_name = "staff_user_by_id"
    id: relay.NodeID[str]
    name: str
    email: str
    role: StaffRoleEnum  # type: ignore[valid-type]

    @classmethod
    def from_row(cls, row: models.StaffUser) -> StaffUser:
        return cls(id=str(row.id), name=row.name, email=row.email, role=row.role)


@strawberry.type(
    description="A customer's person who signs in to the portal, as the office sees them in the"
    " audit trail."
)
class PortalActor(Actor):
    id: strawberry.ID = strawberry.field(
        description="Its global id: give it to `auditTrail(actor:)` for its changes."
    )
    name: str
    email: str

    @classmethod
    def from_row(cls, row: models.PortalAccount) -> PortalActor:
        return cls(
            id=strawberry.ID(relay.to_base64("PortalActor", str(row.id))),
            name=row.name,
            email=row.email,
        )


@strawberry.type(description="The portal sign-in of one person, across every contractor.")
class PortalAccount(relay.Node):
    id: relay.NodeID[str]
    name: str
    email: str
    username: str | None

    @classmethod
    def from_viewer(cls, viewer: PortalViewer) -> PortalAccount:
        return cls(
            id=str(viewer.account_id),
            name=viewer.name,
            email=viewer.email,
            username=viewer.username,
        )

    @classmethod
    def from_row(cls, row: models.PortalAccount) -> PortalAccount:
        return cls(id=str(row.id), name=row.name, email=row.email, username=row.username)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PortalAccount | None]:
        # A portal user can see exactly one account: their own.
        viewer = info.context.viewer
        return [
            cls.from_viewer(viewer)
            if isinstance(viewer, PortalViewer) and parse_uuid(str(node_id)) == viewer.account_id
            else None
            for node_id in node_ids
        ]


def portal_account_of(viewer: Any) -> PortalAccount | None:
    return PortalAccount.from_viewer(viewer) if isinstance(viewer, PortalViewer) else None
