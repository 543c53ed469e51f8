"""Live events for subscriptions (H8): what was committed, fanned out to every worker.

An event names what changed (a message, and later a request, a quote decision, a payment)
and whose it is (tenant and customer); never what it says. Each subscriber reads the record
itself, in its own scope, so an event can never show anyone what they may not read.

- PostgreSQL: `pg_notify` inside the writing transaction, so an event exists only once that
  transaction commits (a rolled-back message is never heard of); each worker LISTENs on one
  connection of its own.
- Redis (`PORTAL_REDIS_URL`): published after the transaction commits; each worker
  subscribes to the channel.
- SQLite (one process): handed to this process's subscribers after the commit.

A worker whose listening connection is lost ends its subscriptions: their clients reconnect
and ask for what they missed since their last cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
from redis import asyncio as aioredis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.scope import SYSTEM
from app.db.session import Database
from app.settings import Settings

logger = logging.getLogger("app.live")

CHANNEL = "portal_live"
# Events waiting for one slow subscriber; past this it is ended, to catch up by cursor.
QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    kind: str  # "message", ...
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    row_id: uuid.UUID

    def encode(self) -> str:
        return json.dumps([self.kind, str(self.tenant_id), str(self.customer_id), str(self.row_id)])

    @classmethod
    def decode(cls, text: str) -> LiveEvent | None:
        try:
            kind, tenant, customer, row = json.loads(text)
            return cls(str(kind), uuid.UUID(tenant), uuid.UUID(customer), uuid.UUID(row))
        except (ValueError, TypeError):
            logger.warning("an event that is not ours was ignored")
            return None


async def stage(live: LiveEvents | None, session: AsyncSession, event: LiveEvent) -> None:
    """`LiveEvents.stage`, where live events are set up (they are not in a bare context)."""
    if live is not None:
        await live.stage(session, event)


async def committed(live: LiveEvents | None, event: LiveEvent) -> None:
    if live is not None:
        await live.committed(event)


NOBODY_IN_PARTICULAR = uuid.UUID(int=0)
# Someone's access changed (signed out, switched off): every live viewer reads its own again
# at once, rather than at its next check.
ACCESS_CHANGED = LiveEvent(
    "access", NOBODY_IN_PARTICULAR, NOBODY_IN_PARTICULAR, NOBODY_IN_PARTICULAR
)


async def announce(live: LiveEvents | None, db: Database, event: LiveEvent) -> None:
    """Sends an event of something already committed, in a transaction of its own."""
    if live is None:
        return
    async with db.transaction(SYSTEM) as session:
        await live.stage(session, event)
    await live.committed(event)


# Put in a subscriber's queue when the worker can no longer promise it every event.
LOST = None
Delivery = LiveEvent | None


class LiveEvents:
    """This worker's end of the fan-out: writers stage events in their transaction, and
    subscribers listen to a queue of their own."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        url = make_url(settings.database_url)
        self._postgres = url if url.get_backend_name() == "postgresql" else None
        self._redis_url = settings.redis_url
        self._queues: set[asyncio.Queue[Delivery]] = set()
        self._listening: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    @property
    def _in_transaction(self) -> bool:
        return self._postgres is not None and self._redis_url is None

    async def stage(self, session: AsyncSession, event: LiveEvent) -> None:
        """Called inside the writing transaction: on PostgreSQL the event is sent by the
        commit itself, and never without it."""
        if self._in_transaction:
            await session.execute(
                sa.select(sa.func.pg_notify(CHANNEL, event.encode())).execution_options(
                    synchronize_session=False
                )
            )

    async def committed(self, event: LiveEvent) -> None:
        """Called once the writing transaction has committed."""
        if self._in_transaction:
            return
        if self._redis_url is not None:
            client = aioredis.from_url(self._redis_url)
            try:
                await client.publish(CHANNEL, event.encode())
            finally:
                await client.aclose()
            return
        self._deliver(event)

    def _deliver(self, event: Delivery) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # Too far behind: it ends, and its client catches up from its cursor.
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue[Delivery]) -> None:
        self._queues.discard(queue)
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
        queue.put_nowait(LOST)

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Delivery]]:
        """A queue of every event committed from now on, on any worker, until the block
        ends; LOST when the worker could not hear some of them."""
        await self._start()
        queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def _start(self) -> None:
        if self._listening is not None and not self._listening.done():
            assert self._ready is not None
            await self._ready.wait()
            return
        if self._postgres is None and self._redis_url is None:
            return
        self._ready = asyncio.Event()
        self._listening = asyncio.create_task(self._listen(self._ready), name="live events")
        await self._ready.wait()

    async def _listen(self, ready: asyncio.Event) -> None:
        try:
            if self._redis_url is not None:
                await self._listen_redis(self._redis_url, ready)
            else:
                await self._listen_postgres(ready)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("live events: the listening connection was lost")
        finally:
            ready.set()
            # Whoever listened may have missed events from here on.
            for queue in list(self._queues):
                self._drop(queue)

    async def _listen_postgres(self, ready: asyncio.Event) -> None:
        url = self._postgres
        assert url is not None
        connection = await asyncpg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        lost = asyncio.Event()

        def heard(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            event = LiveEvent.decode(payload)
            if event is not None:
                self._deliver(event)

        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CHANNEL, heard)
            ready.set()
            await lost.wait()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _listen_redis(self, redis_url: str, ready: asyncio.Event) -> None:
        client = aioredis.from_url(redis_url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            ready.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = message["data"]
                event = LiveEvent.decode(data.decode() if isinstance(data, bytes) else data)
                if event is not None:
                    self._deliver(event)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listening
