"""Relay conventions shared by both schemas: global ids, `node`, and connections."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Self, TypeVar

import strawberry
from strawberry import relay
from strawberry.permission import BasePermission
from strawberry.types.base import StrawberryObjectDefinition

from app.context import Info
from app.errors import AppError, NotFound
from app.resolvers.pagination import Page
from app.schema.permissions import Public, guarded

N = TypeVar("N", bound=relay.Node)
Row = TypeVar("Row")


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def uuid_of(global_id: strawberry.ID, type_name: str, *, field: str) -> uuid.UUID:
    """The database id inside a global id of `type_name`. Anything else is reported as not
    found, exactly like an id that was never issued."""
    try:
        parsed = relay.GlobalID.from_id(global_id)
    except (relay.GlobalIDValueError, ValueError):
        parsed = None
    value = parse_uuid(parsed.node_id) if parsed and parsed.type_name == type_name else None
    if value is None:
        raise NotFound(f"There is no such {type_name.lower()}.", field=field)
    return value


def node_uuids(node_ids: Iterable[str]) -> list[uuid.UUID | None]:
    return [parse_uuid(str(node_id)) for node_id in node_ids]


async def load_by_ids(loader: Any, node_ids: Iterable[str]) -> list[Any]:
    """Loads each id through a by-id loader; a malformed id loads as None like a missing one."""
    ids = node_uuids(node_ids)
    found = await loader.load_many([node_id for node_id in ids if node_id is not None])
    by_id = {
        node_id: row for node_id, row in zip([i for i in ids if i is not None], found, strict=True)
    }
    return [by_id.get(node_id) if node_id is not None else None for node_id in ids]


def nodes_from_rows(rows: Sequence[Row | None], to_node: Callable[[Row], N]) -> list[N | None]:
    return [to_node(row) if row is not None else None for row in rows]


class LoadedNode(relay.Node):
    """A node read through one of the request's by-id loaders: a subclass names the loader
    and says how it is built from a row."""

    loader_name: ClassVar[str]
    # The policy of the root fields that list this type: `node` shows it to no one else.
    visible_to: ClassVar[BasePermission | None] = None

    @classmethod
    def from_row(cls, row: Any) -> Self:
        raise NotImplementedError

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        if cls.visible_to is not None and not _allowed(cls.visible_to, info):
            return [None for _ in node_ids]
        rows = await load_by_ids(getattr(info.context.loaders, cls.loader_name), node_ids)
        return nodes_from_rows(rows, cls.from_row)


def _allowed(policy: BasePermission, info: Info) -> bool:
    # Refused the same way as a missing id: `node` never says that something exists.
    try:
        return bool(policy.has_permission(None, info))
    except AppError:
        return False


def connection(page: Page[Row], to_node: Callable[[Row], N]) -> relay.Connection[N]:
    return relay.Connection(
        edges=[
            relay.Edge(cursor=cursor, node=to_node(row))
            for row, cursor in zip(page.rows, page.cursors, strict=True)
        ],
        page_info=relay.PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
    )


async def resolve_node(info: Info, id: strawberry.ID) -> relay.Node | None:
    """Any object of this schema by its global id. An id that is malformed, names a type
    this schema does not have, or points at something the viewer may not see, is null."""
    try:
        global_id = relay.GlobalID.from_id(id)
    except (relay.GlobalIDValueError, ValueError):
        return None
    definition = info.schema.get_type_by_name(global_id.type_name)
    if not isinstance(definition, StrawberryObjectDefinition) or not issubclass(
        definition.origin, relay.Node
    ):
        return None
    origin: type[relay.Node] = definition.origin
    nodes = origin.resolve_nodes(info=info, node_ids=[global_id.node_id], required=False)
    if inspect.isawaitable(nodes):
        nodes = await nodes
    return next(iter(nodes), None)


def node_field() -> Any:
    # Open to anyone: what it can return is limited by the viewer's scope in the data layer.
    return strawberry.field(
        resolver=resolve_node,
        description="Any object this viewer may see, by its global id; null when there is none.",
        extensions=guarded(Public()),
    )
