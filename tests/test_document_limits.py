"""H3, H4: what one request may ask, and what an error may say, on both schemas."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.db.session import Database
from app.main import create_app
from app.schema.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from app.settings import Settings
from tests.conftest import http_client, make_settings
from tests.support import PORTAL, STAFF, gql, make_customers, make_tenant, staff_token

PRODUCTION = {"env": "production", "secret_key": "k" * 40, "smtp_url": "smtp://127.0.0.1:1"}


@pytest.fixture
async def production(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(create_app(make_settings(database_url, **PRODUCTION), db=db)) as client:
        yield client


def _nested(depth: int) -> str:
    """A query nesting `depth` levels below its root field, through a fragment:
    customers > edges > node > contacts > site > contacts > site ..."""
    relations = ["contacts" if level % 2 == 0 else "site" for level in range(depth - 3)]
    inner = "id"
    for relation in reversed(relations):
        inner = f"{relation} {{ {inner} }}"
    return (
        "query __schema { customers { edges { ...Deep } } } "
        f"fragment Deep on CustomerEdge {{ node {{ {inner} }} }}"
    )


async def _refused(client: httpx.AsyncClient, query: str, path: str = STAFF) -> dict[str, object]:
    body = await gql(client, query, path=path)
    assert body.get("data") is None and body["errors"], body
    return body


async def test_h3_depth_past_the_limit_is_rejected_before_execution(
    client: httpx.AsyncClient,
) -> None:
    body = await _refused(client, _nested(MAX_DEPTH + 1))
    assert "exceeds maximum operation depth" in str(body["errors"])


async def test_h3_depth_at_the_limit_passes_depth_and_meets_the_cost_limit(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, user = await make_tenant(db, slug="deep")
    await make_customers(db, tenant, 1)
    token = await staff_token(db, settings, user)
    # Contacts read again under each contact's site: deep enough is allowed, the rows not.
    deepest = await gql(client, _nested(MAX_DEPTH), token=token)
    assert [e["extensions"]["code"] for e in deepest["errors"]] == ["QUERY_TOO_COSTLY"]
    shallower = await gql(client, _nested(MAX_DEPTH - 7), token=token)
    assert "errors" not in shallower and shallower["data"]["customers"]["edges"]


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_aliases_past_the_limit_are_rejected(client: httpx.AsyncClient, path: str) -> None:
    await _refused(
        client, "{ " + " ".join(f"a{n}: viewer {{ id }}" for n in range(100)) + " }", path
    )
    allowed = await gql(
        client, "{ " + " ".join(f"a{n}: __typename" for n in range(MAX_ALIASES)) + " }", path=path
    )
    assert "errors" not in allowed and len(allowed["data"]) == MAX_ALIASES


async def test_h3_aliases_in_a_fragment_count_once_per_spread(client: httpx.AsyncClient) -> None:
    fragment = "fragment Ten on Query { " + " ".join(f"t{n}: __typename" for n in range(10)) + " }"
    query = "{ " + " ".join("...Ten" for _ in range(10)) + " } " + fragment
    body = await _refused(client, query)
    assert "100 aliases found" in str(body["errors"])


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_a_document_past_the_token_limit_is_rejected(
    client: httpx.AsyncClient, path: str
) -> None:
    await _refused(client, "{ " + "__typename " * (MAX_TOKENS + 1) + "}", path)


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_a_body_past_the_size_limit_gets_413(client: httpx.AsyncClient, path: str) -> None:
    huge = "{ __typename }" + " " * 1_000_000
    response = await client.post(path, json={"query": huge})
    assert response.status_code == 413
    variables = await client.post(
        path, json={"query": "{ __typename }", "variables": {"x": "y" * 200_000}}
    )
    assert variables.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"x": "'
        for _ in range(100):
            yield b"y" * 10_000
        yield b'"}}'

    streamed = await client.post(
        path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_h3_unexpected_errors_are_masked_with_a_request_id_and_logged(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant, user = await make_tenant(db, slug="broken")
    await make_customers(db, tenant, 1)
    async with db.engine.begin() as connection:
        # The database loses a table under a running service: a real unexpected failure.
        await connection.exec_driver_sql("ALTER TABLE sites RENAME TO sites_gone")
    caplog.set_level(logging.ERROR, logger="app.errors")
    response = await client.post(
        STAFF,
        json={"query": "{ customers { edges { node { name sites { id } } } } }"},
        headers={"authorization": f"Bearer {await staff_token(db, settings, user)}"},
    )
    request_id = response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_ERROR", "requestId": request_id}
    for leak in ("Traceback", "sqlite", "asyncpg", "Error", "sites_gone", "SELECT", "exist"):
        assert leak not in response.text
    [record] = [r for r in caplog.records if r.name == "app.errors"]
    assert request_id in record.getMessage() and record.exc_info is not None


async def test_h4_no_field_suggestions_in_production(
    production: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for path in (STAFF, PORTAL):
        # The production portal refuses the text as untrusted (H2), before it could suggest.
        hidden = await production.post(path, json={"query": "{ viewr { id } }"})
        assert hidden.json()["errors"] and "Did you mean" not in hidden.text
    shown = await _refused(client, "{ viewr { id } }")
    assert "Did you mean 'viewer'" in str(shown)


async def test_h4_portal_introspection_is_off_in_production(
    production: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for query in ("{ __schema { types { name } } }", '{ __type(name: "Query") { name } }'):
        refused = await production.post(PORTAL, json={"query": query})
        assert refused.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
    staff = await gql(production, "{ __schema { queryType { name } } }")
    assert staff["data"]["__schema"]["queryType"]["name"] == "Query"
    development = await gql(client, "{ __schema { queryType { name } } }", path=PORTAL)
    assert development["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_h4_playgrounds_only_in_development(
    production: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    development: Starlette = create_app(make_settings(database_url, env="development"), db=db)
    async with http_client(development) as dev:
        for path in (STAFF, PORTAL):
            page = await dev.get(path, headers={"accept": "text/html"})
            assert page.status_code == 200 and "<html" in page.text.lower()
            refused = await production.get(path, headers={"accept": "text/html"})
            assert "<html" not in refused.text.lower()


async def test_h3_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    fresh = await client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    echoed = await client.get("/healthz", headers={"x-request-id": "abcdef123456"})
    assert echoed.headers["x-request-id"] == "abcdef123456"
    for unsafe in ("<script>", "a" * 200):
        replaced = await client.get("/healthz", headers={"x-request-id": unsafe})
        assert replaced.headers["x-request-id"] != unsafe
