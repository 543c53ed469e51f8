"""Adding a property from the portal (E10)."""

from __future__ import annotations

import strawberry

from app.context import Info
from app.db.models import ContactKind, PortalModule
from app.resolvers.properties import PropertyDraft, add_property
from app.schema.permissions import RequiresContact, RequiresModule, guarded
from app.schema.portal.customers import Site
from app.schema.relay import uuid_of


@strawberry.input(description="A new site of one of your companies.")
class PropertyInput:
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Which of your companies; needed only when you speak for several.",
    )
    name: str
    address_line1: str
    address_line2: str | None = None
    town: str | None = None
    postcode: str | None = None
    uprn: str | None = strawberry.field(default=None, description="Up to 12 digits.")
    is_company_site: bool = False


@strawberry.type
class PropertiesMutation:
    @strawberry.mutation(
        description="Adds a site to one of your companies.",
        extensions=guarded(
            RequiresModule(PortalModule.PROPERTIES), RequiresContact(ContactKind.COMPANY)
        ),
    )
    async def add_property(self, info: Info, input: PropertyInput) -> Site:
        customer_id = (
            uuid_of(input.customer_id, "Customer", field="customerId")
            if input.customer_id is not None
            else None
        )
        site = await add_property(
            info.context,
            customer_id=customer_id,
            draft=PropertyDraft(
                name=input.name,
                address_line1=input.address_line1,
                address_line2=input.address_line2,
                town=input.town,
                postcode=input.postcode,
                uprn=input.uprn,
                is_company_site=input.is_company_site,
            ),
        )
        return Site.from_row(site)
