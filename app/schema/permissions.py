"""Field guards. Each prints itself as a directive in the SDL, so the SDL says who may read
what, and the server enforces exactly that."""

from __future__ import annotations

from typing import Any, final

import strawberry
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location

from app.auth.viewer import PortalViewer, StaffViewer
from app.context import Info
from app.db.models import ContactKind, PortalModule, StaffRole
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


class ViewerPermission(BasePermission):
    """A guard that decides from the viewer alone, never from the row: a trusted query's
    plan checks it once per request, not once per row. A subclass says `allows`; it is
    never handed the row, so it cannot come to depend on one."""

    def allows(self, info: Info, **kwargs: Any) -> bool:
        raise NotImplementedError

    @final
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return self.allows(info, **kwargs)


class RequiresRole(ViewerPermission):
    message = "Your role does not allow this."

    def __init__(self, minimum: StaffRole) -> None:
        self.minimum = minimum
        self._schema_directive = RequiresRoleDirective(min=minimum)  # type: ignore[misc]

    def allows(self, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        if not isinstance(viewer, StaffViewer):
            raise Unauthenticated("Sign in as staff to use this.")
        return viewer.role.at_least(self.minimum)

    def on_unauthorized(self) -> None:
        raise AppError(
            f"This needs the {self.minimum.value} role or higher.", code=ErrorCode.ROLE_FORBIDDEN
        )


_REFUSALS = {
    ErrorCode.PORTAL_NOT_IN_PLAN: "Your contractor's plan does not include the customer portal.",
    ErrorCode.PORTAL_DISABLED: "Your portal access is switched off.",
}


def portal_viewer(info: Info) -> PortalViewer:
    """The signed-in portal viewer, or the error that says why there is none to serve."""
    viewer = info.context.viewer
    if not isinstance(viewer, PortalViewer):
        raise Unauthenticated("Sign in to the portal to use this.")
    if viewer.refusal is not None:
        raise AppError(_REFUSALS[viewer.refusal], code=viewer.refusal)
    return viewer


class RequiresPortalUser(ViewerPermission):
    _schema_directive = RequiresPortalUserDirective()

    def allows(self, info: Info, **kwargs: Any) -> bool:
        return bool(portal_viewer(info).grants)


ContactKindEnum = strawberry.enum(
    ContactKind,
    name="ContactKind",
    description="A company contact speaks for the whole customer; a site contact for one site.",
)


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION, Location.OBJECT],
    name="requiresModule",
    description=(
        "On a field: only portal users with this module, at some customer, may use it; the"
        " rows it gives are those of the customers where they have it. On a type: the module"
        " its data belongs to, so every field giving it carries the same directive."
    ),
)
class RequiresModuleDirective:
    module: PortalModuleEnum  # type: ignore[valid-type]


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresContact",
    description=(
        "Only portal users who are this kind of contact, at some customer, may use this field."
    ),
)
class RequiresContactDirective:
    kind: ContactKindEnum  # type: ignore[valid-type]


class RequiresModule(ViewerPermission):
    def __init__(self, module: PortalModule) -> None:
        self.module = module
        self._schema_directive = RequiresModuleDirective(module=module)  # type: ignore[misc]

    def allows(self, info: Info, **kwargs: Any) -> bool:
        return any(self.module in grant.modules for grant in portal_viewer(info).grants)

    def on_unauthorized(self) -> None:
        raise AppError(
            f"Your portal access does not include {self.module.value.lower()}.",
            code=ErrorCode.MODULE_FORBIDDEN,
        )


class RequiresContact(ViewerPermission):
    def __init__(self, kind: ContactKind) -> None:
        self.kind = kind
        self._schema_directive = RequiresContactDirective(kind=kind)  # type: ignore[misc]

    def allows(self, info: Info, **kwargs: Any) -> bool:
        wanted = self.kind is ContactKind.COMPANY
        return any(grant.is_company == wanted for grant in portal_viewer(info).grants)

    def on_unauthorized(self) -> None:
        raise AppError(
            f"Only {self.kind.value.lower()} contacts may use this.",
            code=ErrorCode.CONTACT_FORBIDDEN,
        )


def module_type(module: PortalModule) -> list[object]:
    """The directives of a portal type whose data belongs to `module`."""
    return [RequiresModuleDirective(module=module)]


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


class Public(ViewerPermission):
    """Marks a field that is open on purpose, so a field somebody forgot to guard stands out."""

    _schema_directive = PublicDirective()

    def allows(self, info: Info, **kwargs: Any) -> bool:
        return True
