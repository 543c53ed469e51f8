"""Pieces every portal type shares: money, the contractor a record belongs to, and the
contractor filter every portal list takes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import strawberry
from strawberry import relay

from app.context import Info
from app.dataloaders.base import then
from app.db import models
from app.schema import compiled
from app.schema.relay import LoadedNode, uuid_of


@strawberry.type(description="An amount in the minor unit of its currency (pence, cents).")
class Money:
    minor: int = strawberry.field(description="1050 is 10.50 in GBP.")
    currency: str = strawberry.field(description="ISO 4217, e.g. GBP.")


@strawberry.type(description="A business the signed-in user is a customer of.")
class Contractor(LoadedNode):
    loader_name = "tenant_by_id"
    id: relay.NodeID[str]
    name: str
    slug: str = strawberry.field(description="The business's own portal address part.")
    accent_colour: str | None = strawberry.field(description="#RRGGBB, for the portal's look.")
    time_zone: str = strawberry.field(
        description="The business's IANA time zone (Europe/London): the portal shows times in it."
    )
    currency: str = strawberry.field(description="ISO 4217 (GBP): what the business charges in.")

    @classmethod
    def from_row(cls, row: models.Tenant) -> Contractor:
        return cls(
            id=str(row.id),
            name=row.name,
            slug=row.slug,
            accent_colour=row.accent_colour,
            time_zone=row.time_zone,
            currency=row.currency,
        )


compiled.register(
    "Contractor",
    compiled.Source(
        models.Tenant,
        {
            "id": compiled.node_id("Contractor"),
            "name": compiled.column("name"),
            "slug": compiled.column("slug"),
            "accentColour": compiled.column("accent_colour"),
            "timeZone": compiled.column("time_zone"),
            "currency": compiled.column("currency"),
        },
    ),
)


def money(minor: compiled.Leaf, currency: compiled.Leaf) -> compiled.Embedded:
    """A `Money` in SQL, from an amount and a currency."""
    return compiled.Embedded({"minor": minor, "currency": currency})


def contractor_sql() -> compiled.One:
    """A record's `contractor` in SQL: the business it belongs to."""
    return compiled.One("Contractor", models.Tenant, lambda row, tenant: tenant.id == row.tenant_id)


def contractor_of(info: Info, tenant_id: uuid.UUID) -> Contractor | Awaitable[Contractor]:
    """The business a record belongs to: at once when its page loaded it already."""
    return then(info.context.loaders.tenant_by_id.get(tenant_id), _contractor)


def _contractor(row: models.Tenant | None) -> Contractor:
    assert row is not None, "a record the viewer can read belongs to a tenant it can read"
    return Contractor.from_row(row)


def contractor_filter(contractor: strawberry.ID | None) -> uuid.UUID | None:
    """The tenant a `contractor` argument names; a contractor the viewer is not a customer
    of simply matches nothing, as the data layer never reaches it."""
    if contractor is None:
        return None
    return uuid_of(contractor, "Contractor", field="contractor")


CONTRACTOR_ARGUMENT = strawberry.argument(
    description="Only this contractor's; all of them when left out."
)
