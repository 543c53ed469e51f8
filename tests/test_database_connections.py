"""H6: pooled connections the database dropped (a restart, a failover) while nobody used
them. The pool does not ping before each checkout; a query that meets a dropped connection
runs again on a live one, and a mutation is never run twice."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from app.db.models import Customer, EmailLinkRequest
from app.db.scope import SYSTEM
from app.db.session import Database
from app.schema.trusted import OPERATIONS
from app.settings import Settings
from tests.conftest import POSTGRES_URL
from tests.databases import connect
from tests.support import PORTAL, error_codes, gql, make_customers, make_tenant, staff_token

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="PORTAL_TEST_POSTGRES_URL is not set"),
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

CUSTOMERS = "{ customers(first: 5) { edges { node { name contacts { name } sites { name } } } } }"
BRANDING = '{ branding(business: "acme") { name } }'
RESET = 'mutation { requestPasswordReset(email: "jo@customer.example") }'
# A trusted document of the portal's contract: it runs as a plan compiled at start-up.
BRANDING_DOCUMENT = (OPERATIONS / "Branding.graphql").read_text()
CREATE_CUSTOMER = 'mutation { createCustomer(input: {name: "Late Ltd"}) { name } }'


async def drop_pooled_connections(url: str) -> int:
    """What a database restart does to the pool: every other session of the database ends."""
    connection = await connect(url)
    try:
        ended = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        # Terminating is asynchronous: wait until the backends are gone.
        while await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ):
            pass
    finally:
        await connection.close()
    return len(ended)


async def test_h6_a_signed_in_query_on_dropped_connections_still_answers(
    db: Database, client: httpx.AsyncClient, settings: Settings, database_url: str
) -> None:
    tenant, user = await make_tenant(db, slug="acme")
    await make_customers(db, tenant, 2)
    token = await staff_token(db, settings, user)
    before = await gql(client, CUSTOMERS, token=token)
    assert len(before["data"]["customers"]["edges"]) == 2

    assert await drop_pooled_connections(database_url) > 0
    assert await gql(client, CUSTOMERS, token=token) == before


async def test_h6_a_query_whose_first_statement_meets_a_dropped_connection_runs_again(
    db: Database, client: httpx.AsyncClient, database_url: str
) -> None:
    # Nobody signed in: the first statement is the resolver's, inside GraphQL execution.
    await make_tenant(db, slug="acme")
    before = await gql(client, BRANDING, path=PORTAL)
    assert before == {"data": {"branding": {"name": "Acme"}}}

    assert await drop_pooled_connections(database_url) > 0
    assert await gql(client, BRANDING, path=PORTAL) == before


async def test_h6_a_trusted_query_run_as_a_plan_on_a_dropped_connection_runs_again(
    db: Database, client: httpx.AsyncClient, database_url: str
) -> None:
    await make_tenant(db, slug="acme")
    branding = {"query": BRANDING_DOCUMENT, "variables": {"business": "acme"}}
    before = (await client.post(PORTAL, json=branding)).json()
    assert before["data"]["branding"]["name"] == "Acme"

    assert await drop_pooled_connections(database_url) > 0
    after = await client.post(PORTAL, json=branding)
    assert after.status_code == 200
    assert after.json() == before


async def test_h6_a_mutation_that_meets_a_dropped_connection_is_answered_and_not_run_again(
    db: Database, client: httpx.AsyncClient, database_url: str
) -> None:
    await make_tenant(db, slug="acme")

    assert await drop_pooled_connections(database_url) > 0
    failed = await gql(client, RESET, path=PORTAL)
    assert failed["data"] is None
    assert error_codes(failed) == ["DATABASE_UNAVAILABLE"]
    assert await link_requests(db) == 0
    # The pool let the dropped connections go: asking again works, once.
    assert await gql(client, RESET, path=PORTAL) == {"data": {"requestPasswordReset": True}}
    assert await link_requests(db) == 1


async def test_h6_a_signed_in_mutation_on_dropped_connections_runs_once(
    db: Database, client: httpx.AsyncClient, settings: Settings, database_url: str
) -> None:
    _, user = await make_tenant(db, slug="acme")
    token = await staff_token(db, settings, user)
    assert (await gql(client, "{ viewer { name } }", token=token))["data"]["viewer"]

    assert await drop_pooled_connections(database_url) > 0
    # The sign-in check meets the dropped connection before the mutation runs.
    body = await gql(client, CREATE_CUSTOMER, token=token)
    assert body == {"data": {"createCustomer": {"name": "Late Ltd"}}}
    async with db.session(SYSTEM) as session:
        names = list(await session.scalars(sa.select(col(Customer.name))))
    assert names == ["Late Ltd"]


async def link_requests(db: Database) -> int:
    async with db.session(SYSTEM) as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(EmailLinkRequest))
    return int(count or 0)
