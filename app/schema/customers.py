"""Customers, their sites and their contacts, as the office sees them."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.resolvers.customers import ShownPortalStatus, portal_status
from app.schema.permissions import ContactKindEnum
from app.schema.relay import LoadedNode

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
        if self.row.site_id is None:
            return None
        row = await info.context.loaders.site_by_id.load(self.row.site_id)
        return Site.from_row(row) if row is not None else None


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

    @strawberry.field(description="The contacts at this site.")
    async def contacts(self, info: Info) -> list[Contact]:
        rows = await info.context.loaders.contacts_by_site_id.load(self.row.id)
        return [Contact.from_row(row) for row in rows]


@strawberry.type(description="A customer of the business.")
class Customer(LoadedNode):
    loader_name = "customer_by_id"
    id: relay.NodeID[str]
    name: str
    portal_identifier: str = strawberry.field(
        description="The customer's own portal address part; unique within the business."
    )
    portal_enabled: bool
    created_at: datetime
    row: strawberry.Private[models.Customer]

    @classmethod
    def from_row(cls, row: models.Customer) -> Customer:
        return cls(
            id=str(row.id),
            name=row.name,
            portal_identifier=row.portal_identifier,
            portal_enabled=row.portal_enabled,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(
        description="Whether this customer's users can use the portal now; if not, why not."
    )
    async def portal_status(self, info: Info) -> PortalStatus:  # type: ignore[valid-type]
        tenant = await info.context.loaders.tenant_by_id.load(self.row.tenant_id)
        assert tenant is not None, "staff read their own tenant"
        return portal_status(tenant, self.row)

    @strawberry.field(description="Company and site contacts of this customer, by name.")
    async def contacts(self, info: Info) -> list[Contact]:
        rows = await info.context.loaders.contacts_by_customer_id.load(self.row.id)
        return [Contact.from_row(row) for row in rows]

    @strawberry.field(description="This customer's sites, by name.")
    async def sites(self, info: Info) -> list[Site]:
        rows = await info.context.loaders.sites_by_customer_id.load(self.row.id)
        return [Site.from_row(row) for row in rows]
