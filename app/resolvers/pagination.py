"""Keyset pagination: a page is the rows after a cursor in a fixed order, never an OFFSET."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped

from app.db.base import UTCDateTime
from app.errors import InvalidCursor

Row = TypeVar("Row")

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
    if isinstance(sort_value, datetime):
        sort_value = sort_value.isoformat()
    raw = json.dumps([sort_value, str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[Any, uuid.UUID]:
    try:
        sort_value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return sort_value, uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError, AttributeError) as error:
        raise InvalidCursor("This cursor is not one this list gave out.", field="after") from error


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
    `descending` walks both keys from the highest down (newest first, for timestamps)."""
    size = page_size(first)
    if after is not None:
        sort_value, after_id = decode_cursor(after)
        bound = _sort_bound(sort, sort_value)
        if descending:
            statement = statement.where(
                sa.or_(sort < bound, sa.and_(sort == bound, row_id < after_id))
            )
        else:
            statement = statement.where(
                sa.or_(sort > bound, sa.and_(sort == bound, row_id > after_id))
            )
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


def _sort_bound(sort: Mapped[Any], value: Any) -> Any:
    """The cursor's sort value as the column's own type; anything else was not given out."""
    if not isinstance(value, str):
        raise InvalidCursor("This cursor is not one this list gave out.", field="after")
    if isinstance(getattr(sort, "type", None), sa.DateTime | UTCDateTime):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as error:
            raise InvalidCursor(
                "This cursor is not one this list gave out.", field="after"
            ) from error
        if parsed.tzinfo is None:
            raise InvalidCursor("This cursor is not one this list gave out.", field="after")
        return parsed
    return value


def _key(column: Mapped[Any]) -> str:
    key: str = getattr(column, "key")  # noqa: B009  (Mapped does not declare it for typing)
    return key
