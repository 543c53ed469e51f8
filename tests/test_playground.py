"""H4: the development playgrounds work on a machine without internet, on any host name and
port the server runs at; production serves neither the page nor its scripts."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.db.session import Database
from app.main import create_app
from tests.conftest import http_client, make_settings
from tests.support import PORTAL, STAFF

PAGE = {"accept": "text/html"}
PRODUCTION = {"env": "production", "secret_key": "k" * 40, "smtp_url": "smtp://127.0.0.1:1"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def development(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, env="development"), db=db)
    async with http_client(app) as client:
        yield client


@pytest.fixture
async def production(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(create_app(make_settings(database_url, **PRODUCTION), db=db)) as client:
        yield client


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h4_the_playground_loads_everything_from_this_server(
    development: httpx.AsyncClient, path: str
) -> None:
    page = await development.get(path, headers=PAGE)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == [
        "/static/playground/graphiql.css",
        "/static/playground/graphiql.js",
        "/static/playground/react-dom.js",
        "/static/playground/react.js",
    ]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in assets:
        served = await development.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000, asset
    assert "javascript" in (await development.get(assets[1])).headers["content-type"]


async def test_h4_the_playground_sends_the_csrf_header_and_signs_in_as_a_demo_user(
    development: httpx.AsyncClient,
) -> None:
    staff = (await development.get(STAFF, headers=PAGE)).text
    portal = (await development.get(PORTAL, headers=PAGE)).text
    assert '"X-CSRF-Protection": "1"' in staff
    assert "owner@acme.example" in staff and "harbourview" in portal


async def test_h4_production_serves_no_playground_scripts(production: httpx.AsyncClient) -> None:
    for asset in ("/static/playground/graphiql.js", "/static/playground/react.js"):
        assert (await production.get(asset)).status_code == 404


@pytest.mark.parametrize(
    "served_at", ["http://localhost:8100", "http://127.0.0.1:8100", "http://box.local:9000"]
)
async def test_h4_the_playground_may_call_the_server_it_came_from_on_any_host_and_port(
    development: httpx.AsyncClient, served_at: str
) -> None:
    host = served_at.removeprefix("http://")
    own = await development.post(
        STAFF, json={"query": "{ __typename }"}, headers={"origin": served_at, "host": host}
    )
    assert own.status_code == 200 and own.json() == {"data": {"__typename": "Query"}}
    # A page of another site is still refused, whatever host it names.
    foreign = await development.post(
        STAFF,
        json={"query": "{ __typename }"},
        headers={"origin": "http://evil.example", "host": host},
    )
    assert foreign.status_code == 403
    assert foreign.json()["errors"][0]["extensions"]["code"] == "CSRF_FAILED"


async def test_h4_outside_development_only_the_public_url_is_the_servers_own_origin(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post(
        STAFF,
        json={"query": "{ __typename }"},
        headers={"origin": "http://localhost:8100", "host": "localhost:8100"},
    )
    assert refused.status_code == 403


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_h4_make_run_takes_a_port() -> None:
    planned = subprocess.run(
        ["make", "-n", "run", "PORT=8100"],  # noqa: S607  (make from PATH, a dry run)
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "portal dev --port 8100" in planned.stdout
