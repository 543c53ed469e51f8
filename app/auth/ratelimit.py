"""Attempt counters every worker shares: in the database by default, in Redis when set; and
the back-off of sign-in built on them.

A stranger must not be able to lock anyone out. Guessing one account's password costs the
guesser's own address: every sign-in attempt counts against it, and past a few wrong
passwords the address may not try that account again for a while. The account itself is
never refused: once it draws many wrong passwords from anywhere, every attempt on it waits
a moment and a failing address gets fewer tries, but its owner's right password from an
address that has not been guessing still signs in. A document refused for holding several
sign-in or token fields runs none of them, and counts once against its address.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.requests import Request

from app.db.base import UTCDateTime, utcnow
from app.db.models import RateLimitCounter
from app.db.scope import SYSTEM
from app.db.session import Database
from app.errors import AppError, ErrorCode


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    attempts: int
    window: timedelta


# Every sign-in attempt from one client address; generous for an office, tight for scripts.
SIGN_IN_PER_ADDRESS = Limit("sign-in:address", 50, timedelta(minutes=15))
# Attempts on one account not proven right, from anywhere. Past this the account is under
# attack: each attempt on it waits, and failing addresses get fewer tries. Never refused.
SIGN_IN_PER_ACCOUNT = Limit("sign-in:account", 10, timedelta(minutes=15))
# Attempts on one account not proven right from one address; past this, or past
# SIGN_IN_UNDER_ATTACK once the account is under attack, that address is refused for it.
SIGN_IN_PER_ACCOUNT_AT_ADDRESS = Limit("sign-in:account-address", 10, timedelta(minutes=15))
SIGN_IN_UNDER_ATTACK = 3
UNDER_ATTACK_DELAY = timedelta(seconds=1)
# Checks of a signed-in user's current password (changing it): only the session can spend it.
PASSWORD_CHECK_PER_USER = Limit("password-check", 10, timedelta(minutes=15))
EMAIL_LINK_PER_ACCOUNT = Limit("email-link:account", 5, timedelta(hours=1))
EMAIL_LINK_PER_ADDRESS = Limit("email-link:address", 30, timedelta(hours=1))
TOKEN_PER_ADDRESS = Limit("token:address", 30, timedelta(minutes=15))

TOO_MANY_ATTEMPTS = "Too many attempts. Wait a while and try again."
_KEY_MAX = 255  # the column's length


def client_address(request: Request) -> str:
    """The address attempts count against: the connection's peer. uvicorn replaces it with
    the client an X-Forwarded-For names only when the peer is one of PORTAL_TRUSTED_PROXIES
    (`app.cli.server_options`), so a client cannot choose the address it is counted under."""
    return request.client.host if request.client else "unknown"


def counter_key(limit: Limit, subject: str) -> str:
    """`name:subject`, case folded; a subject that does not fit the column or is not plain
    text (it comes from the client) is counted under its digest."""
    key = f"{limit.name}:{subject.lower()}"
    if len(key) <= _KEY_MAX and key.isprintable():
        return key
    digest = hashlib.sha256(subject.lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"{limit.name}:sha256:{digest}"


class RateLimiter(Protocol):
    async def count(self, limit: Limit, subject: str, *, attempts: int = 1) -> int:
        """Counts `attempts` attempts; answers how many the window holds now."""
        ...

    async def hit(self, limit: Limit, subject: str, *, attempts: int = 1) -> bool:
        """Counts `attempts` attempts; False when the limit is spent."""
        ...

    async def forget_one(self, limit: Limit, subject: str) -> None:
        """Takes back one attempt of the current window (one proven right), if it has any."""
        ...


class DatabaseRateLimiter:
    """Fixed windows kept in `rate_limit_counters`, updated with one atomic upsert."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def count(
        self, limit: Limit, subject: str, *, attempts: int = 1, now: datetime | None = None
    ) -> int:
        now = now or utcnow()
        counter = RateLimitCounter.__table__.c  # type: ignore[attr-defined]
        insert = postgresql_insert if self._db.dialect == "postgresql" else sqlite_insert
        statement = insert(RateLimitCounter).values(
            key=counter_key(limit, subject), window_started_at=now, hits=attempts
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
        return int(hits)

    async def hit(
        self, limit: Limit, subject: str, *, attempts: int = 1, now: datetime | None = None
    ) -> bool:
        return await self.count(limit, subject, attempts=attempts, now=now) <= limit.attempts

    async def forget_one(self, limit: Limit, subject: str, *, now: datetime | None = None) -> None:
        now = now or utcnow()
        counter = RateLimitCounter.__table__.c  # type: ignore[attr-defined]
        statement = (
            sa.update(RateLimitCounter)
            .where(
                counter.key == counter_key(limit, subject),
                counter.hits > 0,
                counter.window_started_at > sa.bindparam("cut_off", type_=UTCDateTime()),
            )
            .values(hits=counter.hits - 1)
        )
        async with self._db.transaction(SYSTEM) as session:
            await session.execute(statement, {"cut_off": now - limit.window})


# Takes one back only from a live window's counter, so it never starts one below zero.
_FORGET_ONE = """
local hits = tonumber(redis.call('GET', KEYS[1]) or '0')
if hits > 0 then redis.call('DECR', KEYS[1]) end
return hits
"""


class RedisRateLimiter:
    """The same fixed windows in Redis: INCR, with the window as the key's time to live."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._forget_one = self._redis.register_script(_FORGET_ONE)

    async def count(self, limit: Limit, subject: str, *, attempts: int = 1) -> int:
        key = f"portal:rate:{counter_key(limit, subject)}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, attempts)
            pipe.expire(key, int(limit.window.total_seconds()), nx=True)
            hits, _ = await pipe.execute()
        return int(hits)

    async def hit(self, limit: Limit, subject: str, *, attempts: int = 1) -> bool:
        return await self.count(limit, subject, attempts=attempts) <= limit.attempts

    async def forget_one(self, limit: Limit, subject: str) -> None:
        await self._forget_one(keys=[f"portal:rate:{counter_key(limit, subject)}"])

    async def close(self) -> None:
        await self._redis.aclose()


def rate_limited() -> AppError:
    return AppError(TOO_MANY_ATTEMPTS, code=ErrorCode.RATE_LIMITED)


@dataclass(frozen=True, slots=True)
class SignInAttempt:
    """A sign-in attempt allowed to check its password; counted until proven right."""

    limiter: RateLimiter
    account: str
    address: str

    async def succeeded(self) -> None:
        """The right password: the attempt no longer counts against the account, nor against
        the account from this address (it still counts against the address)."""
        await self.limiter.forget_one(SIGN_IN_PER_ACCOUNT, self.account)
        await self.limiter.forget_one(
            SIGN_IN_PER_ACCOUNT_AT_ADDRESS, _at(self.account, self.address)
        )


def _at(account: str, address: str) -> str:
    return f"{account} from {address}"


async def sign_in_attempt(limiter: RateLimiter, *, account: str, address: str) -> SignInAttempt:
    """Counts an attempt to sign in to `account` (an account, or the login given when there is
    none, so both answer alike) from `address`, waits when the account is under attack, and
    refuses it (RATE_LIMITED) when the address has spent its attempts or its tries of this
    account. Every counter counts, even when another refuses."""
    from_address = await limiter.hit(SIGN_IN_PER_ADDRESS, address)
    on_account = await limiter.count(SIGN_IN_PER_ACCOUNT, account)
    here = await limiter.count(SIGN_IN_PER_ACCOUNT_AT_ADDRESS, _at(account, address))
    under_attack = on_account > SIGN_IN_PER_ACCOUNT.attempts
    tries = SIGN_IN_UNDER_ATTACK if under_attack else SIGN_IN_PER_ACCOUNT_AT_ADDRESS.attempts
    if not from_address or here > tries:
        raise rate_limited()
    if under_attack:
        # Slows guessing from many addresses; the owner waits a moment, and is not refused.
        await asyncio.sleep(UNDER_ATTACK_DELAY.total_seconds())
    return SignInAttempt(limiter, account, address)
