"""The shape every loader shares: one batch, one session, results in key order."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import ClassVar, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from strawberry.dataloader import DataLoader
from strawberry.execution.is_awaitable import optimized_is_awaitable

from app.db.base import TenantOwned
from app.db.scope import Scope
from app.db.session import Database

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Row = TypeVar("Row")


class SessionLoader(DataLoader[K, V], Generic[K, V]):
    """A DataLoader whose every batch runs in a session of its own.

    Strawberry dispatches batches as separate tasks, so two batches must never share an
    AsyncSession; the session carries the viewer's tenant scope.
    """

    def __init__(self, db: Database, scope: Scope) -> None:
        self._db = db
        self._scope = scope
        super().__init__(load_fn=self._load)

    async def _load(self, keys: list[K]) -> Sequence[V]:
        async with self._db.session(self._scope) as session:
            return await self.fetch(session, keys)

    async def fetch(self, session: AsyncSession, keys: list[K]) -> Sequence[V]:
        raise NotImplementedError

    def get(self, key: K) -> V | Awaitable[V]:
        """The value itself when this request has loaded it already, else an awaitable of it:
        a field of a row whose related rows came with its page answers without waiting."""
        future = self.cache_map.get(key)
        if (
            future is not None
            and future.done()
            and not future.cancelled()
            and future.exception() is None
        ):
            return future.result()
        return self.load(key)


def then(value: V | Awaitable[V], use: Callable[[V], Row]) -> Row | Awaitable[Row]:
    """`use(value)`, now when the value is here, or once it has come."""
    if optimized_is_awaitable(value):
        return _then(cast("Awaitable[V]", value), use)
    return use(cast("V", value))


async def _then(value: Awaitable[V], use: Callable[[V], Row]) -> Row:
    return use(await value)


def one_per_key(
    rows: Iterable[Row], keys: Sequence[K], key: Callable[[Row], K]
) -> list[Row | None]:
    found = {key(row): row for row in rows}
    return [found.get(k) for k in keys]


def many_per_key(
    rows: Iterable[Row], keys: Sequence[K], key: Callable[[Row], K]
) -> list[list[Row]]:
    grouped: dict[K, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    return [grouped.get(k, []) for k in keys]


M = TypeVar("M", bound=TenantOwned)


class ByIdLoader(SessionLoader[uuid.UUID, M | None], Generic[M]):
    """Loads rows of `model` by id; an id outside the viewer's scope loads as None."""

    model: ClassVar[type[TenantOwned]]

    async def fetch(self, session: AsyncSession, keys: list[uuid.UUID]) -> Sequence[M | None]:
        rows = await session.scalars(sa.select(self.model).where(col(self.model.id).in_(keys)))
        return one_per_key(cast("Iterable[M]", rows), keys, lambda row: row.id)


class ByParentLoader(SessionLoader[uuid.UUID, list[M]], Generic[M]):
    """Loads the rows of `model` under each parent id, ordered by `order_by` then id."""

    model: ClassVar[type[TenantOwned]]
    parent: ClassVar[str]
    order_by: ClassVar[str]

    async def fetch(self, session: AsyncSession, keys: list[uuid.UUID]) -> Sequence[list[M]]:
        parent = getattr(self.model, self.parent)
        rows = await session.scalars(
            sa.select(self.model)
            .where(parent.in_(keys))
            .order_by(getattr(self.model, self.order_by), col(self.model.id))
        )
        return many_per_key(cast("Iterable[M]", rows), keys, lambda row: getattr(row, self.parent))
