"""What a sign-in page shows before anyone signs in (T5, T6)."""

from __future__ import annotations

import strawberry

from app.context import Info
from app.files import logo_url
from app.resolvers.branding import branding_for
from app.schema.permissions import Public, guarded


@strawberry.type(description="A business's name, logo and colour, or its customer's own.")
class Branding:
    name: str
    accent_colour: str | None = strawberry.field(description="#RRGGBB.")
    logo_url: str | None = strawberry.field(description="Where the logo is served, if any.")


@strawberry.type
class BrandingQuery:
    @strawberry.field(
        description="The branding for a sign-in page, by the business's portal address part and,"
        " for a customer's own page, its portal identifier; null when there is no such portal.",
        extensions=guarded(Public()),
    )
    async def branding(
        self, info: Info, business: str, customer: str | None = None
    ) -> Branding | None:
        found = await branding_for(info.context.db, business=business, customer=customer)
        if found is None:
            return None
        return Branding(
            name=found.name,
            accent_colour=found.accent_colour,
            logo_url=(
                logo_url(info.context.settings, found.tenant_id, found.logo_customer_id)
                if found.logo_file_id is not None
                else None
            ),
        )
