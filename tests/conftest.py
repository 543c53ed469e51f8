"""Every database test runs on SQLite and, when PORTAL_TEST_POSTGRES_URL is set, on
PostgreSQL too; each test gets a database of its own, so order never matters."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from app.db.session import Database, create_engine
from app.main import create_app
from app.settings import Environment, Settings
from tests.databases import PostgresDatabases, SqliteDatabases, postgres_reachable, run_in_thread
from tests.smtp import SmtpServer
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
    config.addinivalue_line(
        "markers",
        "database(prepare=...): the test's database_url starts as the async `prepare(db)` leaves a "
        "migrated database; prepared once per backend and process, copied for each test",
    )
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


Prepare = Callable[[Database], Awaitable[None]]


async def _nothing(_db: Database) -> None:
    return None


async def demo(db: Database) -> None:
    from app.db.demo import seed_demo

    await seed_demo(db, today=DEMO_TODAY)


# Template databases by name: each name is one `prepare`.
_TEMPLATES: dict[str, Prepare] = {"empty": _nothing, "demo": demo}


def _template_name(prepare: Prepare) -> str:
    name = next((name for name, known in _TEMPLATES.items() if known is prepare), None)
    if name is None:
        name = prepare.__name__
        assert name not in _TEMPLATES, f"two database templates are named {name}"
        _TEMPLATES[name] = prepare
    return name


def _prepared(prepare: Prepare) -> Callable[[str], None]:
    def run(url: str) -> None:
        async def go() -> None:
            db = Database(create_engine(url))
            try:
                await prepare(db)
            finally:
                await db.dispose()

        run_in_thread(go)

    return run


def _fresh_url(request: pytest.FixtureRequest, prepare: Prepare) -> Iterator[str]:
    backend: str = request.param
    pool: SqliteDatabases | PostgresDatabases | None = (
        request.getfixturevalue("sqlite_databases")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_databases")
    )
    assert pool is not None
    url = pool.fresh(_template_name(prepare), _prepared(prepare))
    yield url
    pool.drop(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database on each backend: empty, or as the test's `database` marker
    prepares it (`@pytest.mark.database(prepare=...)`)."""
    marker = request.node.get_closest_marker("database")
    yield from _fresh_url(request, marker.kwargs["prepare"] if marker else _nothing)


@pytest.fixture(params=BACKENDS)
def demo_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database holding the demo tenants."""
    yield from _fresh_url(request, demo)


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


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, on a port of its own."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


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
