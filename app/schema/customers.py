"""Customers, their sites and their contacts, as the office sees them."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from app.context import Info
from app.dataloaders.users import PortalStage, PortalState
from app.db import models
from app.db.models import PortalModule, StaffRole
from app.files import logo_url
from app.resolvers import customers
from app.resolvers.customers import ShownPortalStatus, portal_status
from app.schema.audit import LastChange
from app.schema.permissions import ContactKindEnum, PortalModuleEnum, RequiresRole, guarded
from app.schema.relay import LoadedNode, uuid_of

LAST_CHANGE = (
    "The newest recorded change to this record (adding it counts), by staff or by the "
    "customer from the portal."
)

ContactKind = ContactKindEnum

PortalStatus = strawberry.enum(
    ShownPortalStatus,
    name="PortalStatus",
    description="Whether a customer's users can use the portal now, and if not, why not.",
)


@strawberry.type(description="A person at a customer, for the whole company or for one site.")
class Contact(LoadedNode):
    loader_name = "contact_by_id"
    id: relay.NodeID[str]
    kind: ContactKind  # type: ignore[valid-type]
    name: str
    email: str | None
    phone: str | None
    portal_access: bool = strawberry.field(description="Whether this contact may use the portal.")
    updated_at: datetime
    row: strawberry.Private[models.Contact]

    @classmethod
    def from_row(cls, row: models.Contact) -> Contact:
        return cls(
            id=str(row.id),
            kind=row.kind,
            name=row.name,
            email=row.email,
            phone=row.phone,
            portal_access=row.portal_access,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(
        description="The portal modules this contact is narrowed to; null when not narrowed."
    )
    async def portal_modules(self, info: Info) -> list[PortalModuleEnum] | None:  # type: ignore[valid-type]
        memberships = await info.context.loaders.portal_memberships_by_contact_id.load(self.row.id)
        if not memberships or memberships[0].module_override is None:
            return None
        return [PortalModule(value) for value in memberships[0].module_override]

    @strawberry.field(description="The site of a site contact; null for a company contact.")
    async def site(self, info: Info) -> Site | None:
        return await site_of(info, self.row.site_id)

    @strawberry.field(description="Invited, active or switched off, and since when.")
    async def portal_state(self, info: Info) -> ContactPortalState:
        state = await info.context.loaders.portal_state_by_contact_id.load(self.row.id)
        return ContactPortalState.of(state)

    @strawberry.field(description=LAST_CHANGE)
    async def last_change(self, info: Info) -> LastChange | None:
        return await LastChange.of(info, self.row.id)


PortalStageEnum = strawberry.enum(
    PortalStage,
    name="PortalStage",
    description="NOT_INVITED: never given access; INVITED: an invitation is out (or expired)"
    " and not yet accepted; ACTIVE: has signed up; SWITCHED_OFF: access taken away.",
)


@strawberry.type(description="Where a contact stands with the portal.")
class ContactPortalState:
    stage: PortalStageEnum  # type: ignore[valid-type]
    invited_at: datetime | None = strawberry.field(
        description="When the latest invitation was sent."
    )
    invitation_expires_at: datetime | None = strawberry.field(
        description="When the latest invitation's link stops working (or stopped)."
    )
    last_sign_in_at: datetime | None = strawberry.field(
        description="When the contact's account last signed in; null until it has."
    )

    @classmethod
    def of(cls, state: PortalState) -> ContactPortalState:
        return cls(
            stage=state.stage,
            invited_at=state.invited_at,
            invitation_expires_at=state.invitation_expires_at,
            last_sign_in_at=state.last_sign_in_at,
        )


@strawberry.type(description="A property of a customer's where work is done.")
class Site(LoadedNode):
    loader_name = "site_by_id"
    id: relay.NodeID[str]
    name: str
    site_number: str | None
    address_line1: str
    address_line2: str | None
    town: str | None
    postcode: str | None
    uprn: str | None = strawberry.field(description="The Unique Property Reference Number.")
    is_company_site: bool
    updated_at: datetime
    row: strawberry.Private[models.Site]

    @classmethod
    def from_row(cls, row: models.Site) -> Site:
        return cls(
            id=str(row.id),
            name=row.name,
            site_number=row.site_number,
            address_line1=row.address_line1,
            address_line2=row.address_line2,
            town=row.town,
            postcode=row.postcode,
            uprn=row.uprn,
            is_company_site=row.is_company_site,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(description="The contacts at this site.")
    async def contacts(self, info: Info) -> list[Contact]:
        rows = await info.context.loaders.contacts_by_site_id.load(self.row.id)
        return [Contact.from_row(row) for row in rows]

    @strawberry.field(description=LAST_CHANGE)
    async def last_change(self, info: Info) -> LastChange | None:
        return await LastChange.of(info, self.row.id)


@strawberry.type(description="A customer of the business.")
class Customer(LoadedNode):
    loader_name = "customer_by_id"
    id: relay.NodeID[str]
    name: str
    portal_identifier: str = strawberry.field(
        description="The customer's own portal address part; unique within the business."
    )
    portal_enabled: bool = strawberry.field(
        description="This customer's own portal switch; off stops its users' sessions."
    )
    module_override: list[PortalModuleEnum] | None = strawberry.field(  # type: ignore[valid-type]
        description="Narrows the business's default modules for this customer; null: none."
    )
    accent_colour: str | None = strawberry.field(
        description="This customer's own accent colour; null uses the business's."
    )
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[models.Customer]

    @classmethod
    def from_row(cls, row: models.Customer) -> Customer:
        return cls(
            id=str(row.id),
            name=row.name,
            portal_identifier=row.portal_identifier,
            portal_enabled=row.portal_enabled,
            module_override=(
                None
                if row.module_override is None
                else [models.PortalModule(m) for m in row.module_override]
            ),
            accent_colour=row.accent_colour,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(
        description="Whether this customer's users can use the portal now; if not, why not."
    )
    async def portal_status(self, info: Info) -> PortalStatus:  # type: ignore[valid-type]
        tenant = await info.context.loaders.tenant_by_id.load(self.row.tenant_id)
        assert tenant is not None, "staff read their own tenant"
        return portal_status(tenant, self.row)

    @strawberry.field(description="This customer's own logo; null uses the business's.")
    def logo_url(self, info: Info) -> str | None:
        if self.row.logo_file_id is None:
            return None
        return logo_url(info.context.settings, self.row.tenant_id, self.row.id)

    @strawberry.field(description="Company and site contacts of this customer, by name.")
    async def contacts(self, info: Info) -> list[Contact]:
        rows = await info.context.loaders.contacts_by_customer_id.load(self.row.id)
        return [Contact.from_row(row) for row in rows]

    @strawberry.field(description="This customer's sites, by name.")
    async def sites(self, info: Info) -> list[Site]:
        rows = await info.context.loaders.sites_by_customer_id.load(self.row.id)
        return [Site.from_row(row) for row in rows]

    @strawberry.field(description=LAST_CHANGE)
    async def last_change(self, info: Info) -> LastChange | None:
        return await LastChange.of(info, self.row.id)


async def customer_of(info: Info, customer_id: uuid.UUID) -> Customer:
    """The customer a record of the viewer's belongs to; it is always the viewer's too."""
    row = await info.context.loaders.customer_by_id.load(customer_id)
    assert row is not None, "a record the viewer can read has a customer it can read"
    return Customer.from_row(row)


async def site_of(info: Info, site_id: uuid.UUID | None) -> Site | None:
    """The site by id, or None when there is none."""
    if site_id is None:
        return None
    row = await info.context.loaders.site_by_id.load(site_id)
    return Site.from_row(row) if row is not None else None


def given(form: object) -> dict[str, Any]:
    """The fields of an input the client sent, by their Python names; left out is no change."""
    return {
        field.name: getattr(form, field.name)
        for field in dataclasses.fields(form)  # type: ignore[arg-type]
        if getattr(form, field.name) is not strawberry.UNSET
    }


@strawberry.input(description="A customer's own address: its company site's.")
class CompanyAddressInput:
    address_line1: str
    address_line2: str | None = None
    town: str | None = None
    postcode: str | None = None
    uprn: str | None = None


@strawberry.input(description="A new customer.")
class CustomerInput:
    name: str
    address: CompanyAddressInput | None = strawberry.field(
        default=None,
        description="Where the customer is: its company site gets this address (left out, the"
        " site starts without one).",
    )


@strawberry.input(description="Changes to a customer; a field left out stays as it is.")
class CustomerChanges:
    name: str | None = strawberry.UNSET


@strawberry.input(description="A new site.")
class SiteInput:
    name: str
    address_line1: str
    site_number: str | None = None
    address_line2: str | None = None
    town: str | None = None
    postcode: str | None = None
    uprn: str | None = None
    is_company_site: bool = False


@strawberry.input(description="Changes to a site; a field left out stays as it is, null clears.")
class SiteChanges:
    name: str | None = strawberry.UNSET
    address_line1: str | None = strawberry.UNSET
    site_number: str | None = strawberry.UNSET
    address_line2: str | None = strawberry.UNSET
    town: str | None = strawberry.UNSET
    postcode: str | None = strawberry.UNSET
    uprn: str | None = strawberry.UNSET
    is_company_site: bool | None = strawberry.UNSET


@strawberry.input(description="A new contact; email and phone are checked.")
class ContactInput:
    name: str
    email: str | None = None
    phone: str | None = None


@strawberry.input(description="Changes to a contact; a field left out stays as it is, null clears.")
class ContactChanges:
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET


# Office staff who book work keep customer records up to date; the portal switch is higher.
EDITORS = StaffRole.DISPATCHER


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        description="Add a customer with its company site; its portal identifier is made from"
        " its name.",
        extensions=guarded(RequiresRole(EDITORS)),
    )
    async def create_customer(self, info: Info, input: CustomerInput) -> Customer:
        row = await customers.create_customer(
            info.context, name=input.name, address=given(input.address) if input.address else {}
        )
        return Customer.from_row(row)

    @strawberry.mutation(
        description="Change a customer's details.", extensions=guarded(RequiresRole(EDITORS))
    )
    async def update_customer(
        self, info: Info, id: strawberry.ID, input: CustomerChanges
    ) -> Customer:
        row = await customers.update_customer(
            info.context, customer_id=uuid_of(id, "Customer", field="id"), values=given(input)
        )
        return Customer.from_row(row)

    @strawberry.mutation(
        description="Add a site (property) to a customer.",
        extensions=guarded(RequiresRole(EDITORS)),
    )
    async def create_site(self, info: Info, customer_id: strawberry.ID, input: SiteInput) -> Site:
        row = await customers.create_site(
            info.context,
            customer_id=uuid_of(customer_id, "Customer", field="customerId"),
            values=given(input),
        )
        return Site.from_row(row)

    @strawberry.mutation(
        description="Change a site's details.", extensions=guarded(RequiresRole(EDITORS))
    )
    async def update_site(self, info: Info, id: strawberry.ID, input: SiteChanges) -> Site:
        row = await customers.update_site(
            info.context, site_id=uuid_of(id, "Site", field="id"), values=given(input)
        )
        return Site.from_row(row)

    @strawberry.mutation(
        description="Add a contact: for the whole company, or with `siteId` for one site.",
        extensions=guarded(RequiresRole(EDITORS)),
    )
    async def create_contact(
        self,
        info: Info,
        customer_id: strawberry.ID,
        input: ContactInput,
        site_id: strawberry.ID | None = None,
    ) -> Contact:
        row = await customers.create_contact(
            info.context,
            customer_id=uuid_of(customer_id, "Customer", field="customerId"),
            site_id=uuid_of(site_id, "Site", field="siteId") if site_id is not None else None,
            values=given(input),
        )
        return Contact.from_row(row)

    @strawberry.mutation(
        description="Change a contact's name, email or phone.",
        extensions=guarded(RequiresRole(EDITORS)),
    )
    async def update_contact(self, info: Info, id: strawberry.ID, input: ContactChanges) -> Contact:
        row = await customers.update_contact(
            info.context, contact_id=uuid_of(id, "Contact", field="id"), values=given(input)
        )
        return Contact.from_row(row)
