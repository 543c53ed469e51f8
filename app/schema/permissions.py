"""Field guards. Each prints itself as a directive in the SDL, so the SDL says who may read
what, and the server enforces exactly that."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location

from app.auth.viewer import PortalViewer, StaffViewer
from app.context import Info
from app.db.models import PortalModule, StaffRole
from app.errors import AppError, ErrorCode, Unauthenticated

StaffRoleEnum = strawberry.enum(StaffRole, name="StaffRole", description="The staff ladder.")
PortalModuleEnum = strawberry.enum(
    PortalModule, name="PortalModule", description="A part of the portal a user may be given."
)


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresRole",
    description="Only staff at this role or above may use this field.",
)
class RequiresRoleDirective:
    min: StaffRoleEnum  # type: ignore[valid-type]


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresPortalUser",
    description="Only a signed-in portal user may use this field.",
)
class RequiresPortalUserDirective:
    pass


class RequiresRole(BasePermission):
    message = "Your role does not allow this."

    def __init__(self, minimum: StaffRole) -> None:
        self.minimum = minimum
        self._schema_directive = RequiresRoleDirective(min=minimum)  # type: ignore[misc]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        if not isinstance(viewer, StaffViewer):
            raise Unauthenticated("Sign in as staff to use this.")
        return viewer.role.at_least(self.minimum)

    def on_unauthorized(self) -> None:
        raise AppError(
            f"This needs the {self.minimum.value} role or higher.", code=ErrorCode.ROLE_FORBIDDEN
        )


class RequiresPortalUser(BasePermission):
    message = "Sign in to the portal to use this."
    _schema_directive = RequiresPortalUserDirective()

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return isinstance(info.context.viewer, PortalViewer)

    def on_unauthorized(self) -> None:
        raise Unauthenticated(self.message)


def guarded(*permissions: BasePermission) -> list[FieldExtension]:
    """The extension list of a guarded field; it goes last, so it runs first."""
    return [PermissionExtension(permissions=list(permissions), use_directives=True)]


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="public",
    description="Anyone may use this field, signed in or not; it reveals nothing private.",
)
class PublicDirective:
    pass


class Public(BasePermission):
    """Marks a field that is open on purpose, so a field somebody forgot to guard stands out."""

    _schema_directive = PublicDirective()

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return True
