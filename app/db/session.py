"""Engines and sessions for SQLite and PostgreSQL, through the same code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db.scope import SCOPE_KEY, Scope
from app.db.text import SQLITE_FOLD, sqlite_fold

logger = logging.getLogger(__name__)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # No ping before each checkout, which would cost a round trip each time: a connection
    # the server dropped shows on first use (`connection_dropped`), and the pool then lets
    # go of every connection as old as it.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)


def connection_dropped(error: BaseException | None) -> bool:
    """Whether `error` is a connection the database had dropped (a restart, a failover, an
    idle timeout), found when it was used, or used again in the same transaction after."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated
    # SQLAlchemy's code for a statement on a connection invalidated inside its transaction.
    return isinstance(error, PendingRollbackError) and error.code == "8s2b"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let Python's sqlite3 leave transactions to SQLAlchemy's BEGIN below.
    dbapi_connection.isolation_level = None
    dbapi_connection.create_function(SQLITE_FOLD, 1, sqlite_fold, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A transaction that will write takes the write lock up front: a deferred one that reads
    # first could not upgrade once another connection had written, and would fail at once.
    immediate = connection.get_execution_options().get("portal_writes", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The engine and the one way to open a session: with a tenant scope."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._shared_sessions = async_sessionmaker(
            class_=_SharedSession, expire_on_commit=False, autoflush=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        reading = _reading.get()
        if reading is not None and reading.database is self and not reading.stopped:
            # Inside a read request: one session per scope over its one connection and
            # transaction, whatever number of blocks (the viewer's, each page's, each loader
            # batch's) ask for one; their statements take turns.
            yield await reading.session(scope)
            return
        async with self._sessions() as session:
            session.info[SCOPE_KEY] = scope
            yield session

    @asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        """A session whose work commits together at the end of the block, or not at all.
        Always on a connection of its own; a read request's shared one is given back first,
        so a request never holds two connections and what it reads next sees this write."""
        await self.stop_reading()
        async with self._sessions() as session, session.begin():
            session.info[SCOPE_KEY] = scope
            if self.dialect == "sqlite":
                await session.connection(execution_options={"portal_writes": True})
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """One connection and one transaction for every session a request opens, until
        `stop_reading`: a query's sign-in check, its pages and its loaders' batches go to
        the database over one connection, checked out once, in one transaction."""
        reading = _Reading(self)
        token = _reading.set(reading)
        try:
            yield
        finally:
            _reading.reset(token)
            await reading.close()

    async def stop_reading(self) -> None:
        """Ends the shared transaction of this request: what comes next (a mutation's own
        transactions, and what it reads back) sees every write committed since."""
        reading = _reading.get()
        if reading is not None and reading.database is self:
            await reading.close()

    async def restart_reading(self) -> None:
        """Starts the shared transaction afresh, on a new connection: after a statement failed
        in it, PostgreSQL refuses every other statement of that transaction."""
        reading = _reading.get()
        if reading is not None and reading.database is self and not reading.stopped:
            await reading.release()

    async def dispose(self) -> None:
        await self.engine.dispose()


class _SharedSession(AsyncSession):
    """A session over a read request's shared connection. Loader batches run as tasks of
    their own: their statements take turns on the connection, one at a time."""

    def __init__(self, *args: Any, turn: asyncio.Lock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = turn

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().scalar(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().get(*args, **kwargs)


class _Reading:
    """A request's shared connection, checked out on first use."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._connection: AsyncConnection | None = None
        self._sessions: dict[Scope, AsyncSession] = {}
        self._opening = asyncio.Lock()
        self._turn = asyncio.Lock()
        # Once the request is done with it (or writes), a session asked for later, by a task
        # the request left behind, is one of its own.
        self.stopped = False

    async def session(self, scope: Scope) -> AsyncSession:
        session = self._sessions.get(scope)
        if session is None:
            connection = await self.connection()
            session = self._sessions.get(scope)
            if session is None:
                session = self._sessions[scope] = self.database._shared_sessions(
                    bind=connection, turn=self._turn
                )
                session.info[SCOPE_KEY] = scope
        return session

    async def connection(self) -> AsyncConnection:
        if self._connection is None:
            async with self._opening:
                if self._connection is None:
                    connection = await self.database.engine.connect()
                    await connection.begin()
                    self._connection = connection
        return self._connection

    async def close(self) -> None:
        self.stopped = True
        await self.release()

    async def release(self) -> None:
        """Gives the connection back to the pool, whatever state the request left it in."""
        sessions, self._sessions = list(self._sessions.values()), {}
        connection, self._connection = self._connection, None
        try:
            for session in sessions:
                await session.close()
            if connection is not None:
                # Nothing was written: ending the transaction either way costs one round trip.
                await connection.close()
        except Exception:
            # A request stopped by its time limit may leave a loader's statement running on
            # the connection: it cannot be ended cleanly, so it is dropped, never reused.
            logger.warning("a read connection could not be closed; it is discarded", exc_info=True)
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.invalidate()
                with contextlib.suppress(Exception):
                    await connection.close()


_reading: ContextVar[_Reading | None] = ContextVar("portal_reading", default=None)
