"""The portal's fast path: trusted queries answered by plans compiled at start-up, exactly as
the generic executor answers them, over one connection and one transaction per request."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
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
from app.db.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    InvoiceVisibility,
    PortalModule,
    Tenant,
)
from app.db.reach import Grant, grant_rows
from app.db.scope import SYSTEM

# The statement as the driver takes it, to ask PostgreSQL how it would run it.
from app.db.session import Database, _compiled
from app.main import GraphQLEndpoint, create_app
from app.payments.amounts import bounds_for, payable_sql
from app.resolvers import invoices as invoices_resolvers
from app.resolvers.invoices import shown_status, shown_status_sql
from app.schema.compiled import Compiled
from app.schema.permissions import ViewerPermission, guarded
from app.schema.plans import CannotPlan, compile_plan
from app.schema.trusted import OPERATIONS
from app.settings import Environment, Settings
from tests.conftest import http_client, make_settings, stripe_settings
from tests.stripe_standin import StandInServer
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


# On PostgreSQL these are one statement for their data (`app.schema.compiled`).
COMPILED_STATEMENTS = {"Invoice": 2, "Invoices": 2}


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
    compiled = demo_db.dialect == "postgresql" and name in COMPILED_STATEMENTS
    expected = COMPILED_STATEMENTS[name] if compiled else STATEMENTS[name]
    assert len(counter.statements) == expected, counter.statements
    # The sign-in state and the data, over one pooled connection. On PostgreSQL the sign-in
    # state and a compiled statement go straight to the driver: SQLAlchemy begins its
    # transaction only where a statement goes through it.
    straight = 1 + compiled if demo_db.dialect == "postgresql" else 0
    assert counts == {"checkouts": 1, "begins": int(expected > straight)}


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


@contextmanager
def compiled_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Counts the requests a compiled statement answered."""
    answered: list[str] = []
    run = Compiled.run

    async def counted(self: Compiled, *args: Any, **kwargs: Any) -> Any:
        data = await run(self, *args, **kwargs)
        answered.append(self.plan.name)
        return data

    with monkeypatch.context() as patch:
        patch.setattr(Compiled, "run", counted)
        yield answered


def test_h2_on_postgresql_the_invoice_screens_compile_to_one_statement(
    demo_app: Starlette, demo_db: Database
) -> None:
    compiled = {statement.plan.name for statement in _endpoint(demo_app).compiled.values()}
    # SQLite answers every trusted query as a plan; PostgreSQL writes these answers itself.
    assert compiled == ({"Invoice", "Invoices"} if demo_db.dialect == "postgresql" else set())


async def _both_ways(
    client: httpx.AsyncClient, endpoint: GraphQLEndpoint, token: str, name: str, variables: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The answer with every fast path on, and the generic executor's."""
    plans = dict(endpoint.plans)
    fast = await _post(client, token, name, variables)
    endpoint.plans = {}
    try:
        generic = await _post(client, token, name, variables)
    finally:
        endpoint.plans = plans
    return fast, generic


def orjson_text(body: Any) -> str:
    return orjson.dumps(body).decode()


async def test_h2_compiled_invoice_screens_answer_as_the_generic_executor_for_every_argument(
    demo_db: Database,
    demo_app: Starlette,
    demo_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = _endpoint(demo_app)
    tokens = await _tokens(demo_db)
    harbour = tokens["facilities@harbourview.example"]
    first_page = (await _post(demo_client, harbour, "Invoices", {"first": 2})).json()
    end_cursor = first_page["data"]["invoices"]["pageInfo"]["endCursor"]
    assert first_page["data"]["invoices"]["pageInfo"]["hasNextPage"] is True
    contractors = [first_page["data"]["invoices"]["edges"][0]["node"]["contractor"]["id"]]
    shapes: list[dict[str, Any]] = [
        {},
        {"unpaidOnly": True},
        {"first": 1},
        {"first": 2, "after": end_cursor},
        {"first": 0},
        {"first": 500},
        {"first": -1},
        {"after": "bm90IGEgY3Vyc29y"},
        {"contractor": contractors[0]},
        {"contractor": "Q29udHJhY3RvcjowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA="},
        {"contractor": "not an id"},
    ]
    compiled_count = 0
    for email, token in tokens.items():
        listed = (await _post(demo_client, token, "Invoices", {})).json()
        ids = re.findall(r'"id":"(SW52b2ljZT[^"]*)"', orjson_text(listed))
        details = [{"id": invoice_id} for invoice_id in ids]
        # Someone else's invoice, a made-up one, one of another type, and no id at all.
        details += [{"id": "SW52b2ljZTowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA="}]
        details += [{"id": "Sm9iOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA=="}]
        details += [{"id": "bm9wZQ=="}, {}]
        runs = [("Invoices", shape) for shape in shapes] + [("Invoice", d) for d in details]
        for name, variables in runs:
            with compiled_answers(monkeypatch) as answered:
                fast, generic = await _both_ways(demo_client, endpoint, token, name, variables)
            compiled_count += len(answered)
            assert (fast.status_code, fast.text) == (generic.status_code, generic.text), (
                email,
                name,
                variables,
            )
            # Errors are always the generic executor's.
            assert not (answered and "errors" in generic.json()), (email, name, variables)
    if demo_db.dialect == "postgresql":
        assert compiled_count > len(tokens) * 5
    else:
        assert compiled_count == 0


async def test_h2_compiled_invoices_follow_the_business_choice_of_showing_paid_ones(
    demo_db: Database,
    demo_app: Starlette,
    demo_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = _endpoint(demo_app)
    token = (await _tokens(demo_db))["facilities@harbourview.example"]
    before, _ = await _both_ways(demo_client, endpoint, token, "Invoices", {})
    assert '"status":"PAID"' in before.text
    async with demo_db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant)
            .where(col(Tenant.slug) == "acme")
            .values(invoice_visibility=InvoiceVisibility.OUTSTANDING)
        )
    with compiled_answers(monkeypatch) as answered:
        fast, generic = await _both_ways(demo_client, endpoint, token, "Invoices", {})
    assert fast.text == generic.text
    assert '"status":"PAID"' not in fast.text and '"status":"OVERDUE"' in fast.text
    assert answered == (["Invoices"] if demo_db.dialect == "postgresql" else [])


async def test_h6_a_read_request_sends_its_statements_and_no_transaction_control_on_postgresql(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = (await _tokens(demo_db))["facilities@harbourview.example"]
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query.split(None, 1)[0].rstrip(";").upper())

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        if demo_db.dialect == "sqlite":
            sent.append(text.split(None, 1)[0].upper())

    def listen(dbapi_connection: Any, *_: Any) -> None:
        # What asyncpg itself sends, BEGIN and ROLLBACK included.
        if demo_db.dialect == "postgresql":
            dbapi_connection.driver_connection.add_query_logger(log)

    def unlisten(dbapi_connection: Any, *_: Any) -> None:
        if demo_db.dialect == "postgresql":
            dbapi_connection.driver_connection.remove_query_logger(log)

    engine = demo_db.engine.sync_engine
    event.listen(engine.pool, "checkout", listen)
    event.listen(engine.pool, "checkin", unlisten)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        response = await _post(demo_client, token, "Invoices", {})
        # asyncpg calls its query loggers soon after each query, not during it.
        await asyncio.sleep(0.05)
        invoices, sent[:] = list(sent), []
        jobs = await _post(demo_client, token, "Jobs", {})
        await asyncio.sleep(0.05)
    finally:
        event.remove(engine.pool, "checkout", listen)
        event.remove(engine.pool, "checkin", unlisten)
        event.remove(engine, "before_cursor_execute", statement)
    assert "errors" not in response.json() and "errors" not in jobs.json()
    if demo_db.dialect == "postgresql":
        # The sign-in state and the page written as JSON: two statements, nothing around
        # them (each takes its own snapshot, as in a READ COMMITTED transaction).
        assert invoices == ["SELECT", "SELECT"]
        # A plan's statements share the transaction the first of them begins (they go as
        # prepared statements, which asyncpg does not log: the count above counts them).
        assert sent == ["SELECT", "BEGIN", "ROLLBACK"]
    else:
        # SQLite: one read transaction, one snapshot, for the sign-in and the data.
        assert invoices == ["BEGIN", "SELECT", "SELECT", "SELECT"]
        assert sent == ["BEGIN", "SELECT", "SELECT", "SELECT"]


async def test_h6_the_compiled_invoice_screens_read_through_the_tenant_indexes(
    demo_db: Database, demo_app: Starlette
) -> None:
    statements = {c.plan.name: c.statement for c in _endpoint(demo_app).compiled.values()}
    if demo_db.dialect != "postgresql":
        assert statements == {}
        return
    async with demo_db.session(SYSTEM) as session:
        harbour = (
            await session.scalars(
                sa.select(Customer).where(col(Customer.name) == "Harbour View Hotel")
            )
        ).one()
    grants = [
        Grant(
            tenant_id=harbour.tenant_id,
            customer_id=harbour.id,
            contact_id=harbour.id,
            site_id=None,
            modules=frozenset(PortalModule),
            shows_paid_invoices=True,
        )
    ]
    params = {
        "grants": grant_rows(grants),
        "now": datetime.now(UTC),
        "takes_cards": True,
        "contractor": None,
        "unpaid_only": False,
        "size": 20,
        "after_sort": None,
        "after_id": None,
        "node_type": "Invoice",
        "node_id": uuid.uuid4(),
    }
    async with demo_db.engine.connect() as connection:
        pooled = await connection.get_raw_connection()
        driver: Any = pooled.driver_connection
        # With sequential scans priced out, a table read whole is one no index condition
        # narrows: every table these statements read must be reached by an index condition.
        await driver.execute("SET enable_seqscan = off")
        try:
            for name, statement in sorted(statements.items()):
                compiled = _compiled(statement, demo_db.engine.dialect)
                explained = await driver.fetchval(
                    "EXPLAIN (FORMAT JSON) " + compiled.sql, *compiled.arguments(params)
                )
                # The connection's JSON codec may have decoded it already.
                if isinstance(explained, str):
                    explained = orjson.loads(explained)
                unnarrowed = [
                    node["Relation Name"]
                    for node in _plan_nodes(explained[0]["Plan"])
                    if "Relation Name" in node
                    and "Index Cond" not in node
                    and "Recheck Cond" not in node
                ]
                assert unnarrowed == [], (name, explained)
        finally:
            await driver.execute("RESET enable_seqscan")


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


async def test_h2_compiled_invoice_says_whether_and_from_what_it_can_be_paid_as_generic_does(
    demo_db: Database,
    demo_database_url: str,
    stripe_server: StandInServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(demo_database_url, **stripe_settings(stripe_server.url))
    app = create_app(settings, db=demo_db)
    endpoint = _endpoint(app)
    token = (await _tokens(demo_db))["facilities@harbourview.example"]
    async with demo_db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.slug) == "acme").values(stripe_account_id="acct_1")
        )
    async with http_client(app) as client:
        listed = (await _post(client, token, "Invoices", {})).json()
        ids = [edge["node"]["id"] for edge in listed["data"]["invoices"]["edges"]]
        payable = 0
        for invoice_id in ids:
            with compiled_answers(monkeypatch) as answered:
                fast, generic = await _both_ways(
                    client, endpoint, token, "Invoice", {"id": invoice_id}
                )
            assert fast.text == generic.text, invoice_id
            assert answered == (["Invoice"] if demo_db.dialect == "postgresql" else [])
            payable += fast.json()["data"]["node"]["canPay"]
    # Outstanding invoices can be paid, paid ones cannot: both kinds were compared.
    assert 0 < payable < len(ids)


async def test_h2_the_sql_twins_of_status_and_payability_agree_with_python_at_the_edges(
    demo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with demo_db.session(SYSTEM) as session:
        acme = (await session.scalars(sa.select(Tenant).where(col(Tenant.slug) == "acme"))).one()
    cases = []
    for zone, status, paid, currency, stripe in itertools.product(
        ["Pacific/Auckland", "America/Los_Angeles", "UTC"],
        [InvoiceStatus.UNPAID, InvoiceStatus.PAID],
        [0, 40, 9_950],
        ["GBP", "JPY", "XXX"],
        [None, "acct_1"],
    ):
        # Either side of midnight in Auckland (UTC+13), on the day the invoice falls due.
        for minute in (10 * 60 + 59, 11 * 60 + 1):
            now = datetime(2026, 11, 30, tzinfo=UTC) + timedelta(minutes=minute)
            cases.append((zone, status, paid, currency, stripe, now))
    invoice_columns = sa.values(
        sa.column("tenant_id", sa.Uuid),
        sa.column("status", sa.String),
        sa.column("due_on", sa.Date),
        sa.column("paid_minor", sa.Integer),
        sa.column("total_minor", sa.Integer),
        sa.column("currency", sa.String),
        name="invoice",
    )
    if demo_db.dialect != "postgresql":
        # The SQL twins run only where a trusted query compiles to SQL, PostgreSQL; SQLite
        # has no `timezone()`, and the plans read the Python rules themselves.
        with pytest.raises(sa.exc.OperationalError):
            async with demo_db.session(SYSTEM) as session:
                await session.execute(sa.select(sa.func.timezone("UTC", sa.func.now())))
        return
    today_at = invoices_resolvers.today_at
    mismatches = []
    for zone, status, paid, currency, stripe, now in cases:
        tenant = acme.model_copy(update={"time_zone": zone, "stripe_account_id": stripe})
        invoice = Invoice(
            tenant_id=acme.id,
            customer_id=acme.id,
            number="T-1",
            status=status,
            currency=currency,
            total_minor=10_000,
            paid_minor=paid,
            issued_on=date(2026, 11, 1),
            due_on=date(2026, 11, 30),
        )
        row = invoice_columns.data(
            [(acme.id, status.value, invoice.due_on, paid, 10_000, currency)]
        ).alias("invoice")
        async with demo_db.transaction(SYSTEM) as session:
            await session.execute(
                sa.update(Tenant)
                .where(col(Tenant.id) == acme.id)
                .values(time_zone=zone, stripe_account_id=stripe)
            )
        async with demo_db.session(SYSTEM) as session:
            shown, payable = (
                await session.execute(
                    sa.select(
                        shown_status_sql(row.c, sa.literal(now)),
                        payable_sql(row.c, sa.true()),
                    ).select_from(row)
                )
            ).one()
        monkeypatch.setattr(
            invoices_resolvers, "today_at", lambda tenant, at=now: today_at(tenant, at)
        )
        expected = shown_status(invoice, tenant)
        bounds = bounds_for(invoice)
        expected_payable = (
            bool(stripe)
            and status is InvoiceStatus.UNPAID
            and bounds is not None
            and not bounds.empty
        )
        if (shown, payable) != (expected.value, expected_payable):
            mismatches.append((zone, status, paid, currency, stripe, now, shown, payable))
    assert mismatches == []
