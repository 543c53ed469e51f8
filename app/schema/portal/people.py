"""Managing a customer's people from the portal (E11, E12); every field needs USERS."""

from __future__ import annotations

import strawberry

from app.context import Info
from app.db.models import PortalModule
from app.resolvers import portal_people
from app.schema.customers import given
from app.schema.permissions import PortalModuleEnum, RequiresModule, guarded
from app.schema.portal.customers import Contact
from app.schema.portal.users import PortalUser
from app.schema.relay import uuid_of

MANAGES_PEOPLE = guarded(RequiresModule(PortalModule.USERS))


@strawberry.input(name="ContactInput", description="A new contact at one of your companies.")
class NewContact:
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Which of your companies; needed only when you manage several.",
    )
    site_id: strawberry.ID | None = strawberry.field(
        default=None, description="The site of a site contact; left out for a company contact."
    )
    name: str
    email: str | None = None
    phone: str | None = None
    portal_access: bool = strawberry.field(
        default=False, description="Invite them to the portal by email straight away."
    )


@strawberry.input(description="Changes to a contact; a field left out stays as it is, null clears.")
class ContactChanges:
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET


@strawberry.input(description="Someone to invite to the portal, with the modules to give them.")
class PortalUserInput:
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Which of your companies; needed only when you manage several.",
    )
    site_id: strawberry.ID | None = strawberry.field(
        default=None, description="Their site, for a site contact; left out for the company."
    )
    name: str
    email: str
    username: str | None = strawberry.field(
        default=None, description="A username to propose; they may choose another."
    )
    modules: list[PortalModuleEnum] = strawberry.field(  # type: ignore[valid-type]
        description="What they may use; never more than you may use yourself."
    )


@strawberry.type
class PeopleMutation:
    @strawberry.mutation(
        description="Adds a contact to one of your companies; the office sees it too.",
        extensions=MANAGES_PEOPLE,
    )
    async def add_contact(self, info: Info, input: NewContact) -> Contact:
        row = await portal_people.add_contact(
            info.context,
            customer_id=uuid_of(input.customer_id, "Customer", field="customerId")
            if input.customer_id is not None
            else None,
            site_id=uuid_of(input.site_id, "Site", field="siteId")
            if input.site_id is not None
            else None,
            values={"name": input.name, "email": input.email, "phone": input.phone},
            portal_access=input.portal_access,
        )
        return Contact.from_row(row)

    @strawberry.mutation(description="Changes a contact's details.", extensions=MANAGES_PEOPLE)
    async def update_contact(self, info: Info, id: strawberry.ID, input: ContactChanges) -> Contact:
        row = await portal_people.update_contact(
            info.context, contact_id=uuid_of(id, "Contact", field="id"), values=given(input)
        )
        return Contact.from_row(row)

    @strawberry.mutation(
        description="Deletes a contact, for the office too; requests they sent stay. Answers"
        " the id deleted.",
        extensions=MANAGES_PEOPLE,
    )
    async def delete_contact(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        await portal_people.delete_contact(
            info.context, contact_id=uuid_of(id, "Contact", field="id")
        )
        return id

    @strawberry.mutation(
        description="Switches a contact's portal access: on invites them by email, off ends"
        " their access at once.",
        extensions=MANAGES_PEOPLE,
    )
    async def set_contact_portal_access(
        self, info: Info, id: strawberry.ID, enabled: bool
    ) -> Contact:
        row = await portal_people.set_contact_access(
            info.context, contact_id=uuid_of(id, "Contact", field="id"), enabled=enabled
        )
        return Contact.from_row(row)

    @strawberry.mutation(
        description="Invites someone to the portal by email with the modules given; they"
        " choose their own password.",
        extensions=MANAGES_PEOPLE,
    )
    async def add_portal_user(self, info: Info, input: PortalUserInput) -> PortalUser:
        row = await portal_people.add_user(
            info.context,
            customer_id=uuid_of(input.customer_id, "Customer", field="customerId")
            if input.customer_id is not None
            else None,
            site_id=uuid_of(input.site_id, "Site", field="siteId")
            if input.site_id is not None
            else None,
            name=input.name,
            email=input.email,
            username=input.username,
            modules=list(input.modules),
        )
        return PortalUser.from_row(row)

    @strawberry.mutation(
        description="Gives a user exactly these modules, from their next request on.",
        extensions=MANAGES_PEOPLE,
    )
    async def set_portal_user_modules(
        self,
        info: Info,
        id: strawberry.ID,
        modules: list[PortalModuleEnum],  # type: ignore[valid-type]
    ) -> PortalUser:
        row = await portal_people.set_user_modules(
            info.context, membership_id=uuid_of(id, "PortalUser", field="id"), modules=modules
        )
        return PortalUser.from_row(row)

    @strawberry.mutation(
        description="Stops a user signing in for your company; the contact stays. Answers the"
        " id removed.",
        extensions=MANAGES_PEOPLE,
    )
    async def remove_portal_user(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        await portal_people.remove_user(
            info.context, membership_id=uuid_of(id, "PortalUser", field="id")
        )
        return id

    @strawberry.mutation(
        description="Sends an invited user a fresh invitation; the earlier link stops working.",
        extensions=MANAGES_PEOPLE,
    )
    async def resend_portal_user_invitation(self, info: Info, id: strawberry.ID) -> PortalUser:
        row = await portal_people.resend_user_invitation(
            info.context, membership_id=uuid_of(id, "PortalUser", field="id")
        )
        return PortalUser.from_row(row)
