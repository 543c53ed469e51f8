"""Who is asking: nobody yet, a staff user of one tenant, or a portal account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.db.models import StaffRole
from app.db.reach import Grant
from app.db.scope import NOBODY, Scope
from app.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class Anonymous:
    pass


@dataclass(frozen=True, slots=True)
class StaffViewer:
    session_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: StaffRole
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class PortalViewer:
    session_id: uuid.UUID
    account_id: uuid.UUID
    name: str
    email: str
    username: str | None
    # One per membership in good standing, each with the modules in effect there.
    grants: tuple[Grant, ...]
    # Why this account can use nothing right now (the plan, a switch), when it cannot.
    refusal: ErrorCode | None = None

    @property
    def tenant_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(grant.tenant_id for grant in self.grants)


Viewer = Anonymous | StaffViewer | PortalViewer

ANONYMOUS = Anonymous()


def scope_for(viewer: Viewer) -> Scope:
    """The tenants a viewer's queries may reach; an anonymous viewer reaches none."""
    match viewer:
        case StaffViewer(tenant_id=tenant_id):
            return Scope.tenant(tenant_id)
        case PortalViewer(grants=grants):
            return Scope.portal(grants)
        case _:
            return NOBODY
