"""Keyset pagination: a page is the rows after a cursor in a fixed order, never an OFFSET."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlmodel import col
from strawberry.dataloader import DataLoader

from app.db.base import TenantOwned
from app.errors import InvalidCursor

if TYPE_CHECKING:
    from app.context import Context

Row = TypeVar("Row")
M = TypeVar("M", bound=TenantOwned)

# `first` above this is cut to it, so one list never returns more rows.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    rows: list[Row]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise InvalidCursor("`first` cannot be negative.", field="first")
    return min(first, MAX_PAGE_SIZE)


def encode_cursor(sort_value: Any, row_id: uuid.UUID) -> str:
    if isinstance(sort_value, date | datetime):
        sort_value = sort_value.isoformat()
    raw = json.dumps([sort_value, str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str, kind: type[Any]) -> tuple[Any, uuid.UUID]:
    """The sort value (of the sort column's Python type) and the row id inside a cursor."""
    forged = InvalidCursor("This cursor is not one this list gave out.", field="after")
    try:
        sort_value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(sort_value, str):
            raise forged
        value: Any = kind.fromisoformat(sort_value) if kind in (date, datetime) else sort_value
        if isinstance(value, datetime) and value.tzinfo is None:
            raise forged
        return value, uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError, AttributeError) as error:
        raise forged from error


async def keyset_page(
    session: AsyncSession,
    statement: sa.Select[tuple[Row]],
    *,
    sort: Mapped[Any],
    row_id: Mapped[uuid.UUID],
    first: int | None,
    after: str | None,
    descending: bool = False,
) -> Page[Row]:
    """One page of `statement`, ordered by (`sort`, `row_id`), after the `after` cursor;
    newest first when `descending`. The sort column holds text, dates or timestamps."""
    size = page_size(first)
    if after is not None:
        sort_value, after_id = decode_cursor(after, _python_type(sort))
        if descending:
            beyond = sa.or_(sort < sort_value, sa.and_(sort == sort_value, row_id < after_id))
        else:
            beyond = sa.or_(sort > sort_value, sa.and_(sort == sort_value, row_id > after_id))
        statement = statement.where(beyond)
    order = (sort.desc(), row_id.desc()) if descending else (sort, row_id)
    rows = list(await session.scalars(statement.order_by(*order).limit(size + 1)))
    has_next = len(rows) > size
    rows = rows[:size]
    sort_key, id_key = _key(sort), _key(row_id)
    return Page(
        rows=rows,
        cursors=[encode_cursor(getattr(row, sort_key), getattr(row, id_key)) for row in rows],
        has_next_page=has_next,
        has_previous_page=after is not None,
    )


def _python_type(column: Mapped[Any]) -> type[Any]:
    try:
        kind: type[Any] = getattr(column, "type").python_type  # noqa: B009
    except NotImplementedError:  # SQLModel's text type does not say
        return str
    return kind


def _key(column: Mapped[Any]) -> str:
    key: str = getattr(column, "key")  # noqa: B009  (Mapped does not declare it for typing)
    return key


async def tenant_page(
    ctx: Context,
    model: type[M],
    *,
    sort: Mapped[Any],
    first: int | None,
    after: str | None,
    contractor: uuid.UUID | None = None,
    where: Sequence[sa.ColumnElement[bool]] = (),
    descending: bool = True,
    loader: DataLoader[uuid.UUID, Any] | None = None,
    with_contractors: bool = False,
) -> Page[M]:
    """A page of `model` rows read in the viewer's scope (newest first unless told), narrowed
    to one contractor when asked; the rows are primed into their by-id `loader`, and with
    `with_contractors` their businesses loaded too, so each row's contractor and whatever
    depends on the business's settings answers without waiting."""
    statement = sa.select(model).where(*where)
    if contractor is not None:
        statement = statement.where(col(model.tenant_id) == contractor)
    async with ctx.db.session(ctx.scope) as session:
        page = await keyset_page(
            session,
            statement,
            sort=sort,
            row_id=col(model.id),
            first=first,
            after=after,
            descending=descending,
        )
    if loader is not None:
        loader.prime_many({row.id: row for row in page.rows})
    if with_contractors and page.rows:
        await ctx.loaders.tenant_by_id.load_many(sorted({row.tenant_id for row in page.rows}))
    return page
