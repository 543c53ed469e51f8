"""Every database test runs on SQLite and, when PORTAL_TEST_POSTGRES_URL is set, on
PostgreSQL too; each test gets a database of its own, so order never matters."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from app.db.session import Database, create_engine
from app.main import create_app
from app.settings import Environment, Settings
from tests.databases import PostgresDatabases, SqliteDatabases, postgres_reachable, run_in_thread
from tests.stripe_standin import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StandInServer,
    StripeStandIn,
)

POSTGRES_URL = os.environ.get("PORTAL_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]
# The demo data is seeded for a fixed day, so what is overdue never depends on the calendar.
DEMO_TODAY = date(2026, 11, 23)
# What the service writes to disk in tests (mail files) goes here, never into the checkout.
VAR_DIR = Path(tempfile.mkdtemp(prefix="portal-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    if POSTGRES_URL and (why := postgres_reachable(POSTGRES_URL)):
        raise pytest.UsageError(
            f"PORTAL_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {why}"
        )
    if os.environ.get("CI") and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI runs every database test on PostgreSQL: set PORTAL_TEST_POSTGRES_URL"
        )


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    if not POSTGRES_URL:
        yield None
        return
    databases = PostgresDatabases(POSTGRES_URL)
    yield databases
    databases.drop_templates()


def _nothing(_url: str) -> None:
    return None


def _seed(url: str) -> None:
    from app.db.demo import seed_demo

    async def run() -> None:
        db = Database(create_engine(url))
        try:
            await seed_demo(db, today=DEMO_TODAY)
        finally:
            await db.dispose()

    run_in_thread(run)


def _fresh_url(request: pytest.FixtureRequest, template: str) -> Iterator[str]:
    backend: str = request.param
    prepare = _seed if template == "demo" else _nothing
    pool: SqliteDatabases | PostgresDatabases | None = (
        request.getfixturevalue("sqlite_databases")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_databases")
    )
    assert pool is not None
    url = pool.fresh(template, prepare)
    yield url
    pool.drop(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty database on each backend."""
    yield from _fresh_url(request, "empty")


@pytest.fixture(params=BACKENDS)
def demo_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database holding the demo tenants."""
    yield from _fresh_url(request, "demo")


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.TEST,
        "database_url": database_url,
        "var_dir": VAR_DIR,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(database_url))
    yield database
    await database.dispose()


@pytest.fixture
async def demo_db(demo_database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(demo_database_url))
    yield database
    await database.dispose()


@pytest.fixture
def app(db: Database, database_url: str) -> Starlette:
    return create_app(make_settings(database_url), db=db)


@pytest.fixture
def demo_app(demo_db: Database, demo_database_url: str) -> Starlette:
    return create_app(make_settings(demo_database_url), db=demo_db)


def http_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as http:
        yield http


@pytest.fixture
async def demo_client(demo_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(demo_app) as http:
        yield http


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StandInServer]:
    server = StandInServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stripe_standin(stripe_server: StandInServer) -> StripeStandIn:
    """The local Stripe, emptied for this test."""
    stripe_server.stripe.reset()
    return stripe_server.stripe


def stripe_settings(standin_url: str) -> dict[str, object]:
    """Settings that point the real Stripe SDK at the stand-in."""
    return {
        "stripe_secret_key": SECRET_KEY,
        "stripe_publishable_key": PUBLISHABLE_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": standin_url,
    }
