"""Attempt counters every worker shares: in the database by default, in Redis when set.

Each attempt counts, however it arrives: a document refused for holding several sign-in or
token fields counts every one of them against the sender's address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db.base import UTCDateTime, utcnow
from app.db.models import RateLimitCounter
from app.db.scope import SYSTEM
from app.db.session import Database


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    attempts: int
    window: timedelta


# Per account (or email) and per client address; generous for people, tight for scripts.
SIGN_IN_PER_ACCOUNT = Limit("sign-in:account", 10, timedelta(minutes=15))
SIGN_IN_PER_ADDRESS = Limit("sign-in:address", 50, timedelta(minutes=15))
EMAIL_LINK_PER_ACCOUNT = Limit("email-link:account", 5, timedelta(hours=1))
EMAIL_LINK_PER_ADDRESS = Limit("email-link:address", 30, timedelta(hours=1))
TOKEN_PER_ADDRESS = Limit("token:address", 30, timedelta(minutes=15))


class RateLimiter(Protocol):
    async def hit(self, limit: Limit, subject: str, *, attempts: int = 1) -> bool:
        """Counts `attempts` attempts; False when the limit is spent."""
        ...


class DatabaseRateLimiter:
    """Fixed windows kept in `rate_limit_counters`, updated with one atomic upsert."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def hit(
        self, limit: Limit, subject: str, *, attempts: int = 1, now: datetime | None = None
    ) -> bool:
        now = now or utcnow()
        counter = RateLimitCounter.__table__.c  # type: ignore[attr-defined]
        insert = postgresql_insert if self._db.dialect == "postgresql" else sqlite_insert
        statement = insert(RateLimitCounter).values(
            key=f"{limit.name}:{subject.lower()}", window_started_at=now, hits=attempts
        )
        # A window that began before this cut-off is over: the attempt starts a new one.
        expired = counter.window_started_at <= sa.bindparam(
            "cut_off", now - limit.window, type_=UTCDateTime()
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[counter.key],
            set_={
                "hits": sa.case((expired, attempts), else_=counter.hits + attempts),
                "window_started_at": sa.case(
                    (expired, statement.excluded.window_started_at), else_=counter.window_started_at
                ),
            },
        ).returning(counter.hits)
        async with self._db.transaction(SYSTEM) as session:
            hits = (await session.execute(upsert)).scalar_one()
        return int(hits) <= limit.attempts


class RedisRateLimiter:
    """The same fixed windows in Redis: INCR, with the window as the key's time to live."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)

    async def hit(self, limit: Limit, subject: str, *, attempts: int = 1) -> bool:
        key = f"portal:rate:{limit.name}:{subject.lower()}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, attempts)
            pipe.expire(key, int(limit.window.total_seconds()), nx=True)
            hits, _ = await pipe.execute()
        return int(hits) <= limit.attempts

    async def close(self) -> None:
        await self._redis.aclose()
