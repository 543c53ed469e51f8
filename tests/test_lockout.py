"""SECURITY.md row 31, lockout by strangers: wrong passwords from many addresses, one
document of 100 aliased sign-ins from a shared address, and a spoofed X-Forwarded-For. The
owner still signs in (back-off, not lockout), a refused document counts once, and forwarded
headers count only from the proxies named in the settings; with the counters in the database
and in Redis."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlmodel import col
from starlette.applications import Starlette

from app.auth.passwords import hash_password
from app.auth.ratelimit import (
    SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_ADDRESS,
    UNDER_ATTACK_DELAY,
    DatabaseRateLimiter,
    Limit,
    RateLimiter,
    RedisRateLimiter,
    counter_key,
)
from app.cli import server_options
from app.db.base import utcnow
from app.db.models import RateLimitCounter, StaffUser
from app.db.scope import SYSTEM
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings
from tests.support import PASSWORD, PORTAL, STAFF, error_codes, make_portal_user, make_tenant

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "").strip()
LIMITERS = ["database", *(["redis"] if REDIS_URL else [])]
SIGN_IN = {
    STAFF: """mutation ($tenant: String!, $login: String!, $password: String!) {
      signIn(tenant: $tenant, email: $login, password: $password, client: MOBILE) {
        viewer { email }
      }
    }""",
    PORTAL: """mutation ($login: String!, $password: String!) {
      signIn(login: $login, password: $password, client: MOBILE) { viewer { email } }
    }""",
}
WRONG = "not the password at all"


@dataclass(frozen=True)
class Owner:
    """An account and the endpoint it signs in at; its names are new in every test, so
    counters kept in Redis from other tests never touch it."""

    path: str
    tenant: str
    email: str


def fresh_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture(params=LIMITERS)
def limiter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lockout_settings(database_url: str, limiter: str) -> Settings:
    return make_settings(database_url, redis_url=REDIS_URL if limiter == "redis" else None)


@pytest.fixture
def lockout_app(db: Database, lockout_settings: Settings) -> Starlette:
    return create_app(lockout_settings, db=db)


@pytest.fixture(params=[STAFF, PORTAL], ids=["staff", "portal"])
async def owner(request: pytest.FixtureRequest, db: Database) -> Owner:
    slug = f"t{uuid.uuid4().hex[:10]}"
    tenant, user = await make_tenant(db, slug=slug)
    if request.param == STAFF:
        async with db.transaction(SYSTEM) as session:
            await session.execute(
                sa.update(StaffUser)
                .where(col(StaffUser.id) == user.id)
                .values(password_hash=hash_password(PASSWORD))
            )
        return Owner(STAFF, slug, user.email)
    email = f"{slug}@customer.example"
    await make_portal_user(db, tenant, email=email, username=slug)
    return Owner(PORTAL, slug, email)


@pytest.fixture
async def clients(lockout_app: Starlette) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """A client per address, made on first use."""
    made: dict[str, httpx.AsyncClient] = {}

    class Clients(dict[str, httpx.AsyncClient]):
        def __missing__(self, address: str) -> httpx.AsyncClient:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=lockout_app, client=(address, 40_000)),
                base_url="http://testserver",
            )
            made[address] = self[address] = client
            return client

    yield Clients()
    for client in made.values():
        await client.aclose()


async def sign_in(
    client: httpx.AsyncClient,
    owner: Owner,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """The error codes of one sign-in as `owner` (none when it signed in)."""
    variables = {"login": owner.email, "password": password}
    if owner.path == STAFF:
        variables["tenant"] = owner.tenant
    response = await client.post(
        owner.path, json={"query": SIGN_IN[owner.path], "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    if not body.get("errors"):
        assert body["data"]["signIn"]["viewer"]["email"] == owner.email
    return error_codes(body)


async def address_counters(db: Database) -> dict[str, int]:
    async with db.session(SYSTEM) as session:
        rows = await session.execute(
            sa.select(col(RateLimitCounter.key), col(RateLimitCounter.hits)).where(
                col(RateLimitCounter.key).startswith("sign-in:address:")
            )
        )
        return {key.removeprefix("sign-in:address:"): hits for key, hits in rows}


async def test_sec31_ten_wrong_passwords_from_one_address_do_not_lock_the_owner_out(
    clients: dict[str, httpx.AsyncClient], owner: Owner
) -> None:
    stranger, home = fresh_address(), fresh_address()
    for _ in range(10):
        assert await sign_in(clients[stranger], owner, WRONG) == ["INVALID_CREDENTIALS"]
    # The guessing address may not try this account again, not even with the password...
    assert await sign_in(clients[stranger], owner) == ["RATE_LIMITED"]
    # ...while its owner, elsewhere, signs in: after a moment's back-off.
    started = time.monotonic()
    assert await sign_in(clients[home], owner) == []
    assert time.monotonic() - started >= UNDER_ATTACK_DELAY.total_seconds()


async def test_sec31_guesses_from_many_addresses_slow_down_and_never_lock_the_owner_out(
    clients: dict[str, httpx.AsyncClient], owner: Owner
) -> None:
    strangers = [fresh_address() for _ in range(5)]
    for stranger in strangers:
        assert await sign_in(clients[stranger], owner, WRONG) == ["INVALID_CREDENTIALS"]
        assert await sign_in(clients[stranger], owner, WRONG) == ["INVALID_CREDENTIALS"]
    # Ten wrong passwords from anywhere: the account is under attack. A failing address
    # has one more try of it; a new one three, each after a pause.
    assert await sign_in(clients[strangers[0]], owner, WRONG) == ["INVALID_CREDENTIALS"]
    assert await sign_in(clients[strangers[0]], owner, WRONG) == ["RATE_LIMITED"]
    newcomer = fresh_address()
    started = time.monotonic()
    for _ in range(3):
        assert await sign_in(clients[newcomer], owner, WRONG) == ["INVALID_CREDENTIALS"]
    assert time.monotonic() - started >= 3 * UNDER_ATTACK_DELAY.total_seconds()
    assert await sign_in(clients[newcomer], owner) == ["RATE_LIMITED"]
    # The owner mistypes once, then signs in, from an address that was not guessing.
    home = clients[fresh_address()]
    assert await sign_in(home, owner, WRONG) == ["INVALID_CREDENTIALS"]
    assert await sign_in(home, owner) == []


async def test_sec31_the_owner_signing_in_often_from_one_address_is_never_refused(
    clients: dict[str, httpx.AsyncClient], owner: Owner
) -> None:
    office = clients[fresh_address()]
    # A right password takes back its attempt on the account: only the address's 50 bound it.
    for _ in range(12):
        assert await sign_in(office, owner) == []


async def test_sec31_a_document_of_100_aliased_sign_ins_counts_once_against_a_shared_address(
    clients: dict[str, httpx.AsyncClient], owner: Owner, db: Database, limiter: str
) -> None:
    office = fresh_address()
    guess = (
        f'signIn(tenant: "{owner.tenant}", email: "{owner.email}", password: "x") '
        "{ viewer { email } }"
        if owner.path == STAFF
        else f'signIn(login: "{owner.email}", password: "x") {{ viewer {{ email }} }}'
    )
    document = "mutation {" + " ".join(f"a{n}: {guess}" for n in range(100)) + "}"
    response = await clients[office].post(owner.path, json={"query": document})
    assert response.status_code == 200 and response.json()["data"] is None
    # Everyone behind the office's address still signs in: it paid for one request.
    assert await sign_in(clients[office], owner) == []
    if limiter == "database":
        assert await address_counters(db) == {office: 2}


def served(app: Starlette, settings: Settings) -> object:
    """The app as `portal serve` hands it to its connections: wrapped by uvicorn as the
    command's options say."""
    config = uvicorn.Config(app, **server_options(settings))
    config.load()
    return config.loaded_app


# Its connections come from 127.0.0.1, whose counter in a shared Redis no other test may
# touch meanwhile: its cases run one after another on one worker.
@pytest.mark.xdist_group("redis-counter-of-127.0.0.1")
async def test_sec31_a_forwarded_for_header_is_ignored_unless_a_trusted_proxy_sent_it(
    lockout_app: Starlette,
    lockout_settings: Settings,
    owner: Owner,
    db: Database,
    limiter: str,
) -> None:
    # uvicorn's own default would believe any client on 127.0.0.1.
    assert lockout_settings.trusted_proxies == []
    if limiter == "redis":
        # A shared Redis keeps what earlier runs counted for 127.0.0.1 for their window.
        redis = RedisRateLimiter(REDIS_URL)
        await redis._redis.delete(f"portal:rate:{counter_key(SIGN_IN_PER_ADDRESS, '127.0.0.1')}")
        await redis.close()
    transport = httpx.ASGITransport(
        app=served(lockout_app, lockout_settings),  # type: ignore[arg-type]
        client=("127.0.0.1", 40_000),
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as local:
        for _ in range(10):
            spoofed = {"x-forwarded-for": fresh_address()}
            assert await sign_in(local, owner, WRONG, spoofed) == ["INVALID_CREDENTIALS"]
        # Each spoofed value got no fresh budget: the connection's address spent its tries.
        spoofed = {"x-forwarded-for": fresh_address()}
        assert await sign_in(local, owner, headers=spoofed) == ["RATE_LIMITED"]
    if limiter == "database":
        assert await address_counters(db) == {"127.0.0.1": 11}


async def test_sec31_a_trusted_proxy_names_the_client_and_nobody_else_can(
    db: Database, database_url: str, owner: Owner, limiter: str
) -> None:
    settings = make_settings(
        database_url,
        trusted_proxies="192.0.2.10, 192.0.2.128/25",
        redis_url=REDIS_URL if limiter == "redis" else None,
    )
    assert settings.trusted_proxies == ["192.0.2.10", "192.0.2.128/25"]
    app = served(create_app(settings, db=db), settings)
    client, other = fresh_address(), fresh_address()

    def through(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(peer, 40_000))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with through("192.0.2.10") as proxy, through("192.0.2.200") as second:
        for _ in range(10):
            # A client may put anything in front; the proxy appends the address it saw.
            forwarded = {"x-forwarded-for": f"{fresh_address()}, {client}"}
            assert await sign_in(proxy, owner, WRONG, forwarded) == ["INVALID_CREDENTIALS"]
        assert await sign_in(proxy, owner, headers={"x-forwarded-for": client}) == ["RATE_LIMITED"]
        # Another client behind the same proxies is not the one that was guessing.
        assert await sign_in(second, owner, headers={"x-forwarded-for": other}) == []
    async with through(client) as direct:
        # A client reaching the service directly cannot name someone else.
        assert await sign_in(direct, owner, headers={"x-forwarded-for": other}) == ["RATE_LIMITED"]
    if limiter == "database":
        assert await address_counters(db) == {client: 12, other: 1}


@pytest.fixture
async def counters(db: Database, limiter: str) -> AsyncIterator[RateLimiter]:
    if limiter == "database":
        yield DatabaseRateLimiter(db)
        return
    redis = RedisRateLimiter(REDIS_URL)
    yield redis
    await redis.close()


async def test_sec31_a_right_password_takes_back_its_attempt_and_never_goes_below_zero(
    counters: RateLimiter,
) -> None:
    limit, subject = Limit("test-forget", 3, timedelta(minutes=1)), uuid.uuid4().hex
    await counters.forget_one(limit, subject)
    assert await counters.count(limit, subject) == 1
    assert await counters.count(limit, subject) == 2
    await counters.forget_one(limit, subject)
    await counters.forget_one(limit, subject)
    await counters.forget_one(limit, subject)
    assert await counters.count(limit, subject) == 1


async def test_sec31_a_finished_window_is_not_taken_back_from(db: Database) -> None:
    counters, limit = DatabaseRateLimiter(db), Limit("test-forget", 3, timedelta(minutes=1))
    start = utcnow()
    assert await counters.count(limit, "jo", now=start) == 1
    await counters.forget_one(limit, "jo", now=start + timedelta(minutes=2))
    assert await counters.count(limit, "jo", now=start + timedelta(seconds=30)) == 2


async def test_sec31_a_login_of_any_length_or_text_is_counted(counters: RateLimiter) -> None:
    # Logins come from the client; the counter's key must hold whatever they are.
    for login in ["x" * 5000 + uuid.uuid4().hex, f"jo\x00{uuid.uuid4().hex}"]:
        assert await counters.count(SIGN_IN_PER_ACCOUNT, login) == 1
        assert await counters.count(SIGN_IN_PER_ACCOUNT, login.upper()) == 2
