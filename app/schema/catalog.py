"""Requestable products and services, as the office manages them (S6)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from app.context import Info
from app.db import models
from app.db.models import StaffRole
from app.resolvers import catalog
from app.schema.permissions import RequiresRole, guarded
from app.schema.relay import LoadedNode, connection, uuid_of

RequestableKind = strawberry.enum(
    models.RequestableKind,
    name="RequestableKind",
    description="A product goes on hire (a toilet, a skip); a service is work done.",
)

# S1: requestable products and services are portal settings, for MANAGER and above.
CATALOG_ROLE = StaffRole.MANAGER


@strawberry.type(description="A product or service customers may ask for in the portal.")
class RequestableItem(LoadedNode):
    loader_name = "requestable_item_by_id"
    # Staff reach it through the requests inbox (and a manager through the catalogue).
    visible_to = RequiresRole(StaffRole.ASSISTANT_MANAGER)
    id: relay.NodeID[str]
    kind: RequestableKind  # type: ignore[valid-type]
    name: str
    show_in_portal: bool = strawberry.field(
        description="Whether customers can pick it in new requests; hidden items stay on old ones."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.RequestableItem) -> RequestableItem:
        return cls(
            id=str(row.id),
            kind=row.kind,
            name=row.name,
            show_in_portal=row.show_in_portal,
            created_at=row.created_at,
        )


@strawberry.type
class CatalogQuery:
    @strawberry.field(
        description="Requestable products and services, by name; none is ever deleted.",
        extensions=guarded(RequiresRole(CATALOG_ROLE)),
    )
    async def requestable_items(
        self,
        info: Info,
        kind: RequestableKind | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[RequestableItem]:
        page = await catalog.items_page(info.context, kind=kind, first=first, after=after)
        return connection(page, RequestableItem.from_row)


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(
        description="Add a requestable product or service.",
        extensions=guarded(RequiresRole(CATALOG_ROLE)),
    )
    async def create_requestable_item(
        self,
        info: Info,
        kind: RequestableKind,  # type: ignore[valid-type]
        name: str,
        show_in_portal: bool = True,
    ) -> RequestableItem:
        row = await catalog.create_item(
            info.context, kind=kind, name=name, show_in_portal=show_in_portal
        )
        return RequestableItem.from_row(row)

    @strawberry.mutation(
        description="Rename a requestable item; requests keep the name they were sent with.",
        extensions=guarded(RequiresRole(CATALOG_ROLE)),
    )
    async def rename_requestable_item(
        self, info: Info, id: strawberry.ID, name: str
    ) -> RequestableItem:
        row = await catalog.change_item(
            info.context, item_id=uuid_of(id, "RequestableItem", field="id"), name=name
        )
        return RequestableItem.from_row(row)

    @strawberry.mutation(
        description="Show a requestable item in the portal, or hide it from new requests.",
        extensions=guarded(RequiresRole(CATALOG_ROLE)),
    )
    async def set_requestable_item_shown_in_portal(
        self, info: Info, id: strawberry.ID, shown: bool
    ) -> RequestableItem:
        row = await catalog.change_item(
            info.context,
            item_id=uuid_of(id, "RequestableItem", field="id"),
            show_in_portal=shown,
        )
        return RequestableItem.from_row(row)
