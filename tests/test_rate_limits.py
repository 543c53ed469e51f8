"""P2, P5: attempt counters every worker shares, in the database or in Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

import pytest

from app.auth.ratelimit import DatabaseRateLimiter, Limit, RedisRateLimiter
from app.db.base import utcnow
from app.db.session import Database

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "").strip()
LIMIT = Limit("test", 3, timedelta(minutes=1))


async def test_p2_the_database_counter_refuses_past_the_limit_until_the_window_ends(
    db: Database,
) -> None:
    limiter = DatabaseRateLimiter(db)
    now = utcnow()
    assert [await limiter.hit(LIMIT, "Jo@Example", now=now) for _ in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert await limiter.hit(LIMIT, "jo@example", now=now) is False, "keys ignore case"
    assert await limiter.hit(LIMIT, "someone-else", now=now) is True
    later = now + LIMIT.window + timedelta(seconds=1)
    assert await limiter.hit(LIMIT, "jo@example", now=later) is True


async def test_p2_concurrent_attempts_are_each_counted_once(db: Database) -> None:
    limiter = DatabaseRateLimiter(db)
    wide = Limit("wide", 20, timedelta(minutes=1))
    results = await asyncio.gather(*(limiter.hit(wide, "racer") for _ in range(30)))
    assert results.count(True) == 20 and results.count(False) == 10


@pytest.mark.skipif(not REDIS_URL, reason="PORTAL_TEST_REDIS_URL is not set")
async def test_p2_the_redis_counter_refuses_past_the_limit_and_expires_with_its_window() -> None:
    limiter = RedisRateLimiter(REDIS_URL)
    subject = uuid.uuid4().hex
    try:
        assert [await limiter.hit(LIMIT, subject) for _ in range(5)] == [
            True,
            True,
            True,
            False,
            False,
        ]
        ttl = await limiter._redis.ttl(f"portal:rate:{LIMIT.name}:{subject}")
        assert 0 < ttl <= LIMIT.window.total_seconds()
        results = await asyncio.gather(
            *(limiter.hit(Limit("wide", 20, LIMIT.window), subject) for _ in range(30))
        )
        assert results.count(True) == 20
    finally:
        await limiter.close()
