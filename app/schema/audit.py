"""The audit trail as staff read it (S10)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.errors import NotFound
from app.resolvers import audit
from app.schema.accounts import StaffUser
from app.schema.permissions import RequiresRole, guarded
from app.schema.relay import LoadedNode, connection


@strawberry.enum(description="Who made a change.")
class ActorKind(enum.Enum):
    STAFF = "STAFF"
    PORTAL = "PORTAL"
    SYSTEM = "SYSTEM"


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
    def actor_kind(self) -> ActorKind:
        if self.row.actor_staff_id is not None:
            return ActorKind.STAFF
        if self.row.actor_account_id is not None:
            return ActorKind.PORTAL
        return ActorKind.SYSTEM

    @strawberry.field(description="The staff user who made the change, when staff did.")
    async def actor(self, info: Info) -> StaffUser | None:
        if self.row.actor_staff_id is None:
            return None
        row = await info.context.loaders.staff_user_by_id.load(self.row.actor_staff_id)
        return StaffUser.from_row(row) if row is not None else None


@strawberry.type(description="How a record was last changed; staff see here what customers did.")
class LastChange:
    at: datetime
    action: str
    actor_kind: ActorKind
    actor: StaffUser | None

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
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[AuditEntry]:
        page = await audit.audit_page(
            info.context,
            first=first,
            after=after,
            subject_id=_subject_uuid(subject_id) if subject_id is not None else None,
        )
        return connection(page, AuditEntry.from_row)
