"""SECURITY rows 26 to 29 and 35: no single request holds a worker's event loop long. Each
CPU-heavy step (validation, introspection, the lists a portal user grows, a page size
given through a variable's default) is bounded before it runs, and what is refused gets a
typed error. Time is never measured here: each test shows the refusal, its code, and that
the expensive step did not run (graphql-core's validation and execution are counted)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import strawberry.schema.schema
from graphql import (
    OperationDefinitionNode,
    ValidationContext,
    execute_sync,
    get_introspection_query,
    parse,
    print_ast,
)

import app.schema.introspection
from app.db.models import Contact, ContactKind, Site
from app.db.scope import SYSTEM
from app.db.session import Database
from app.main import create_app
from app.schema.introspection import FULL_QUERY, ORDINARY_QUERY, introspection_cost
from app.schema.limits import (
    MAX_ALIASES,
    MAX_COST,
    MAX_MERGES,
    MAX_SELECTIONS,
    field_merges,
    spread_selections,
)
from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from app.schema.trusted import TrustedDocuments
from app.settings import Settings
from tests.conftest import http_client, make_settings
from tests.support import (
    PORTAL,
    STAFF,
    PortalUser,
    count_statements,
    make_customers,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)

PRODUCTION = {"env": "production", "secret_key": "p" * 40, "smtp_url": "smtp://127.0.0.1:1"}

# Eight levels of `ofType`, as deep as a type reference can go.
TYPE_REF = "kind name " + "ofType { kind name " * 8 + "}" * 8


def aliased_schemas(count: int) -> str:
    """`count` aliased `__schema`, each spreading a fragment over every type's fields and
    their arguments' types: the probe's document, 30 of them in 2.6 KB."""
    return (
        "query { "
        + " ".join(f"s{n}: __schema {{ ...Everything }}" for n in range(count))
        + " } fragment Everything on __Schema { types { name fields { name args { name"
        f" type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }} }} }}"
    )


def repeated(count: int, selection: str = "viewer { id }") -> str:
    return "{" + f" {selection}" * count + " }"


def doubling(levels: int) -> str:
    """Fragments each spreading the next twice: `levels` of them hold 2^levels selections."""
    chain = " ".join(f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels))
    return f"{{ ...F0 }} {chain} fragment F{levels} on Query {{ __typename }}"


@dataclass
class Work:
    """What graphql-core was asked to do: validations begun and operations executed."""

    validations: int = 0
    executions: int = 0


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    counted = Work()
    start_validation = ValidationContext.__init__
    execute = getattr(strawberry.schema.schema, "execute")  # noqa: B009  (not re-exported)

    def validating(context: ValidationContext, *args: Any, **kwargs: Any) -> None:
        counted.validations += 1
        start_validation(context, *args, **kwargs)

    def executing(*args: Any, **kwargs: Any) -> Any:
        counted.executions += 1
        return execute(*args, **kwargs)

    monkeypatch.setattr(ValidationContext, "__init__", validating)
    monkeypatch.setattr(strawberry.schema.schema, "execute", executing)
    return counted


@pytest.fixture
async def production(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(create_app(make_settings(database_url, **PRODUCTION), db=db)) as http:
        yield http


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    path: str = STAFF,
    token: str | None = None,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        path, json={"query": query, "variables": variables or {}}, headers=headers
    )


def refusal(response: httpx.Response) -> tuple[str, str]:
    """The code and message of a request refused whole: one error and no data."""
    body = response.json()
    assert body.get("data") is None, body
    [error] = body["errors"]
    return error["extensions"]["code"], error["message"]


def unique(query: str) -> str:
    """The same document in a text of its own: no cache of an earlier test answers for it."""
    return f"# {uuid.uuid4()}\n{query}"


# Row 26: introspection as a weapon


async def test_sec26_thirty_aliased_schemas_are_refused_unsigned_before_validation(
    client: httpx.AsyncClient, work: Work
) -> None:
    query = unique(aliased_schemas(MAX_ALIASES))
    response = await post(client, query)
    code, message = refusal(response)
    assert code == "QUERY_TOO_COSTLY" and "selections" in message
    assert len(response.content) < 1_000
    assert (work.validations, work.executions) == (0, 0)


@pytest.mark.parametrize(
    "query",
    [
        aliased_schemas(3),
        aliased_schemas(12),
        "{ __schema { types { "
        + " ".join(
            f"f{n}: fields {{ name args {{ name type {{ {TYPE_REF} }} }} }}" for n in range(8)
        )
        + " } } }",
        "{ "
        + " ".join(f't{n}: __type(name: "Mutation") {{ ...Everything }}' for n in range(30))
        + " } fragment Everything on __Type { fields { name description args { name"
        " type { name } } type { name ofType { name } } } }",
    ],
    ids=["three schemas", "twelve schemas", "eight aliased field lists", "thirty types"],
)
async def test_sec26_introspection_past_one_description_is_refused_before_it_runs(
    client: httpx.AsyncClient, work: Work, query: str
) -> None:
    response = await post(client, unique(query))
    code, message = refusal(response)
    assert code == "QUERY_TOO_COSTLY" and "description of the schema" in message
    assert len(response.content) < 1_000
    assert work.executions == 0


@pytest.mark.parametrize("layout", ["as sent by graphql-core", "printed compact"])
async def test_sec26_the_ordinary_introspection_query_is_answered_from_the_prebuilt_result(
    monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient, work: Work, layout: str
) -> None:
    described = []
    describe = getattr(app.schema.introspection, "execute_sync")  # noqa: B009

    def counting(*args: Any, **kwargs: Any) -> Any:
        described.append(args)
        return describe(*args, **kwargs)

    monkeypatch.setattr(app.schema.introspection, "execute_sync", counting)
    text = (
        ORDINARY_QUERY if layout == "as sent by graphql-core" else print_ast(parse(ORDINARY_QUERY))
    )
    expected = execute_sync(staff_schema(production=False)._schema, parse(ORDINARY_QUERY)).data
    for _ in range(3):
        response = await post(client, text)
        assert response.status_code == 200
        assert response.json() == {"data": expected}
    # Described once for the schema, on first ask; never executed per request.
    assert len(described) == 1
    assert work.executions == 0


async def test_sec26_the_staff_schema_still_answers_introspection_in_production(
    production: httpx.AsyncClient, work: Work
) -> None:
    body = (await post(production, ORDINARY_QUERY)).json()
    assert body["data"]["__schema"]["queryType"] == {"name": "Query", "kind": "OBJECT"}
    assert work.executions == 0


async def test_sec26_another_tools_introspection_runs_within_the_budget(
    client: httpx.AsyncClient, work: Work
) -> None:
    # GraphiQL's: graphql-js asks type references seven deep, and deprecated arguments.
    graphiql = get_introspection_query(input_value_deprecation=True, type_depth=7)
    body = (await post(client, unique(graphiql))).json()
    assert "errors" not in body
    assert {t["name"] for t in body["data"]["__schema"]["types"]} >= {"Query", "Customer"}
    assert work.executions == 1


@pytest.mark.parametrize("query", [ORDINARY_QUERY, '{ __type(name: "Query") { name } }'])
async def test_sec26_the_production_portal_still_refuses_introspection(
    production: httpx.AsyncClient, query: str
) -> None:
    code, _ = refusal(await post(production, query, path=PORTAL))
    assert code == "DOCUMENT_NOT_TRUSTED"
    # Behind the trusted documents, the schema itself refuses it, and keeps no description.
    schema = portal_schema(production=True)
    assert schema.introspection is None
    result = await schema.execute(query)
    assert result.errors and "introspection" in str(result.errors).lower()


@pytest.mark.parametrize("build", [staff_schema, portal_schema])
def test_sec26_introspection_is_counted_exactly_as_execution_answers_it(build: Any) -> None:
    schema = build(production=False)._schema

    def fields(value: Any) -> int:
        if isinstance(value, dict):
            return len(value) + sum(fields(item) for item in value.values())
        if isinstance(value, list):
            return sum(fields(item) for item in value)
        return 0

    for query in (
        ORDINARY_QUERY,
        FULL_QUERY,
        aliased_schemas(2),
        '{ __type(name: "Customer") { name fields { name type { name ofType { name } } } } }',
    ):
        document = parse(query)
        [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        answered = execute_sync(schema, document)
        assert not answered.errors
        counted = introspection_cost(schema, document, operation, {}, budget=10**9)
        assert counted == fields(answered.data)
    # And the count stops at the budget, whatever the document asks.
    document = parse(aliased_schemas(30))
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert introspection_cost(schema, document, operation, {}, budget=1_000) is None


# Row 27: lists a portal user grows


async def _portal_user_with_sites(db: Database, sites: int) -> PortalUser:
    tenant, _ = await make_tenant(db, slug="grow")
    user = await make_portal_user(db, tenant)
    async with db.transaction(SYSTEM) as session:
        for n in range(sites):
            site = Site(
                tenant_id=tenant.id,
                customer_id=user.customer.id,
                name=f"Site {n:03d}",
                address_line1=f"{n} Long Road",
                uprn=str(100_000 + n),
            )
            session.add(site)
            await session.flush()
            session.add(
                Contact(
                    tenant_id=tenant.id,
                    customer_id=user.customer.id,
                    site_id=site.id,
                    kind=ContactKind.SITE,
                    name=f"Caretaker {n:03d}",
                )
            )
    return user


GROWN_AGAIN = {
    "the probe's sites of sites of sites": "query ($id: ID!) { node(id: $id) { ... on Customer {"
    " sites { customer { sites { customer { sites { uprn } } } } } } } }",
    "sites of sites": "query ($id: ID!) { node(id: $id) { ... on Customer {"
    " sites { customer { sites { uprn } } } } } }",
    "a site's contacts under each contact": "query ($id: ID!) { node(id: $id) {"
    " ... on Customer { contacts { site { contacts { name } } } } } }",
    "any list under a grown list's way back up": "query ($id: ID!) { node(id: $id) {"
    " ... on Customer { sites { customer { invoices { number } } } } } }",
}


@pytest.mark.parametrize("query", list(GROWN_AGAIN.values()), ids=list(GROWN_AGAIN))
async def test_sec27_a_grown_list_read_again_is_refused_before_it_runs(
    db: Database, client: httpx.AsyncClient, settings: Settings, work: Work, query: str
) -> None:
    user = await _portal_user_with_sites(db, 40)
    token = await portal_token(db, settings, user.account)
    customers = (await post(client, "{ customers { id } }", path=PORTAL, token=token)).json()
    [customer] = customers["data"]["customers"]
    work.executions = 0
    with count_statements(db) as counter:
        response = await post(client, query, {"id": customer["id"]}, path=PORTAL, token=token)
    code, message = refusal(response)
    assert code == "QUERY_TOO_COSTLY" and "again" in message
    assert work.executions == 0
    assert not any("FROM sites" in statement for statement in counter.statements)


async def test_sec27_grown_lists_read_once_run(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await _portal_user_with_sites(db, 40)
    token = await portal_token(db, settings, user.account)
    query = (
        "{ customers { name sites { name contacts { name } } contacts { name site { name } } } }"
    )
    body = (await post(client, query, path=PORTAL, token=token)).json()
    assert "errors" not in body
    [customer] = body["data"]["customers"]
    assert len(customer["sites"]) == 40
    assert customer["sites"][0]["contacts"] == [{"name": "Caretaker 000"}]


async def test_sec27_staff_contacts_read_again_under_their_site_are_refused(
    db: Database, client: httpx.AsyncClient, settings: Settings, work: Work
) -> None:
    tenant, staff = await make_tenant(db, slug="office")
    await make_customers(db, tenant, 2)
    token = await staff_token(db, settings, staff)
    query = "{ customers { edges { node { contacts { site { contacts { name } } } } } } }"
    code, message = refusal(await post(client, query, token=token))
    assert code == "QUERY_TOO_COSTLY" and "customers.edges.node.contacts.site.contacts" in message
    assert work.executions == 0
    once = "{ customers { edges { node { contacts { name site { name } } } } } }"
    assert "errors" not in (await post(client, once, token=token)).json()


def test_sec27_every_contract_operation_still_fits() -> None:
    documents = TrustedDocuments.load(portal_schema(production=False))
    over = {d.operation_name: d.worst_case_cost for d in documents if not d.fits}
    assert over == {}
    assert max(d.worst_case_cost for d in documents) <= MAX_COST


# Row 28: cost through variables


def nested_lists(page: str, variables: str = "") -> str:
    """A page of customers with their sites' contacts: three nested lists."""
    return (
        f"query {variables} {{ customers(first: {page}) {{ edges {{ node {{ name sites {{ name"
        " contacts { name } } } } } }"
    )


@pytest.mark.parametrize(
    ("variables", "sent"),
    [("($f: Int = 100)", {}), ("($f: Int)", {"f": 100.0}), ("($f: Int = 5)", {"f": 100})],
    ids=["its default", "a float", "sent over a small default"],
)
async def test_sec28_a_page_through_a_variable_is_costed_as_the_literal(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    work: Work,
    variables: str,
    sent: dict[str, Any],
) -> None:
    tenant, staff = await make_tenant(db, slug="office")
    await make_customers(db, tenant, 1)
    token = await staff_token(db, settings, staff)
    literal = refusal(await post(client, nested_lists("100"), token=token))
    with count_statements(db) as counter:
        response = await post(client, nested_lists("$f", variables), sent, token=token)
    assert refusal(response) == literal
    assert literal[0] == "QUERY_TOO_COSTLY"
    assert work.executions == 0
    assert not any("FROM customers" in statement for statement in counter.statements)


@pytest.mark.parametrize(
    ("variables", "sent"),
    [("($f: Int = 5)", {}), ("($f: Int = 100)", {"f": 5}), ("($f: Int = 100)", {"f": None})],
    ids=["a small default", "a small page sent", "null: the field's own default"],
)
async def test_sec28_the_same_lists_in_a_small_page_run(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    variables: str,
    sent: dict[str, Any],
) -> None:
    tenant, staff = await make_tenant(db, slug="office")
    await make_customers(db, tenant, 1)
    token = await staff_token(db, settings, staff)
    body = (await post(client, nested_lists("$f", variables), sent, token=token)).json()
    assert "errors" not in body and len(body["data"]["customers"]["edges"]) == 1


# Row 29: expensive validation


@pytest.mark.parametrize("path", [STAFF, PORTAL])
@pytest.mark.parametrize(
    ("query", "counted"),
    [(repeated(450), "comparisons"), (doubling(30), "selections"), (doubling(200), "selections")],
    ids=["450 viewers", "30 fragments doubling", "200 fragments doubling"],
)
async def test_sec29_a_document_too_costly_to_validate_is_refused_before_validation(
    client: httpx.AsyncClient, work: Work, path: str, query: str, counted: str
) -> None:
    response = await post(client, unique(query), path=path)
    code, message = refusal(response)
    assert code == "QUERY_TOO_COSTLY" and counted in message
    assert len(response.content) < 1_000
    assert (work.validations, work.executions) == (0, 0)


async def test_sec29_the_production_portal_refuses_them_before_parsing(
    production: httpx.AsyncClient, work: Work
) -> None:
    code, _ = refusal(await post(production, repeated(450), path=PORTAL))
    assert code == "DOCUMENT_NOT_TRUSTED"
    assert (work.validations, work.executions) == (0, 0)


async def test_sec29_the_token_limit_refuses_before_any_rule(
    client: httpx.AsyncClient, work: Work
) -> None:
    response = await post(client, unique(repeated(1_000)))
    body = response.json()
    assert body.get("data") is None and "tokens" in body["errors"][0]["message"]
    assert work.validations == 0


async def test_sec29_a_document_within_the_counts_is_validated_and_runs(
    client: httpx.AsyncClient, work: Work
) -> None:
    response = await post(client, unique(repeated(20, "viewer { id } __typename")))
    assert response.json() == {"data": {"viewer": None, "__typename": "Query"}}
    assert (work.validations, work.executions) == (1, 1)


def test_sec29_the_contract_and_the_ordinary_introspection_are_far_within_the_counts() -> None:
    documents = [d.document for d in TrustedDocuments.load(portal_schema(production=False))]
    documents.append(parse(ORDINARY_QUERY))
    assert max(spread_selections(d) for d in documents) <= MAX_SELECTIONS // 2
    assert max(field_merges(d) for d in documents) == 0
    assert spread_selections(parse(doubling(200))) > MAX_SELECTIONS
    assert field_merges(parse(repeated(64))) > MAX_MERGES


# Row 35: the event loop


WORST = {
    "thirty schemas": (STAFF, aliased_schemas(30), None),
    "three schemas": (STAFF, aliased_schemas(3), None),
    "450 viewers": (PORTAL, repeated(450), None),
    "fragments doubling": (STAFF, doubling(60), None),
    "a page through a default": (STAFF, nested_lists("$f", "($f: Int = 100)"), "staff"),
    "sites of sites": (
        STAFF,
        "{ customers { edges { node { sites { contacts { site { contacts { name } } } } } } } }",
        "staff",
    ),
}


@pytest.mark.parametrize(("path", "query", "who"), list(WORST.values()), ids=list(WORST))
async def test_sec35_the_worst_documents_are_refused_small_and_never_executed(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    work: Work,
    path: str,
    query: str,
    who: str | None,
) -> None:
    token = None
    if who == "staff":
        _, staff = await make_tenant(db, slug="office")
        token = await staff_token(db, settings, staff)
    response = await post(client, unique(query), path=path, token=token)
    code, _ = refusal(response)
    assert code == "QUERY_TOO_COSTLY"
    assert len(response.content) < 1_000
    # At most one validation, of a document whose size was counted first.
    assert work.validations <= 1 and work.executions == 0
    # The service answers the next request as ever.
    assert (await client.get("/healthz")).json() == {"status": "ok"}
