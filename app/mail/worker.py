"""The delivery worker: sends due outbox rows and retries failures with back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import sqlalchemy as sa
from sqlmodel import col

from app.db.base import utcnow
from app.db.models import OutboxEmail, OutboxStatus
from app.db.scope import SYSTEM
from app.db.session import Database
from app.mail.transports import Transport, transport_for
from app.settings import Settings

logger = logging.getLogger("app.mail")

FIRST_RETRY_SECONDS = 15
LONGEST_RETRY_SECONDS = 3600
# SQLite has no row locks: an empty UPDATE takes the database's write lock up front, so
# no other process can send the same rows and our final write cannot find a stale snapshot.
_SQLITE_WRITE_LOCK = sa.text("UPDATE email_outbox SET attempts = attempts WHERE 1 = 0")


async def retry_failed(
    db: Database,
    *,
    ids: Sequence[uuid.UUID] = (),
    since: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Puts emails that failed for good back in the queue, due at once with a fresh round of
    attempts, and answers how many. Only FAILED rows move, in one UPDATE: an email is never
    queued twice, however many operators run this at once. `ids` and `since` (written at or
    after) narrow the choice; without them every failed email goes back."""
    chosen = [col(OutboxEmail.status) == OutboxStatus.FAILED]
    if ids:
        chosen.append(col(OutboxEmail.id).in_(ids))
    if since is not None:
        chosen.append(col(OutboxEmail.created_at) >= since)
    async with db.transaction(SYSTEM) as session:
        result = await session.execute(
            sa.update(OutboxEmail)
            .where(*chosen)
            .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
    returned = int(getattr(result, "rowcount", 0))
    if returned:
        logger.info("%d failed emails returned to the queue", returned)
    return returned


def retry_delay(attempts: int) -> timedelta:
    """15 s after the first failure, doubling up to an hour, plus up to 10% jitter."""
    seconds = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), LONGEST_RETRY_SECONDS)
    return timedelta(seconds=seconds * (1 + random.random() / 10))  # noqa: S311 (not a secret)


class OutboxWorker:
    """Sends due rows oldest first, `batch_size` per transaction. On PostgreSQL the rows of a
    batch stay locked (`FOR UPDATE SKIP LOCKED`) until they are marked, so any number of
    workers can run side by side without sending a row twice."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        transport: Transport | None = None,
        now: Callable[[], datetime] = utcnow,
        batch_size: int = 20,
        prepare: Sequence[Callable[[], Awaitable[object]]] = (),
    ) -> None:
        # Work that writes emails for this pass to send (such as requested links).
        self._prepare = prepare
        self._db = db
        self._settings = settings
        self._transport = transport or transport_for(settings)
        self._now = now
        self._batch_size = batch_size
        self._sender = settings.mail_from
        self._domain = parseaddr(settings.mail_from)[1].rpartition("@")[2]

    async def deliver_due(self) -> int:
        """One pass: sends every row due now, and answers how many the server accepted."""
        return await self._pass(stop=None)

    async def run(self, stop: asyncio.Event) -> None:
        """Passes every `mail_poll_seconds` until `stop` is set."""
        logger.info("mail worker started")
        while not stop.is_set():
            try:
                await self._pass(stop)
            except Exception:
                # The database may be away for a moment; the rows wait for the next pass.
                logger.exception("mail worker pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.mail_poll_seconds)
        logger.info("mail worker stopped")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Runs the worker in the background for the length of the block."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name="mail worker")
        try:
            yield
        finally:
            stop.set()
            await task

    async def _pass(self, stop: asyncio.Event | None) -> int:
        for step in self._prepare:
            await step()
        sent = 0
        while True:
            batch_sent, batch_full = await self._deliver_batch()
            sent += batch_sent
            if not batch_full or (stop is not None and stop.is_set()):
                return sent

    async def _deliver_batch(self) -> tuple[int, bool]:
        now = self._now()
        async with self._db.transaction(SYSTEM) as session:
            if self._db.dialect == "sqlite":
                await session.execute(_SQLITE_WRITE_LOCK)
            rows = list(
                await session.scalars(
                    sa.select(OutboxEmail)
                    .where(
                        col(OutboxEmail.status) == OutboxStatus.PENDING,
                        col(OutboxEmail.next_attempt_at) <= now,
                    )
                    .order_by(col(OutboxEmail.next_attempt_at), col(OutboxEmail.created_at))
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return 0, False
            failures = await self._transport.send([self._message(row, now) for row in rows])
            for row, failure in zip(rows, failures, strict=True):
                if failure is None:
                    row.status = OutboxStatus.SENT
                    row.sent_at = self._now()
                else:
                    self._record_failure(row, failure, now)
        return failures.count(None), len(rows) == self._batch_size

    def _message(self, row: OutboxEmail, now: datetime) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = row.to_address
        message["Subject"] = row.subject
        message["Date"] = format_datetime(now)
        # One id per row, the same on every attempt, so a receiver can spot a repeat.
        message["Message-ID"] = f"<{row.id}@{self._domain}>"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(row.text_body)
        message.add_alternative(row.html_body, subtype="html")
        return message

    def _record_failure(self, row: OutboxEmail, reason: str, now: datetime) -> None:
        row.attempts += 1
        row.last_error = reason
        if row.attempts >= self._settings.mail_max_attempts:
            row.status = OutboxStatus.FAILED
            logger.error(
                "email %s (%s) failed %d times and is not retried until `portal mail-retry`"
                " returns it to the queue: %s",
                row.id,
                row.kind,
                row.attempts,
                reason,
            )
            return
        row.next_attempt_at = now + retry_delay(row.attempts)
        logger.warning(
            "email %s (%s) not sent, attempt %d, next at %s: %s",
            row.id,
            row.kind,
            row.attempts,
            row.next_attempt_at.isoformat(timespec="seconds"),
            reason,
        )
