"""Engines and sessions for SQLite and PostgreSQL, through the same code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from app.db.scope import SCOPE_KEY, Scope, UnscopedAccess
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


class ConnectionDropped(Exception):
    """A statement sent straight to the driver found its connection dropped by the server."""


def connection_dropped(error: BaseException | None) -> bool:
    """Whether `error` is a connection the database had dropped (a restart, a failover, an
    idle timeout), found when it was used, or used again in the same transaction after."""
    if isinstance(error, ConnectionDropped):
        return True
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
        """One connection for every session a request opens, until `stop_reading`: a
        query's sign-in check, its pages and its loaders' batches go to the database over
        one connection, checked out once, and on SQLite in one read transaction (one
        snapshot). On PostgreSQL the first statement that goes through SQLAlchemy begins
        the transaction the rest share; statements sent straight to the driver (`fetch`)
        begin none: under READ COMMITTED each statement reads at a snapshot of its own
        either way, so a request they answer alone sends no BEGIN and no ROLLBACK."""
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

    async def fetch(
        self, scope: Scope, statement: sa.Select[Any], params: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """The rows of one Core statement, with no ORM session in between: compiled once per
        statement, then only bound, and on PostgreSQL sent straight to the driver. Inside a
        read request it goes over the request's connection and transaction like the rest.

        No criteria are added here, so only the system scope may use it: work that spans
        tenants by design (who is signing in), or a statement that brings its own tenant
        and grant criteria (a compiled read, see `app.schema.compiled`)."""
        if not scope.is_system:
            raise UnscopedAccess("only statements that bring their own criteria run unscoped")
        reading = _reading.get()
        if reading is None or reading.database is not self or reading.stopped:
            async with self.engine.connect() as connection:
                return _rows(await connection.execute(statement, dict(params)))
        return await reading.fetch(statement, params)

    async def dispose(self) -> None:
        await self.engine.dispose()


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A Core statement as its driver takes it: the SQL, the parameters in order (with the
    values the statement fixed itself), and how each parameter and column converts."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]
    binds: dict[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: sa.Select[Any], dialect: Dialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        given = {name for name, bind in compiled.binds.items() if bind.required}
        return cls(
            sql=str(compiled),
            names=names,
            fixed={
                name: value
                for name, value in compiled.construct_params(_check=False).items()
                if name not in given
            },
            binds={
                name: process
                for name, process in compiled._bind_processors.items()
                if callable(process)
            },
            results=tuple(
                column.type._cached_result_processor(dialect, None)
                for column in statement.selected_columns
            ),
        )

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name in self.names:
            value = params[name] if name in params else self.fixed[name]
            bind = self.binds.get(name)
            values.append(bind(value) if bind is not None else value)
        return values

    def row(self, record: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if convert is None or value is None else convert(value)
            for convert, value in zip(self.results, record, strict=True)
        )


# Compiled once per statement object: the statements given to `fetch` are built at import.
_COMPILED: dict[tuple[int, str], tuple[sa.Select[Any], _Compiled]] = {}


def _compiled(statement: sa.Select[Any], dialect: Dialect) -> _Compiled:
    key = (id(statement), dialect.name)
    known = _COMPILED.get(key)
    if known is None or known[0] is not statement:
        known = _COMPILED[key] = (statement, _Compiled.of(statement, dialect))
    return known[1]


def _rows(result: sa.CursorResult[Any]) -> list[Sequence[Any]]:
    return [tuple(row) for row in result]


# What asyncpg raises when the server has dropped the connection it was using.
_DROPPED = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.InterfaceError,
    # A connection the server dropped mid-protocol, found in a state it cannot leave.
    asyncpg.exceptions.InternalClientError,
    OSError,
)


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
    """A request's shared connection, checked out on first use: from the pool alone while
    only statements sent straight to the driver use it, wrapped for SQLAlchemy once a
    session needs it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._pooled: PoolProxiedConnection | None = None
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

    async def pooled(self) -> PoolProxiedConnection:
        if self._pooled is None:
            async with self._opening:
                if self._pooled is None:
                    self._pooled = await self.database.engine.raw_connection()
        return self._pooled

    async def connection(self) -> AsyncConnection:
        if self._connection is None:
            pooled = await self.pooled()
            async with self._opening:
                if self._connection is None:
                    engine = self.database.engine
                    connection = AsyncConnection(
                        engine, Connection(engine.sync_engine, connection=pooled)
                    )
                    await connection.begin()
                    self._connection = connection
        return self._connection

    async def fetch(
        self, statement: sa.Select[Any], params: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        if self.database.dialect != "postgresql":
            connection = await self.connection()
            async with self._turn:
                return _rows(await connection.execute(statement, dict(params)))
        pooled = await self.pooled()
        async with self._turn:
            compiled = _compiled(statement, self.database.engine.dialect)
            arguments = compiled.arguments(params)
            engine = self.database.engine.sync_engine
            if engine.dispatch.before_cursor_execute:
                # Announced as SQLAlchemy's own statements are, for whoever listens.
                wrapped = self._connection.sync_connection if self._connection else None
                engine.dispatch.before_cursor_execute(
                    wrapped, None, compiled.sql, arguments, None, False
                )
            driver: Any = pooled.driver_connection
            try:
                records = await driver.fetch(compiled.sql, *arguments)
            except _DROPPED as error:
                # As SQLAlchemy does for its own statements: this connection is dropped, and
                # so is every pooled one as old as it.
                await self._discard()
                await self.database.engine.dispose(close=False)
                raise ConnectionDropped from error
        return [compiled.row(record) for record in records]

    async def close(self) -> None:
        self.stopped = True
        await self.release()

    async def release(self) -> None:
        """Gives the connection back to the pool, whatever state the request left it in."""
        sessions, self._sessions = list(self._sessions.values()), {}
        connection, pooled = self._connection, self._pooled
        self._connection = self._pooled = None
        try:
            for session in sessions:
                await session.close()
            if connection is not None:
                # Nothing was written: ending a transaction either way costs one round trip.
                await connection.close()
            elif pooled is not None:
                await greenlet_spawn(pooled.close)
        except Exception:
            # A request stopped by its time limit may leave a loader's statement running on
            # the connection: it cannot be ended cleanly, so it is dropped, never reused.
            logger.warning("a read connection could not be closed; it is discarded", exc_info=True)
            self._connection, self._pooled = connection, pooled
            await self._discard()

    async def _discard(self) -> None:
        """Drops the connection: the pool opens a new one in its place."""
        connection, pooled = self._connection, self._pooled
        self._connection = self._pooled = None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()
        elif pooled is not None:
            with contextlib.suppress(Exception):
                await greenlet_spawn(pooled.invalidate)
            with contextlib.suppress(Exception):
                await greenlet_spawn(pooled.close)


_reading: ContextVar[_Reading | None] = ContextVar("portal_reading", default=None)
