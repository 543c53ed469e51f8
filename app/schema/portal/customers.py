"""The customers a portal user speaks for, their sites and their contacts."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import date

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import ContactKind, PortalModule
from app.schema.permissions import (
    ContactKindEnum,
    PortalModuleEnum,
    RequiresContact,
    RequiresModule,
    guarded,
    module_type,
    portal_viewer,
)
from app.schema.portal.common import Contractor, Money, contractor_of
from app.schema.portal.invoices import Invoice
from app.schema.relay import LoadedNode


@strawberry.type(description="A person at your company, for the whole company or one site.")
class Contact(LoadedNode):
    loader_name = "contact_by_id"
    id: relay.NodeID[str]
    kind: ContactKindEnum  # type: ignore[valid-type]
    name: str
    email: str | None
    phone: str | None
    portal_access: bool = strawberry.field(description="Whether this contact may use the portal.")
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
            row=row,
        )

    @strawberry.field(description="The site of a site contact; null for a company contact.")
    async def site(self, info: Info) -> Site | None:
        return await site_of(info, self.row.site_id)


@strawberry.type(
    description="A product on hire at one of your sites (a portable toilet, a skip...).",
    directives=module_type(PortalModule.REQUESTS),
)
class Rental(LoadedNode):
    loader_name = "rental_by_id"
    id: relay.NodeID[str]
    reference: str
    description: str
    starts_on: date
    ends_on: date | None
    row: strawberry.Private[models.Rental]

    @classmethod
    def from_row(cls, row: models.Rental) -> Rental:
        return cls(
            id=str(row.id),
            reference=row.reference,
            description=row.description,
            starts_on=row.starts_on,
            ends_on=row.ends_on,
            row=row,
        )


@strawberry.type(description="A property of your company's where work is done.")
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
            row=row,
        )

    @strawberry.field(description="The customer this site belongs to.")
    async def customer(self, info: Info) -> Customer:
        row = await info.context.loaders.customer_by_id.load(self.row.customer_id)
        assert row is not None, "a site the viewer can read has a customer it can read"
        return Customer.from_row(row)

    @strawberry.field(description="The contacts at this site.")
    async def contacts(self, info: Info) -> list[Contact]:
        rows = await info.context.loaders.contacts_by_site_id.load(self.row.id)
        return [Contact.from_row(row) for row in rows]

    @strawberry.field(
        description="What you have on hire at this site, to ask for a service on.",
        extensions=guarded(RequiresModule(PortalModule.REQUESTS)),
    )
    async def rentals(self, info: Info) -> list[Rental]:
        rows = await info.context.loaders.rentals_by_site_id.load(self.row.id)
        return [Rental.from_row(row) for row in rows]


@strawberry.type(description="A company you speak for, as a customer of one contractor.")
class Customer(LoadedNode):
    loader_name = "customer_by_id"
    id: relay.NodeID[str]
    name: str
    portal_identifier: str = strawberry.field(
        description="Your company's own portal address part at this contractor."
    )
    row: strawberry.Private[models.Customer]

    @classmethod
    def from_row(cls, row: models.Customer) -> Customer:
        return cls(id=str(row.id), name=row.name, portal_identifier=row.portal_identifier, row=row)

    @strawberry.field(description="The business you are a customer of.", graphql_type=Contractor)
    def contractor(self, info: Info) -> Contractor | Awaitable[Contractor]:
        return contractor_of(info, self.row.tenant_id)

    @strawberry.field(description="The parts of the portal you may use for this customer.")
    def modules(self, info: Info) -> list[PortalModuleEnum]:  # type: ignore[valid-type]
        return sorted(
            {
                module
                for grant in portal_viewer(info).grants
                if grant.customer_id == self.row.id
                for module in grant.modules
            },
            key=list(PortalModule).index,
        )

    @strawberry.field(
        description="COMPANY when you speak for the whole customer, SITE for your sites only."
    )
    def contact_kind(self, info: Info) -> ContactKindEnum:  # type: ignore[valid-type]
        mine = [g for g in portal_viewer(info).grants if g.customer_id == self.row.id]
        return ContactKind.COMPANY if any(g.is_company for g in mine) else ContactKind.SITE

    @strawberry.field(
        description="What this customer owes on its outstanding invoices; null when nothing.",
        extensions=guarded(
            RequiresModule(PortalModule.INVOICES), RequiresContact(ContactKind.COMPANY)
        ),
    )
    async def outstanding(self, info: Info) -> Money | None:
        owed = await info.context.loaders.outstanding_by_customer_id.load(self.row.id)
        return Money(minor=owed[0], currency=owed[1]) if owed is not None else None

    @strawberry.field(
        description="How many of your requests here wait for the office's decision.",
        extensions=guarded(RequiresModule(PortalModule.REQUESTS)),
    )
    async def open_request_count(self, info: Info) -> int:
        return await info.context.loaders.open_request_count_by_customer_id.load(self.row.id)

    @strawberry.field(description="The sites you may see, by name.")
    async def sites(self, info: Info) -> list[Site]:
        rows = await info.context.loaders.sites_by_customer_id.load(self.row.id)
        return [Site.from_row(row) for row in rows]

    @strawberry.field(description="The contacts you may see, by name.")
    async def contacts(self, info: Info) -> list[Contact]:
        rows = await info.context.loaders.contacts_by_customer_id.load(self.row.id)
        return [Contact.from_row(row) for row in rows]

    @strawberry.field(
        description="This customer's invoices you may see, oldest first.",
        extensions=guarded(
            RequiresModule(PortalModule.INVOICES), RequiresContact(ContactKind.COMPANY)
        ),
    )
    async def invoices(self, info: Info) -> list[Invoice]:
        rows = await info.context.loaders.invoices_by_customer_id.load(self.row.id)
        return [Invoice.from_row(row) for row in rows]


async def site_of(info: Info, site_id: uuid.UUID | None) -> Site | None:
    """The site by id, or None when there is none or the viewer may not see it."""
    if site_id is None:
        return None
    row = await info.context.loaders.site_by_id.load(site_id)
    return Site.from_row(row) if row is not None else None
