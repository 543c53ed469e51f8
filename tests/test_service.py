"""The service around the schemas: settings, health, readiness, how answers are encoded and
how the app is served."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
import uvicorn
from pydantic import ValidationError
from sqlmodel import col

from app.cli import installed_or_auto
from app.cli import main as portal_command
from app.db.models import StaffUser
from app.db.scope import SYSTEM
from app.db.session import Database, create_engine
from app.main import create_app
from app.settings import DEFAULT_SECRET, Environment, Settings, get_settings
from tests.conftest import http_client, make_settings
from tests.support import STAFF, make_tenant, staff_token


def test_h6_production_refuses_to_start_with_the_default_secret() -> None:
    smtp = "smtp://mail.example:587"
    with pytest.raises(ValidationError, match="PORTAL_SECRET_KEY"):
        Settings(env=Environment.PRODUCTION, smtp_url=smtp)
    with pytest.raises(ValidationError, match="PORTAL_SECRET_KEY"):
        Settings(env=Environment.PRODUCTION, secret_key="short", smtp_url=smtp)
    assert Settings(env=Environment.PRODUCTION, secret_key="k" * 40, smtp_url=smtp).is_production
    assert Settings(env=Environment.DEVELOPMENT).secret_key == DEFAULT_SECRET


def test_h6_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("PORTAL_MAX_BODY_BYTES", "1234")
    settings = Settings()
    assert settings.env is Environment.TEST
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.max_body_bytes == 1234


async def test_h6_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_h6_readiness_fails_when_the_database_does_not_answer() -> None:
    # Nothing listens on port 1 of this machine: the database is down.
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
    db = Database(create_engine(url))
    try:
        async with http_client(create_app(make_settings(url), db=db)) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json() == {"status": "unavailable"}
    finally:
        await db.dispose()


async def test_answers_are_compact_json_with_non_ascii_text_as_utf8(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    _, user = await make_tenant(db, slug="acme")
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(StaffUser).where(col(StaffUser.id) == user.id).values(name="Zoë Ångström")
        )
    token = await staff_token(db, settings, user)
    response = await client.post(
        STAFF,
        json={"query": "{ viewer { name } }"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.headers["content-type"] == "application/json"
    assert response.content == orjson.dumps({"data": {"viewer": {"name": "Zoë Ångström"}}})
    assert "Zoë Ångström".encode() in response.content


def test_serve_runs_on_uvloop_and_httptools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORTAL_ENV", "test")
    monkeypatch.setenv("PORTAL_VAR_DIR", str(tmp_path))
    served: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **options: served.update(options))
    get_settings.cache_clear()
    try:
        portal_command(["serve", "--port", "8123"])
    finally:
        get_settings.cache_clear()
    assert (served["loop"], served["http"]) == ("uvloop", "httptools")


def test_serve_leaves_the_choice_to_uvicorn_where_uvloop_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert installed_or_auto("uvloop") == "auto"
    assert installed_or_auto("httptools") == "httptools"
