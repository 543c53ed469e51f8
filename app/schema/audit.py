"""The audit trail as staff read it (S10)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.errors import AppError, NotFound
from app.resolvers import audit
from app.schema.accounts import Actor, PortalActor, StaffUser
from app.schema.permissions import RequiresRole, guarded
from app.schema.relay import LoadedNode, connection

ActorKind = strawberry.enum(audit.ActorKind, name="ActorKind", description="Who made a change.")


@strawberry.type(description="One change: who made it, when, and the values before and after.")
class AuditEntry(LoadedNode):
    loader_name = "audit_entry_by_id"
    visible_to = RequiresRole(StaffRole.MANAGER)
    id: relay.NodeID[str]
    action: str = strawberry.field(description="What was done, such as `request.declined`.")
    subject_type: str = strawberry.field(description="The type of the record changed.")
    created_at: datetime
    before: JSON | None = strawberry.field(description="The changed values before.")
    after: JSON | None = strawberry.field(description="The changed values after.")
    row: strawberry.Private[models.AuditEntry]

    @classmethod
    def from_row(cls, row: models.AuditEntry) -> AuditEntry:
        return cls(
            id=str(row.id),
            action=row.action,
            subject_type=row.subject_type,
            created_at=row.created_at,
            before=JSON(row.before),
            after=JSON(row.after),
            row=row,
        )

    @strawberry.field(description="The global id of the record changed.")
    def subject_id(self) -> strawberry.ID | None:
        if self.row.subject_id is None:
            return None
        return strawberry.ID(relay.to_base64(self.row.subject_type, str(self.row.subject_id)))

    @strawberry.field(description="STAFF, PORTAL (a customer, from the portal) or SYSTEM.")
    def actor_kind(self) -> ActorKind:  # type: ignore[valid-type]
        if self.row.actor_staff_id is not None:
            return ActorKind.STAFF
        if self.row.actor_account_id is not None:
            return ActorKind.PORTAL
        return ActorKind.SYSTEM

    @strawberry.field(
        description="Who made the change: the staff user, or the portal user (`PortalActor`)"
        " behind a change from the portal; null for the system."
    )
    async def actor(self, info: Info) -> Actor | None:
        if self.row.actor_staff_id is not None:
            staff = await info.context.loaders.staff_user_by_id.load(self.row.actor_staff_id)
            return StaffUser.from_row(staff) if staff is not None else None
        if self.row.actor_account_id is not None:
            account = await info.context.loaders.portal_account_by_id.load(
                self.row.actor_account_id
            )
            return PortalActor.from_row(account) if account is not None else None
        return None


@strawberry.type(description="How a record was last changed; staff see here what customers did.")
class LastChange:
    at: datetime
    action: str
    actor_kind: ActorKind  # type: ignore[valid-type]
    actor: Actor | None

    @classmethod
    async def of(cls, info: Info, subject_id: uuid.UUID) -> LastChange | None:
        row = await info.context.loaders.last_change_by_subject_id.load(subject_id)
        if row is None:
            return None
        entry = AuditEntry.from_row(row)
        return cls(
            at=row.created_at,
            action=row.action,
            actor_kind=entry.actor_kind(),
            actor=await entry.actor(info),
        )


def _actor(actor: strawberry.ID | None) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The staff user's or the portal user's id from an actor's global id."""
    if actor is None:
        return None, None
    try:
        global_id = relay.GlobalID.from_id(actor)
        node_id = uuid.UUID(global_id.node_id)
    except (relay.GlobalIDValueError, ValueError) as error:
        raise AppError("Give a StaffUser's or PortalActor's id.", field="actor") from error
    if global_id.type_name == "StaffUser":
        return node_id, None
    if global_id.type_name == "PortalActor":
        return None, node_id
    raise AppError("Give a StaffUser's or PortalActor's id.", field="actor")


def _subject_uuid(subject_id: strawberry.ID) -> uuid.UUID:
    try:
        node_id = relay.GlobalID.from_id(subject_id).node_id
        return uuid.UUID(node_id)
    except (relay.GlobalIDValueError, ValueError) as error:
        raise NotFound("There is no such record.", field="subjectId") from error


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Who changed what and when, newest first: portal access, modules, request "
        "decisions, settings and records. `subjectId` keeps the changes to one record.",
        extensions=guarded(RequiresRole(StaffRole.MANAGER)),
    )
    async def audit_trail(
        self,
        info: Info,
        subject_id: strawberry.ID | None = None,
        actor: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="A StaffUser's or PortalActor's id: theirs only."),
        ] = None,
        actor_kind: ActorKind | None = None,  # type: ignore[valid-type]
        action: Annotated[
            str | None,
            strawberry.argument(
                description="An action (`request.declined`), or a prefix ending in a dot"
                " (`request.`)."
            ),
        ] = None,
        from_: Annotated[
            date | None,
            strawberry.argument(
                name="from", description="The first day, in the business's time zone."
            ),
        ] = None,
        to: Annotated[
            date | None,
            strawberry.argument(description="The last day, in the business's time zone."),
        ] = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[AuditEntry]:
        staff_actor, portal_actor = _actor(actor)
        page = await audit.audit_page(
            info.context,
            first=first,
            after=after,
            criteria=audit.AuditFilter(
                subject_id=_subject_uuid(subject_id) if subject_id is not None else None,
                actor_kind=actor_kind,
                staff_actor_id=staff_actor,
                portal_actor_id=portal_actor,
                action=action.strip() if action else None,
                start=from_,
                end=to,
            ),
        )
        return connection(page, AuditEntry.from_row)
