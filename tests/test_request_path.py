"""The portal's fast path: trusted queries answered by plans compiled at start-up, exactly as
the generic executor answers them, over one connection and one transaction per request."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import strawberry
from graphql import parse
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, QueuePool, StaticPool
from sqlmodel import col
from starlette.applications import Starlette
from strawberry import Schema

from app.db.demo import DEMO_SIGN_INS
from app.db.models import Customer, Tenant
from app.db.scope import SYSTEM
from app.db.session import Database
from app.main import GraphQLEndpoint
from app.schema.permissions import ViewerPermission, guarded
from app.schema.plans import CannotPlan, compile_plan
from app.schema.trusted import OPERATIONS
from app.settings import Environment, Settings
from tests.support import (
    PORTAL,
    account_and_contact,
    count_statements,
    make_portal_user,
    portal_token,
)

QUERIES = {
    path.stem: path.read_text()
    for path in sorted(OPERATIONS.glob("*.graphql"))
    if path.read_text().lstrip("# \n").startswith("query") or "\nquery " in path.read_text()
}
# The detail screens, each opened on the first row of its list.
DETAIL = {
    "Invoice": ("Invoices", "invoices"),
    "Job": ("Jobs", "jobs"),
    "Quote": ("Quotes", "quotes"),
}
PORTAL_EMAILS = [sign_in.email for sign_in in DEMO_SIGN_INS if sign_in.kind == "portal"]
# A download link is signed for five minutes from the moment it is made: the same link made
# a second later differs in its expiry and signature, whichever path made it.
SIGNED = re.compile(r'("downloadUrl":"[^"?]*)\?[^"]*"')


def _endpoint(app: Starlette) -> GraphQLEndpoint:
    for route in app.routes:
        if getattr(route, "path", None) == PORTAL:
            endpoint = getattr(route, "app", None)
            assert isinstance(endpoint, GraphQLEndpoint)
            return endpoint
    raise AssertionError("no portal endpoint")


@contextmanager
def generic_executions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """Counts the operations the generic executor runs."""
    ran: list[str | None] = []
    execute = Schema.execute

    async def counted(self: Schema, *args: Any, **kwargs: Any) -> Any:
        ran.append(kwargs.get("operation_name"))
        return await execute(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Schema, "execute", counted)
        yield ran


async def _tokens(db: Database) -> dict[str, str]:
    """A bearer token for every demo portal user, and for a customer of a business whose
    plan has no portal."""
    settings = Settings(env=Environment.TEST)
    tokens = {}
    for email in PORTAL_EMAILS:
        account, _ = await account_and_contact(db, email)
        tokens[email] = await portal_token(db, settings, account)
    async with db.session(SYSTEM) as session:
        tenant = (
            await session.scalars(sa.select(Tenant).where(col(Tenant.slug) == "brightwater"))
        ).one()
        mill = (
            await session.scalars(sa.select(Customer).where(col(Customer.tenant_id) == tenant.id))
        ).first()
    user = await make_portal_user(
        db, tenant, email="polly@oldmill.example", username="polly", customer=mill
    )
    tokens["polly@oldmill.example"] = await portal_token(db, settings, user.account)
    return tokens


async def _post(
    client: httpx.AsyncClient, token: str, name: str, variables: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        PORTAL,
        json={"query": QUERIES[name], "operationName": name, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )


async def _variables(client: httpx.AsyncClient, token: str, name: str) -> dict[str, Any]:
    if name == "Home":
        return {"withInvoices": True, "withRequests": True, "withJobs": False}
    if name == "Appointments":
        return {"from": "2026-11-01", "to": "2027-01-31"}
    if name == "Branding":
        return {"business": "acme"}
    if name == "MessageThread":
        body = (await _post(client, token, "MessageThreads", {})).json()
        edges = ((body.get("data") or {}).get("messageThreads") or {}).get("edges") or []
        return {"about": edges[0]["node"]["subjectId"] if edges else "Sm9iOm5vbmU="}
    if name not in DETAIL:
        return {}
    listing, field = DETAIL[name]
    body = (await _post(client, token, listing, {})).json()
    edges = ((body.get("data") or {}).get(field) or {}).get("edges") or []
    # A user who sees none asks for a made-up one: the answer is still compared.
    return {"id": edges[0]["node"]["id"] if edges else "SW52b2ljZTpub25l"}


def test_h2_every_trusted_query_of_the_contract_has_a_plan(demo_app: Starlette) -> None:
    endpoint = _endpoint(demo_app)
    assert sorted(plan.name for plan in endpoint.plans.values()) == sorted(QUERIES)


async def test_h2_every_trusted_query_answers_the_same_planned_as_generic_for_every_demo_user(
    demo_db: Database,
    demo_app: Starlette,
    demo_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = _endpoint(demo_app)
    plans = dict(endpoint.plans)
    tokens = await _tokens(demo_db)
    answered_by_plans = 0
    for email, token in tokens.items():
        for name in QUERIES:
            variables = await _variables(demo_client, token, name)
            endpoint.plans = plans
            with generic_executions(monkeypatch) as ran:
                planned = await _post(demo_client, token, name, variables)
            answered_by_plans += not ran
            endpoint.plans = {}
            with generic_executions(monkeypatch) as ran_generic:
                generic = await _post(demo_client, token, name, variables)
            assert ran_generic == [name]
            assert planned.status_code == generic.status_code, (email, name)
            assert SIGNED.sub(r"\1", planned.text) == SIGNED.sub(r"\1", generic.text), (
                email,
                name,
            )
            # A plan answers only what it can answer alone; errors come from the generic path.
            assert bool(ran) == ("errors" in generic.json()), (email, name, generic.text)
    endpoint.plans = plans
    # Most of these answers came from plans, not from the generic executor.
    assert answered_by_plans > len(tokens) * len(QUERIES) // 2


async def test_h2_a_refused_user_gets_the_generic_errors_from_a_planned_query(
    demo_db: Database, demo_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = await _tokens(demo_db)
    with generic_executions(monkeypatch) as ran:
        switched_off = await _post(demo_client, tokens["parks@citycouncil.example"], "Invoices", {})
        narrowed = await _post(demo_client, tokens["bursar@greenfield.example"], "Jobs", {})
    codes = [
        [error["extensions"]["code"] for error in response.json()["errors"]]
        for response in (switched_off, narrowed)
    ]
    assert codes == [["PORTAL_DISABLED"], ["MODULE_FORBIDDEN"]]
    assert ran == ["Invoices", "Jobs"]


@contextmanager
def connections(db: Database) -> Iterator[dict[str, int]]:
    """Counts the pool checkouts and the transactions begun on the engine."""
    counts = {"checkouts": 0, "begins": 0}

    def checkout(*_: Any) -> None:
        counts["checkouts"] += 1

    def begin(*_: Any) -> None:
        counts["begins"] += 1

    engine = db.engine.sync_engine
    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine, "begin", begin)
    try:
        yield counts
    finally:
        event.remove(engine.pool, "checkout", checkout)
        event.remove(engine, "begin", begin)


async def test_h6_a_mutation_reads_back_what_it_wrote_after_signing_in_on_the_shared_connection(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = (await _tokens(demo_db))["facilities@harbourview.example"]
    added = await demo_client.post(
        PORTAL,
        json={
            "query": (OPERATIONS / "AddProperty.graphql").read_text(),
            "operationName": "AddProperty",
            "variables": {
                "input": {
                    "name": "East Annexe",
                    "addressLine1": "2 Quay Street",
                    "town": "Poole",
                    "postcode": "BH15 1HJ",
                }
            },
        },
        headers={"authorization": f"Bearer {token}"},
    )
    assert "errors" not in added.json(), added.text
    again = (await _post(demo_client, token, "Properties", {})).json()
    assert "East Annexe" in str(again["data"])


# What each trusted query costs the demo's company contact: one statement for the sign-in
# state, then its data, whatever the number of rows. A count may go down, never up.
STATEMENTS = {
    "Appointments": 6,
    "Branding": 2,
    "Certificates": 3,
    "Contacts": 3,
    "Home": 5,
    "Invoice": 5,
    "Invoices": 3,
    "Job": 4,
    "Jobs": 3,
    "MessageThread": 5,
    "MessageThreads": 5,
    "NewRequestForm": 6,
    "PortalUsers": 4,
    "Properties": 3,
    "Quote": 4,
    "Quotes": 3,
    "Requests": 4,
    "Viewer": 1,
}


def test_h6_every_trusted_query_has_a_known_statement_count() -> None:
    assert sorted(STATEMENTS) == sorted(QUERIES)


@pytest.mark.parametrize("name", sorted(STATEMENTS))
async def test_h6_each_trusted_query_costs_its_statements_over_one_connection_and_transaction(
    demo_db: Database, demo_client: httpx.AsyncClient, name: str
) -> None:
    token = (await _tokens(demo_db))["facilities@harbourview.example"]
    variables = await _variables(demo_client, token, name)
    with count_statements(demo_db) as counter, connections(demo_db) as counts:
        response = await _post(demo_client, token, name, variables)
    body = response.json()
    assert "errors" not in body and all(body["data"].values()), body
    assert len(counter.statements) == STATEMENTS[name], counter.statements
    # The sign-in state and the data, over one pooled connection in one transaction.
    assert counts == {"checkouts": 1, "begins": 1}


async def test_h6_a_read_request_cut_off_mid_statement_gives_its_connection_back(
    db: Database,
) -> None:
    # A statement still running when the request ends (its time limit fired while a loader's
    # batch waited on the database): the connection is dropped, never left checked out.
    slow = (
        "SELECT pg_sleep(3)"
        if db.dialect == "postgresql"
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000)"
        " SELECT count(*) FROM n"
    )
    async with db.reading(), db.session(SYSTEM) as session:
        running = asyncio.create_task(session.execute(sa.text(slow)))
        await asyncio.sleep(0.2)
    running.cancel()
    with contextlib.suppress(BaseException):
        await running
    pool = db.engine.pool
    assert isinstance(pool, QueuePool | NullPool | StaticPool | AsyncAdaptedQueuePool)
    assert getattr(pool, "checkedout", lambda: 0)() == 0
    async with db.reading(), db.session(SYSTEM) as session:
        assert await session.scalar(sa.text("SELECT 1")) == 1


async def test_h6_a_write_during_a_read_request_gives_the_shared_connection_back_first(
    db: Database,
) -> None:
    # A refused sign-in document is counted (a write) while the request holds its read
    # connection: with one connection in the whole pool, the write must not wait for a second.
    url = db.engine.url.render_as_string(hide_password=False)
    small = Database(create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=5))
    try:
        async with small.reading():
            async with small.session(SYSTEM) as session:
                await session.scalar(sa.text("SELECT 1"))
            async with small.transaction(SYSTEM) as session:
                await session.scalar(sa.text("SELECT 1"))
            async with small.session(SYSTEM) as session:
                assert await session.scalar(sa.text("SELECT 1")) == 1
    finally:
        await small.dispose()


async def test_h2_a_plan_that_meets_a_failed_statement_is_answered_on_a_fresh_transaction(
    demo_db: Database, demo_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (await _tokens(demo_db))["facilities@harbourview.example"]
    failed = False

    def fail_once(
        conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any
    ) -> tuple[str, Any]:
        nonlocal failed
        # The first read of the invoices page fails in the database, as a cancelled or
        # refused statement would; PostgreSQL then refuses the rest of that transaction.
        if not failed and "FROM invoices" in statement:
            failed = True
            return "SELECT * FROM no_such_table", ()
        return statement, parameters

    engine = demo_db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", fail_once, retval=True)
    try:
        response = await _post(demo_client, token, "Invoices", {})
    finally:
        event.remove(engine, "before_cursor_execute", fail_once)
    body = response.json()
    assert failed
    assert "errors" not in body and len(body["data"]["invoices"]["edges"]) > 0, body


class _Never(ViewerPermission):
    message = "Nobody reads this."

    def allows(self, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.type
class _Box:
    # A guarded field without a resolver of its own: Strawberry calls it a default field.
    secret: str = strawberry.field(extensions=guarded(_Never()))


@strawberry.type
class _Query:
    @strawberry.field
    def box(self) -> _Box:
        return _Box(secret="hidden")


async def test_sec4_a_plan_never_reads_a_guarded_field_past_its_guard() -> None:
    schema = strawberry.Schema(query=_Query)
    document = parse("query Box { box { secret } }")
    plan = compile_plan(schema, document, "Box")
    assert plan is not None
    with pytest.raises(CannotPlan):
        await plan.run(None, None, {})
    generic = await schema.execute("query Box { box { secret } }")
    assert generic.data is None and generic.errors
