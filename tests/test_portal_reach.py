"""How far each demo portal user reaches, through HTTP and in the data layer: a site contact
sees its own site and never an invoice, whatever path it takes (SECURITY rows 2 and 3); a
company contact sees its own customer's invoices as the business chose to show them (E2);
modules are the intersection of three layers and take effect on the next request (S5, E14);
one account at two contractors sees both and can filter (P4); the plan and both portal
switches stop a signed-in user at once (T2-T4); no portal input names a tenant, a status or
a role, and staff-only fields do not exist on the portal (row 5); and the data layer itself
keeps a site contact's session to its site (T1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from graphql import (
    GraphQLInputObjectType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    get_named_type,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.resolve import portal_grants
from app.db.models import (
    ALL_MODULES,
    Certificate,
    Contact,
    ContactKind,
    Customer,
    DiaryEvent,
    Invoice,
    InvoiceStatus,
    InvoiceVisibility,
    Job,
    Plan,
    PortalAccount,
    PortalMembership,
    Quote,
    QuoteStatus,
    Rental,
    RequestableItem,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
    Tenant,
)
from app.db.reach import Grant
from app.db.scope import SYSTEM, Scope, UnscopedAccess
from app.db.session import Database
from app.sdl import PORTAL_SDL
from app.settings import Environment, Settings
from tests.conftest import DEMO_TODAY
from tests.support import (
    PORTAL,
    error_codes,
    gid,
    gql,
    portal_token,
)

TEST_SETTINGS = Settings(env=Environment.TEST)

# The demo's portal users (app/db/demo.py, DEMO_SIGN_INS).
COMPANY = "facilities@harbourview.example"  # acme, Harbour View Hotel, every module
SITE = "site.manager@riverside.example"  # acme, Riverside, site contact at Quayside
NARROW = "bursar@greenfield.example"  # acme, Greenfield, INVOICES and REQUESTS only
TWO = "ops@maplecourt.example"  # Maple Court at acme and at northside
# Riverside's company contact has no portal account in the demo; tests that compare what
# the site contact sees with what the whole customer sees give it one.
RIVERSIDE_COMPANY = "procurement@riverside.example"

QUAYSIDE = "Quayside Development"
RIVERSIDE_SITES = ["Itchen Bridge Works", "Quayside Development", "Riverside Head Office"]
ACME, BRIGHTWATER, NORTHSIDE = "Acme Sanitation", "Brightwater Plumbing", "Northside Gas Safety"
# A range covering every demo appointment (they are within two weeks of the demo's day).
FROM, TO = DEMO_TODAY - timedelta(days=180), DEMO_TODAY + timedelta(days=185)

# One document per portal root field that needs a signed-in user.
NO_JOB = gid("Job", uuid.UUID(int=1))
ROOT_DOCUMENTS = {
    "contractors": "{ contractors { id } }",
    "customers": "{ customers { id } }",
    "properties": "{ properties { edges { node { id } } } }",
    "invoices": "{ invoices { edges { node { id } } } }",
    "quotes": "{ quotes { edges { node { id } } } }",
    "jobs": "{ jobs { edges { node { id } } } }",
    "upcomingVisits": "{ upcomingVisits { startsAt } }",
    "certificates": "{ certificates { edges { node { id } } } }",
    "appointments": (
        f'{{ appointments(from: "{FROM}", to: "{TO}") {{ edges {{ node {{ id }} }} }} }}'
    ),
    "requests": "{ requests { edges { node { id } } } }",
    "requestableItems": "{ requestableItems { id } }",
    "users": "{ users { edges { node { id } } } }",
    "contacts": "{ contacts { edges { node { id } } } }",
    "messageThreads": "{ messageThreads { edges { node { id } } } }",
    "messageThread": f'{{ messageThread(about: "{NO_JOB}") {{ id }} }}',
    "unreadMessageCount": "{ unreadMessageCount }",
}
# Conversations belong to no module: each shows those of the records the user sees.
MESSAGES = {"messageThreads", "messageThread", "unreadMessageCount"}
# The root fields each module guards, as the SDL prints them.
MODULE_FIELDS = {
    "QUOTES": ["quotes"],
    "JOBS": ["jobs", "upcomingVisits"],
    "INVOICES": ["invoices"],
    "CERTIFICATES": ["certificates"],
    "DIARIES": ["appointments"],
    "REQUESTS": ["requests", "requestableItems"],
    "PROPERTIES": ["properties"],
    "USERS": ["contacts", "users"],
}


# -- Helpers ---------------------------------------------------------------------------------


async def token_for(db: Database, email: str) -> str:
    async with db.session(SYSTEM) as session:
        account = (
            await session.scalars(select(PortalAccount).where(col(PortalAccount.email) == email))
        ).one()
    return await portal_token(db, TEST_SETTINGS, account)


async def ask(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    return await gql(client, query, variables, path=PORTAL, token=token)


@asynccontextmanager
async def system(db: Database) -> AsyncIterator[AsyncSession]:
    async with db.transaction(SYSTEM) as session:
        yield session


async def one(db: Database, model: type[Any], *where: Any) -> Any:
    async with db.session(SYSTEM) as session:
        return (await session.scalars(select(model).where(*where))).one()


async def ids_of(db: Database, model: type[Any], *where: Any) -> set[uuid.UUID]:
    async with db.session(SYSTEM) as session:
        return set(await session.scalars(sa.select(model.id).where(*where)))


async def update(db: Database, model: type[Any], where: Any, **values: Any) -> None:
    async with system(db) as session:
        result = await session.execute(sa.update(model).where(where).values(**values))
        assert getattr(result, "rowcount", 1) >= 1, f"no {model.__name__} to update"


async def tenant_id(db: Database, slug: str) -> uuid.UUID:
    row: Tenant = await one(db, Tenant, col(Tenant.slug) == slug)
    return row.id


async def customer_of(db: Database, email: str) -> Customer:
    contact: Contact = await one(db, Contact, col(Contact.email) == email)
    row: Customer = await one(db, Customer, col(Customer.id) == contact.customer_id)
    return row


async def site_named(db: Database, name: str) -> Site:
    row: Site = await one(db, Site, col(Site.name) == name)
    return row


async def invoice_id(db: Database, number: str) -> uuid.UUID:
    row: Invoice = await one(db, Invoice, col(Invoice.number) == number)
    return row.id


async def give_riverside_company_contact_an_account(db: Database) -> str:
    """Riverside's company contact, with portal access, signed in: the whole customer."""
    async with system(db) as session:
        contact = (
            await session.scalars(select(Contact).where(col(Contact.email) == RIVERSIDE_COMPANY))
        ).one()
        contact.portal_access = True
        account = PortalAccount(email=RIVERSIDE_COMPANY, username="rita", name=contact.name)
        session.add(account)
        await session.flush()
        session.add(
            PortalMembership(
                tenant_id=contact.tenant_id, account_id=account.id, contact_id=contact.id
            )
        )
    return await token_for(db, RIVERSIDE_COMPANY)


def edges(body: dict[str, Any], field: str) -> list[dict[str, Any]]:
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"][field]["edges"]]


def numbers(body: dict[str, Any], field: str) -> list[str]:
    return [node["number"] for node in edges(body, field)]


async def invoice_numbers(client: httpx.AsyncClient, token: str, **arguments: Any) -> list[str]:
    query = """query ($contractor: ID, $unpaidOnly: Boolean! = false) {
      invoices(contractor: $contractor, unpaidOnly: $unpaidOnly) { edges { node { number } } }
    }"""
    return numbers(await ask(client, token, query, arguments), "invoices")


async def counts(db: Database) -> dict[str, int]:
    """How many rows of what a portal mutation could write."""
    async with db.session(SYSTEM) as session:
        found = {}
        models: list[Any] = [ServiceRequest, ServiceRequestEvent, Rental, Site, Contact, Customer]
        for model in [*models, PortalMembership]:
            found[model.__name__] = await session.scalar(
                sa.select(sa.func.count()).select_from(model)
            )
        found["decided quotes"] = await session.scalar(
            sa.select(sa.func.count()).where(col(Quote.decided_at).is_not(None))
        )
    return {name: int(value or 0) for name, value in found.items()}


def portal_schema() -> GraphQLSchema:
    return build_schema(PORTAL_SDL.read_text())


def field_directives(node: Any) -> set[str]:
    ast = node.ast_node
    return {directive.name.value for directive in (ast.directives if ast else ()) or ()}


# -- 1. A site contact: its own site, and never an invoice (SECURITY rows 2 and 3) -------------


async def test_t1_a_site_contact_sees_only_its_own_site_in_properties_and_customers(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    query = """{
      properties { edges { node { name } } }
      customers { name contactKind sites { name } contacts { name } }
    }"""
    site = await ask(demo_client, await token_for(demo_db, SITE), query)
    company = await ask(
        demo_client, await give_riverside_company_contact_an_account(demo_db), query
    )

    assert site == {
        "data": {
            "properties": {"edges": [{"node": {"name": QUAYSIDE}}]},
            "customers": [
                {
                    "name": "Riverside Construction Ltd",
                    "contactKind": "SITE",
                    "sites": [{"name": QUAYSIDE}],
                    "contacts": [{"name": f"{QUAYSIDE} Site Lead"}],
                }
            ],
        }
    }
    # The same customer seen by its company contact: every site, every contact.
    assert [edge["node"]["name"] for edge in company["data"]["properties"]["edges"]] == (
        RIVERSIDE_SITES
    )
    [customer] = company["data"]["customers"]
    assert customer["contactKind"] == "COMPANY"
    assert [s["name"] for s in customer["sites"]] == RIVERSIDE_SITES
    assert len(customer["contacts"]) == 3


async def test_t1_a_site_contacts_open_request_count_is_of_its_own_site(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    riverside = await customer_of(demo_db, SITE)
    itchen = await site_named(demo_db, "Itchen Bridge Works")
    async with system(demo_db) as session:
        session.add(
            ServiceRequest(
                tenant_id=riverside.tenant_id,
                customer_id=riverside.id,
                site_id=itchen.id,
                number="PR-9101",
                description="A second skip at the bridge.",
            )
        )
    query = "{ customers { openRequestCount } requests { edges { node { number } } } }"
    site = await ask(demo_client, await token_for(demo_db, SITE), query)
    company = await ask(
        demo_client, await give_riverside_company_contact_an_account(demo_db), query
    )
    # PR-7001 (NEW) and PR-7002 (READ) are at Quayside; PR-9101 at Itchen Bridge.
    assert site["data"]["customers"] == [{"openRequestCount": 2}]
    assert sorted(numbers(site, "requests")) == ["PR-7001", "PR-7002"]
    assert company["data"]["customers"] == [{"openRequestCount": 3}]
    assert sorted(numbers(company, "requests")) == ["PR-7001", "PR-7002", "PR-9101"]


LISTS: dict[str, tuple[Any, str, str]] = {
    # field: (model, type name, document selecting each row's id and what names it)
    "requests": (ServiceRequest, "ServiceRequest", "requests { edges { node { id number } } }"),
    "jobs": (Job, "Job", "jobs { edges { node { id number } } }"),
    "quotes": (Quote, "Quote", "quotes { edges { node { id number } } }"),
    "certificates": (Certificate, "Certificate", "certificates { edges { node { id number } } }"),
    "appointments": (
        DiaryEvent,
        "Appointment",
        f'appointments(from: "{FROM}", to: "{TO}") '
        "{ edges { node { id title jobNumber quoteNumber address } } }",
    ),
}


async def test_t1_a_site_contact_sees_only_the_records_at_its_own_site_of_all_the_company_sees(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    site_token = await token_for(demo_db, SITE)
    company_token = await give_riverside_company_contact_an_account(demo_db)
    riverside = await customer_of(demo_db, SITE)
    quayside = await site_named(demo_db, QUAYSIDE)
    document = "{ " + " ".join(selection for _, _, selection in LISTS.values()) + " }"
    site = await ask(demo_client, site_token, document)
    company = await ask(demo_client, company_token, document)

    for field, (model, type_name, _) in LISTS.items():
        everything = col(model.customer_id) == riverside.id
        if model is Quote:
            everything = sa.and_(everything, col(Quote.status) != QuoteStatus.DRAFT)
        in_db = await ids_of(demo_db, model, everything)
        at_site = await ids_of(demo_db, model, everything, col(model.site_id) == quayside.id)
        company_ids = {node["id"] for node in edges(company, field)}
        site_ids = {node["id"] for node in edges(site, field)}
        # The company contact sees the whole customer; the site contact the part at its site.
        assert company_ids == {gid(type_name, row_id) for row_id in in_db}, field
        assert site_ids == {gid(type_name, row_id) for row_id in at_site}, field
        assert site_ids <= company_ids, field

    # The same, by name: what is at Quayside, and nothing of Itchen Bridge or Head Office.
    assert sorted(n["number"] for n in edges(site, "requests")) == ["PR-7001", "PR-7002"]
    assert [n["number"] for n in edges(site, "jobs")] == ["J-3003"]
    assert sorted(n["number"] for n in edges(company, "jobs")) == ["J-3003", "J-3004"]
    # Riverside's quotes are both at its head office.
    assert edges(site, "quotes") == []
    assert sorted(n["number"] for n in edges(company, "quotes")) == ["Q-4003", "Q-4004"]
    assert [n["number"] for n in edges(site, "certificates")] == ["C-6003"]
    # The estimate visit is at Quayside but for a quote at the head office: the site contact
    # sees the visit, never the quote's number.
    assert sorted(
        (n["title"], n["jobNumber"], n["quoteNumber"]) for n in edges(site, "appointments")
    ) == [("Estimate visit: welfare cabins", None, None), ("Weekly service", "J-3003", None)]
    assert sorted(
        (n["title"], n["jobNumber"], n["quoteNumber"]) for n in edges(company, "appointments")
    ) == [("Estimate visit: welfare cabins", None, "Q-4003"), ("Weekly service", "J-3003", None)]


async def test_e2_a_site_contact_is_refused_invoices_at_the_root(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    body = await ask(demo_client, token, "{ invoices { edges { node { number } } } }")
    assert error_codes(body) == ["CONTACT_FORBIDDEN"]
    assert body["data"] is None

    body = await ask(demo_client, token, "{ customers { name outstanding { minor } } }")
    assert error_codes(body) == ["CONTACT_FORBIDDEN"]
    assert body["data"] == {
        "customers": [{"name": "Riverside Construction Ltd", "outstanding": None}]
    }


async def test_e2_a_site_contact_walking_request_site_customer_invoices_gets_no_invoice(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    body = await ask(
        demo_client,
        token,
        "{ requests { edges { node { number site { name customer { invoices { number } } } } } } }",
    )
    errors = body["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["CONTACT_FORBIDDEN"] * 2
    assert sorted(tuple(error["path"]) for error in errors) == [
        ("requests", "edges", n, "node", "site", "customer", "invoices") for n in (0, 1)
    ]
    # Customer and its invoices are non-null, so the refusal nulls the site, and nothing else.
    assert sorted(n["number"] for n in edges({"data": body["data"]}, "requests")) == [
        "PR-7001",
        "PR-7002",
    ]
    assert all(node["site"] is None for node in edges({"data": body["data"]}, "requests"))
    assert "INV-" not in json.dumps(body)

    # The same through the site itself, reached by id.
    quayside = await site_named(demo_db, QUAYSIDE)
    body = await ask(
        demo_client,
        token,
        "query ($id: ID!) { node(id: $id) { ... on Site { name customer {"
        " invoices { number } } } } }",
        {"id": gid("Site", quayside.id)},
    )
    assert error_codes(body) == ["CONTACT_FORBIDDEN"]
    assert body["data"] == {"node": None}
    assert "INV-" not in json.dumps(body)


async def test_e2_a_site_contact_asking_for_its_own_customers_invoice_by_id_gets_null(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    query = "query ($id: ID!) { node(id: $id) { id ... on Invoice { number } } }"
    # INV-5007 is even for work at the site contact's own site; INV-5008 at another.
    for number in ("INV-5007", "INV-5008", "INV-5009"):
        body = await ask(
            demo_client, token, query, {"id": gid("Invoice", await invoice_id(demo_db, number))}
        )
        assert body == {"data": {"node": None}}, number
    made_up = await ask(demo_client, token, query, {"id": gid("Invoice", uuid.uuid4())})
    assert made_up == {"data": {"node": None}}


async def test_e4_a_site_contact_cannot_ask_for_work_or_decide_a_quote_at_another_site(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    itchen = gid("Site", (await site_named(demo_db, "Itchen Bridge Works")).id)
    head_office = gid("Site", (await site_named(demo_db, "Riverside Head Office")).id)
    # Q-4003 is a sent quote of its own customer's, at the head office.
    quote: Quote = await one(demo_db, Quote, col(Quote.number) == "Q-4003")
    made_up = gid("Site", uuid.uuid4())
    work = """mutation ($site: ID!) {
      requestWork(input: {kind: JOB, siteId: $site, description: "A new skip"}) { number }
    }"""
    service = """mutation ($site: ID!) {
      submitServiceRequest(input: {siteId: $site, newRental: true}) { number }
    }"""
    decide = "mutation ($id: ID!) { decideQuote(quoteId: $id, approve: true) { status } }"
    before = await counts(demo_db)

    expected = await ask(demo_client, token, work, {"site": made_up})
    assert error_codes(expected) == ["NOT_FOUND"]
    for document in (work, service):
        for site in (itchen, head_office):
            body = await ask(demo_client, token, document, {"site": site})
            assert body["data"] is None, body
            assert error_codes(body) == ["NOT_FOUND"], body
            assert body["errors"][0]["message"] == expected["errors"][0]["message"], body
    body = await ask(demo_client, token, decide, {"id": gid("Quote", quote.id)})
    assert body["data"] is None, body
    assert error_codes(body) == ["NOT_FOUND"], body
    assert await counts(demo_db) == before
    unchanged: Quote = await one(demo_db, Quote, col(Quote.id) == quote.id)
    assert unchanged.status is QuoteStatus.SENT

    # At its own site it can.
    quayside = gid("Site", (await site_named(demo_db, QUAYSIDE)).id)
    body = await ask(demo_client, token, work, {"site": quayside})
    assert "errors" not in body, body


async def test_e2_a_company_grant_elsewhere_does_not_open_invoices_where_one_is_a_site_contact(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    """The quayside account also speaks for Harbour View as a company contact: the field
    guards pass for it, but Riverside's invoices stay out of reach on every path."""
    harbour = await customer_of(demo_db, COMPANY)
    account: PortalAccount = await one(demo_db, PortalAccount, col(PortalAccount.email) == SITE)
    async with system(demo_db) as session:
        contact = Contact(
            tenant_id=harbour.tenant_id,
            customer_id=harbour.id,
            kind=ContactKind.COMPANY,
            name="Quentin Quayside",
            email=SITE,
            portal_access=True,
        )
        session.add(contact)
        await session.flush()
        session.add(
            PortalMembership(
                tenant_id=harbour.tenant_id, account_id=account.id, contact_id=contact.id
            )
        )
    token = await token_for(demo_db, SITE)
    riverside_invoices = ("INV-5007", "INV-5008", "INV-5009")

    assert await invoice_numbers(demo_client, token) == HARBOUR_SHOWN
    body = await ask(
        demo_client,
        token,
        """{ customers { name contactKind invoices { number } }
             requests { edges { node { number site { customer { name invoices { number } } } } } }
        }""",
    )
    text = json.dumps(body)
    assert not any(number in text for number in riverside_invoices), body
    kinds = {c["name"]: c["contactKind"] for c in body["data"]["customers"]}
    assert kinds == {"Harbour View Hotel": "COMPANY", "Riverside Construction Ltd": "SITE"}
    by_name = {c["name"]: c["invoices"] for c in body["data"]["customers"]}
    assert [i["number"] for i in by_name["Harbour View Hotel"]] == list(reversed(HARBOUR_SHOWN))
    assert by_name.get("Riverside Construction Ltd") in (None, [])
    for number in riverside_invoices:
        node_id = gid("Invoice", await invoice_id(demo_db, number))
        reached = await ask(
            demo_client, token, "query ($id: ID!) { node(id: $id) { id } }", {"id": node_id}
        )
        assert reached == {"data": {"node": None}}, number


# -- 2. A company contact: its own customer's invoices, as the business shows them (E2) -------


HARBOUR_SHOWN = ["INV-5002", "INV-5006", "INV-5003", "INV-5004"]  # newest first


async def test_e2_a_company_contact_sees_its_own_customers_invoices_only(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    harbour = await customer_of(demo_db, COMPANY)
    assert await invoice_numbers(demo_client, token) == HARBOUR_SHOWN
    # Exactly this customer's unpaid and paid ones: none of its drafts or voided ones, and
    # none of another customer's or another business's.
    async with demo_db.session(SYSTEM) as session:
        expected = set(
            await session.scalars(
                sa.select(col(Invoice.number)).where(
                    col(Invoice.customer_id) == harbour.id,
                    col(Invoice.status).in_([InvoiceStatus.UNPAID, InvoiceStatus.PAID]),
                )
            )
        )
        others = set(
            await session.scalars(
                sa.select(col(Invoice.number)).where(col(Invoice.customer_id) != harbour.id)
            )
        )
    assert set(HARBOUR_SHOWN) == expected
    assert {"INV-5007", "BW-101", "NS-1001"} <= others

    body = await ask(
        demo_client, token, "{ customers { invoices { number } outstanding { minor currency } } }"
    )
    assert "errors" not in body, body
    [customer] = body["data"]["customers"]
    # Oldest first here.
    assert [i["number"] for i in customer["invoices"]] == list(reversed(HARBOUR_SHOWN))


async def test_e2_another_customers_or_businesses_ids_are_null_like_a_made_up_id(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    query = "query ($id: ID!) { node(id: $id) { __typename id } }"
    riverside = await customer_of(demo_db, SITE)
    foreign: list[str] = [
        gid("Invoice", await invoice_id(demo_db, number))
        for number in ("INV-5007", "INV-5011", "BW-101", "NS-1001", "INV-5001", "INV-5005")
    ]
    job: Job = await one(demo_db, Job, col(Job.number) == "J-3003")
    quote: Quote = await one(demo_db, Quote, col(Quote.number) == "Q-4003")
    draft: Quote = await one(demo_db, Quote, col(Quote.number) == "Q-4001")
    rita: Contact = await one(demo_db, Contact, col(Contact.email) == RIVERSIDE_COMPANY)
    foreign += [
        gid("Job", job.id),
        gid("Quote", quote.id),
        gid("Quote", draft.id),  # its own customer's, but a draft
        gid("Site", (await site_named(demo_db, QUAYSIDE)).id),
        gid("Contact", rita.id),
        gid("Customer", riverside.id),
        gid("Customer", (await customer_of(demo_db, "polly@oldmill.example")).id),
    ]
    made_up = [gid(kind, uuid.uuid4()) for kind in ("Invoice", "Job", "Quote", "Site", "Contact")]
    for node_id in [*foreign, *made_up]:
        assert await ask(demo_client, token, query, {"id": node_id}) == {"data": {"node": None}}

    # Its own are found, so the nulls above are about reach, not about the query.
    own = gid("Invoice", await invoice_id(demo_db, "INV-5002"))
    body = await ask(demo_client, token, query, {"id": own})
    assert body == {"data": {"node": {"__typename": "Invoice", "id": own}}}


async def test_e2_paid_invoices_are_shown_only_where_the_business_shows_them(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    acme = await tenant_id(demo_db, "acme")
    paid = gid("Invoice", await invoice_id(demo_db, "INV-5004"))
    node = "query ($id: ID!) { node(id: $id) { ... on Invoice { number status } } }"
    nested = "{ customers { invoices { number } } }"

    # The demo's business shows paid invoices.
    assert await invoice_numbers(demo_client, token) == HARBOUR_SHOWN
    assert await ask(demo_client, token, node, {"id": paid}) == {
        "data": {"node": {"number": "INV-5004", "status": "PAID"}}
    }

    await update(
        demo_db, Tenant, col(Tenant.id) == acme, invoice_visibility=InvoiceVisibility.OUTSTANDING
    )
    outstanding = [n for n in HARBOUR_SHOWN if n != "INV-5004"]
    assert await invoice_numbers(demo_client, token) == outstanding
    assert await ask(demo_client, token, node, {"id": paid}) == {"data": {"node": None}}
    body = await ask(demo_client, token, nested)
    assert [i["number"] for i in body["data"]["customers"][0]["invoices"]] == list(
        reversed(outstanding)
    )

    await update(
        demo_db,
        Tenant,
        col(Tenant.id) == acme,
        invoice_visibility=InvoiceVisibility.OUTSTANDING_AND_PAID,
    )
    assert await invoice_numbers(demo_client, token) == HARBOUR_SHOWN
    assert await ask(demo_client, token, node, {"id": paid}) == {
        "data": {"node": {"number": "INV-5004", "status": "PAID"}}
    }


async def test_e2_an_unpaid_invoice_past_its_due_date_is_overdue(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    # Today where the business is (acme is in Europe/London).
    today = datetime.now(ZoneInfo("Europe/London")).date()
    for number, due in [
        ("INV-5002", today),  # due today: not overdue yet
        ("INV-5003", today - timedelta(days=1)),  # unpaid, due yesterday
        ("INV-5006", today - timedelta(days=1)),  # part paid, due yesterday
        ("INV-5004", today - timedelta(days=30)),  # paid long after: still paid
    ]:
        await update(demo_db, Invoice, col(Invoice.number) == number, due_on=due)
    body = await ask(
        demo_client,
        token,
        "{ invoices { edges { node { number status dueOn balance { minor } } } } }",
    )
    statuses = {node["number"]: node["status"] for node in edges(body, "invoices")}
    assert statuses == {
        "INV-5002": "UNPAID",
        "INV-5003": "OVERDUE",
        "INV-5006": "OVERDUE",
        "INV-5004": "PAID",
    }
    due_on = {node["number"]: node["dueOn"] for node in edges(body, "invoices")}
    assert due_on["INV-5003"] == (today - timedelta(days=1)).isoformat()

    # Due in the future and part paid: PART_PAID, not OVERDUE.
    await update(
        demo_db, Invoice, col(Invoice.number) == "INV-5006", due_on=today + timedelta(days=1)
    )
    body = await ask(demo_client, token, "{ invoices { edges { node { number status } } } }")
    assert {n["number"]: n["status"] for n in edges(body, "invoices")}["INV-5006"] == "PART_PAID"


async def test_e2_the_unpaid_only_filter_leaves_out_paid_invoices(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    assert await invoice_numbers(demo_client, token, unpaidOnly=True) == [
        "INV-5002",
        "INV-5006",
        "INV-5003",
    ]
    assert await invoice_numbers(demo_client, token, unpaidOnly=False) == HARBOUR_SHOWN


async def test_e2_the_contractor_filter_gives_that_contractors_invoices_and_no_others(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    acme = gid("Contractor", await tenant_id(demo_db, "acme"))
    assert await invoice_numbers(demo_client, token, contractor=acme) == HARBOUR_SHOWN
    assert await invoice_numbers(demo_client, token, contractor=acme, unpaidOnly=True) == [
        "INV-5002",
        "INV-5006",
        "INV-5003",
    ]
    # Businesses it is no customer of, and one that does not exist, match nothing.
    for slug in ("northside", "brightwater"):
        other = gid("Contractor", await tenant_id(demo_db, slug))
        assert await invoice_numbers(demo_client, token, contractor=other) == []
    made_up = gid("Contractor", uuid.uuid4())
    assert await invoice_numbers(demo_client, token, contractor=made_up) == []


# -- 3. Modules: tenant defaults, narrowed by the customer, narrowed by the user (S5, E14) -----


def test_e14_the_root_documents_cover_every_guarded_portal_query_and_each_modules_fields() -> None:
    schema = portal_schema()
    assert schema.query_type is not None
    guarded = {
        name
        for name, field in schema.query_type.fields.items()
        if "public" not in field_directives(field)
    }
    assert set(ROOT_DOCUMENTS) == guarded
    by_module: dict[str, list[str]] = {}
    for name, field in schema.query_type.fields.items():
        ast = field.ast_node
        assert ast is not None
        for directive in ast.directives or ():
            if directive.name.value == "requiresModule":
                [argument] = list(directive.arguments or [])
                by_module.setdefault(getattr(argument.value, "value", ""), []).append(name)
    assert by_module == MODULE_FIELDS


async def refused_fields(client: httpx.AsyncClient, token: str, code: str) -> dict[str, bool]:
    """For every guarded root field: whether it was refused with exactly `code` (and no
    data); a field not refused must answer without errors."""
    found = {}
    for name, document in ROOT_DOCUMENTS.items():
        body = await ask(client, token, document)
        refused = error_codes(body) == [code]
        if refused:
            # Null in place of the field: the whole data for a non-null one.
            assert body["data"] in (None, {name: None}), (name, body)
        else:
            assert "errors" not in body, (name, body)
        found[name] = refused
    return found


async def test_s5_a_user_with_invoices_and_requests_only_is_refused_everything_else(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, NARROW)
    school = await customer_of(demo_db, NARROW)
    contact: Contact = await one(demo_db, Contact, col(Contact.email) == NARROW)
    async with system(demo_db) as session:
        session.add(
            ServiceRequest(
                tenant_id=school.tenant_id,
                customer_id=school.id,
                contact_id=contact.id,
                number="PR-9001",
                description="More hand wash units for sports day.",
            )
        )

    refused = await refused_fields(demo_client, token, "MODULE_FORBIDDEN")
    allowed = {"contractors", "customers", "invoices", "requests", "requestableItems", *MESSAGES}
    assert refused == {name: name not in allowed for name in ROOT_DOCUMENTS}

    body = await ask(
        demo_client,
        token,
        """{ customers { name modules contactKind }
             invoices { edges { node { number status } } }
             requests { edges { node { number } } } }""",
    )
    assert "errors" not in body, body
    assert body["data"]["customers"] == [
        {
            "name": "Greenfield Primary School",
            "modules": ["INVOICES", "REQUESTS"],
            "contactKind": "COMPANY",
        }
    ]
    assert numbers(body, "invoices") == ["INV-5011"]
    assert numbers(body, "requests") == ["PR-9001"]


@pytest.mark.parametrize("layer", ["tenant", "customer", "user"])
async def test_s5_each_of_the_three_layers_narrows_modules_on_the_very_next_request(
    demo_db: Database, demo_client: httpx.AsyncClient, layer: str
) -> None:
    token = await token_for(demo_db, COMPANY)
    harbour = await customer_of(demo_db, COMPANY)
    account: PortalAccount = await one(demo_db, PortalAccount, col(PortalAccount.email) == COMPANY)
    without_quotes = [m for m in ALL_MODULES if m != "QUOTES"]

    async def narrow(modules: list[str] | None) -> None:
        if layer == "tenant":
            await update(
                demo_db,
                Tenant,
                col(Tenant.id) == harbour.tenant_id,
                default_modules=modules if modules is not None else list(ALL_MODULES),
            )
        elif layer == "customer":
            await update(demo_db, Customer, col(Customer.id) == harbour.id, module_override=modules)
        else:
            await update(
                demo_db,
                PortalMembership,
                col(PortalMembership.account_id) == account.id,
                module_override=modules,
            )

    quotes = "{ quotes { edges { node { number } } } }"
    modules = "{ customers { modules } }"
    assert numbers(await ask(demo_client, token, quotes), "quotes") == ["Q-4002"]

    await narrow(without_quotes)
    body = await ask(demo_client, token, quotes)
    assert error_codes(body) == ["MODULE_FORBIDDEN"]
    assert body["data"] is None
    assert (await ask(demo_client, token, modules))["data"]["customers"] == [
        {"modules": without_quotes}
    ]
    # A quote by id is not reached either, and the rest still works.
    q = await one(demo_db, Quote, col(Quote.number) == "Q-4002")
    body = await ask(
        demo_client, token, "query ($id: ID!) { node(id: $id) { id } }", {"id": gid("Quote", q.id)}
    )
    assert body == {"data": {"node": None}}
    assert await invoice_numbers(demo_client, token) == HARBOUR_SHOWN

    await narrow(None)
    assert numbers(await ask(demo_client, token, quotes), "quotes") == ["Q-4002"]
    assert (await ask(demo_client, token, modules))["data"]["customers"] == [
        {"modules": list(ALL_MODULES)}
    ]


async def test_s5_the_effective_modules_are_the_intersection_of_the_three_layers(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    harbour = await customer_of(demo_db, COMPANY)
    account: PortalAccount = await one(demo_db, PortalAccount, col(PortalAccount.email) == COMPANY)
    await update(
        demo_db,
        Tenant,
        col(Tenant.id) == harbour.tenant_id,
        default_modules=["QUOTES", "JOBS", "INVOICES", "DIARIES", "USERS"],
    )
    await update(
        demo_db,
        Customer,
        col(Customer.id) == harbour.id,
        module_override=["QUOTES", "JOBS", "CERTIFICATES", "DIARIES", "PROPERTIES"],
    )
    await update(
        demo_db,
        PortalMembership,
        col(PortalMembership.account_id) == account.id,
        module_override=["JOBS", "INVOICES", "CERTIFICATES", "DIARIES", "REQUESTS"],
    )
    body = await ask(demo_client, token, "{ customers { modules } }")
    assert body == {"data": {"customers": [{"modules": ["JOBS", "DIARIES"]}]}}
    refused = await refused_fields(demo_client, token, "MODULE_FORBIDDEN")
    allowed = {"contractors", "customers", "jobs", "upcomingVisits", "appointments", *MESSAGES}
    assert refused == {name: name not in allowed for name in ROOT_DOCUMENTS}


async def test_s5_a_customers_narrowed_modules_apply_to_its_company_contact(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, "owen@oakwoodfestival.example")
    refused = await refused_fields(demo_client, token, "MODULE_FORBIDDEN")
    allowed = {
        "contractors",
        "customers",
        "invoices",
        "requests",
        "requestableItems",
        "properties",
        "users",
        "contacts",
        "jobs",
        "upcomingVisits",
        *MESSAGES,
    }
    assert refused == {name: name not in allowed for name in ROOT_DOCUMENTS}


def module_types() -> dict[str, str]:
    """Every node type the SDL marks as one module's data, with that module."""
    schema = portal_schema()
    found = {}
    for name, kind in schema.type_map.items():
        if not isinstance(kind, GraphQLObjectType) or kind.ast_node is None:
            continue
        if not any(interface.name == "Node" for interface in kind.interfaces):
            continue
        for directive in kind.ast_node.directives or ():
            if directive.name.value == "requiresModule":
                [argument] = list(directive.arguments or [])
                found[name] = str(getattr(argument.value, "value", ""))
    return found


# How to find one record of each module's types among what harbour's contact sees.
Pick = Callable[[dict[str, Any]], str]


def first_node(field: str) -> tuple[str, Pick]:
    return (
        f"{{ {field} {{ edges {{ node {{ id }} }} }} }}",
        lambda data: str(data[field]["edges"][0]["node"]["id"]),
    )


def first_rental(data: dict[str, Any]) -> str:
    return next(
        str(rental["id"])
        for edge in data["properties"]["edges"]
        for rental in edge["node"]["rentals"]
    )


ONE_OF: dict[str, tuple[str, Pick]] = {
    "Appointment": (
        f'{{ appointments(from: "{FROM}", to: "{TO}") {{ edges {{ node {{ id }} }} }} }}',
        lambda data: str(data["appointments"]["edges"][0]["node"]["id"]),
    ),
    "Certificate": first_node("certificates"),
    "Invoice": first_node("invoices"),
    "Job": first_node("jobs"),
    "PortalUser": first_node("users"),
    "Quote": first_node("quotes"),
    "Rental": ("{ properties { edges { node { rentals { id } } } } }", first_rental),
    "RequestableItem": (
        "{ requestableItems { id } }",
        lambda data: str(data["requestableItems"][0]["id"]),
    ),
    "ServiceRequest": first_node("requests"),
}


def test_e14_every_node_type_of_a_module_is_checked_by_id() -> None:
    assert set(module_types()) == set(ONE_OF)


@pytest.mark.parametrize("type_name", sorted(ONE_OF))
async def test_e14_a_record_of_a_module_the_user_lacks_is_not_reached_by_id(
    demo_db: Database, demo_client: httpx.AsyncClient, type_name: str
) -> None:
    module = module_types()[type_name]
    token = await token_for(demo_db, COMPANY)
    account: PortalAccount = await one(demo_db, PortalAccount, col(PortalAccount.email) == COMPANY)
    document, pick = ONE_OF[type_name]
    body = await ask(demo_client, token, document)
    assert "errors" not in body, body
    node_id = pick(body["data"])
    query = "query ($id: ID!) { node(id: $id) { __typename id } }"
    found = await ask(demo_client, token, query, {"id": node_id})
    assert found == {"data": {"node": {"__typename": type_name, "id": node_id}}}

    await update(
        demo_db,
        PortalMembership,
        col(PortalMembership.account_id) == account.id,
        module_override=[m for m in ALL_MODULES if m != module],
    )
    # The SDL marks the type as the module's data: without the module, it is not there
    # (and none of what it tells is shown).
    telling = (
        "query ($id: ID!) { node(id: $id) { __typename id"
        " ... on PortalUser { email } ... on Rental { reference description }"
        " ... on RequestableItem { name } } }"
    )
    assert await ask(demo_client, token, telling, {"id": node_id}) == {"data": {"node": None}}


async def test_s6_an_item_hidden_from_the_portal_is_not_reached_by_id(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    hidden: RequestableItem = await one(
        demo_db, RequestableItem, col(RequestableItem.name) == "Disabled Access Unit"
    )
    assert hidden.show_in_portal is False
    body = await ask(demo_client, token, "{ requestableItems { name } }")
    assert "Disabled Access Unit" not in {item["name"] for item in body["data"]["requestableItems"]}
    # Asking for it is refused as if it did not exist...
    site: Site = await one(demo_db, Site, col(Site.name) == "Harbour View Hotel")
    body = await ask(
        demo_client,
        token,
        "mutation ($site: ID!, $product: ID!) { submitServiceRequest(input: {siteId: $site,"
        " productId: $product, newRental: true}) { number } }",
        {"site": gid("Site", site.id), "product": gid("RequestableItem", hidden.id)},
    )
    assert error_codes(body) == ["NOT_FOUND"], body
    # ...and by id it is not there either.
    body = await ask(
        demo_client,
        token,
        "query ($id: ID!) { node(id: $id) { ... on RequestableItem { name } } }",
        {"id": gid("RequestableItem", hidden.id)},
    )
    assert body == {"data": {"node": None}}


# -- 4. One account at two contractors (P4) --------------------------------------------------


async def test_p4_an_account_at_two_contractors_sees_both_and_filters_by_either(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, TWO)
    acme = gid("Contractor", await tenant_id(demo_db, "acme"))
    northside = gid("Contractor", await tenant_id(demo_db, "northside"))
    brightwater = gid("Contractor", await tenant_id(demo_db, "brightwater"))
    query = """query ($contractor: ID) {
      contractors { id name }
      customers(contractor: $contractor) { name contractor { name } }
      invoices(contractor: $contractor) { edges { node { number contractor { name } } } }
      certificates(contractor: $contractor) { edges { node { number } } }
      requestableItems(contractor: $contractor) { name }
    }"""

    both = await ask(demo_client, token, query, {"contractor": None})
    assert "errors" not in both, both
    assert both["data"]["contractors"] == [
        {"id": acme, "name": ACME},
        {"id": northside, "name": NORTHSIDE},
    ]
    assert both["data"]["customers"] == [
        {"name": "Maple Court Apartments", "contractor": {"name": ACME}},
        {"name": "Maple Court Apartments", "contractor": {"name": NORTHSIDE}},
    ]
    assert sorted((n["number"], n["contractor"]["name"]) for n in edges(both, "invoices")) == [
        ("INV-5012", ACME),
        ("NS-1001", NORTHSIDE),
    ]
    assert sorted(numbers(both, "certificates")) == ["C-6004", "GS-901", "GS-902"]
    names = {item["name"] for item in both["data"]["requestableItems"]}
    assert {"Annual Gas Safety Check", "Delivery"} <= names

    only_acme = await ask(demo_client, token, query, {"contractor": acme})
    assert [c["contractor"]["name"] for c in only_acme["data"]["customers"]] == [ACME]
    assert numbers(only_acme, "invoices") == ["INV-5012"]
    assert numbers(only_acme, "certificates") == ["C-6004"]
    acme_items = {item["name"] for item in only_acme["data"]["requestableItems"]}
    assert "Annual Gas Safety Check" not in acme_items
    assert "Delivery" in acme_items

    only_northside = await ask(demo_client, token, query, {"contractor": northside})
    assert [c["contractor"]["name"] for c in only_northside["data"]["customers"]] == [NORTHSIDE]
    assert numbers(only_northside, "invoices") == ["NS-1001"]
    assert sorted(numbers(only_northside, "certificates")) == ["GS-901", "GS-902"]
    assert {i["name"] for i in only_northside["data"]["requestableItems"]} == {
        "Annual Gas Safety Check",
        "Boiler Service",
    }

    # Another business's contractor id, or a made-up one, matches nothing.
    for other in (brightwater, gid("Contractor", uuid.uuid4())):
        body = await ask(demo_client, token, query, {"contractor": other})
        assert "errors" not in body, body
        assert body["data"]["customers"] == []
        assert edges(body, "invoices") == []
        assert edges(body, "certificates") == []
        assert body["data"]["requestableItems"] == []
        # The list of contractors is the account's, whatever the filter.
        assert [c["name"] for c in body["data"]["contractors"]] == [ACME, NORTHSIDE]


# -- 5. The plan and the switches stop a signed-in user at once (T2, T3, T4) -----------------


async def data_mutations(db: Database) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every portal mutation that touches a customer's data, with real ids of harbour's."""
    harbour = await customer_of(db, COMPANY)
    site = await one(
        db, Site, col(Site.customer_id) == harbour.id, col(Site.name) == "Harbour View Hotel"
    )
    quote = await one(db, Quote, col(Quote.number) == "Q-4002")
    invoice = await one(db, Invoice, col(Invoice.number) == "INV-5002")
    harry = await one(db, Contact, col(Contact.name) == "Harry Accounts")
    hannah = await one(db, Contact, col(Contact.email) == COMPANY)
    user = await one(db, PortalMembership, col(PortalMembership.contact_id) == hannah.id)
    request = await one(db, ServiceRequest, col(ServiceRequest.number) == "PR-7006")
    contact = {"contact": gid("Contact", harry.id)}
    users = {"user": gid("PortalUser", user.id)}
    return {
        "submitServiceRequest": (
            "mutation ($site: ID!) { submitServiceRequest(input: {siteId: $site, newRental: true})"
            " { id } }",
            {"site": gid("Site", site.id)},
        ),
        "requestWork": (
            "mutation ($site: ID!) { requestWork(input: {kind: QUOTE, siteId: $site,"
            ' description: "Ten more units"}) { id } }',
            {"site": gid("Site", site.id)},
        ),
        "cancelRequest": (
            "mutation ($request: ID!) { cancelRequest(requestId: $request,"
            ' reason: "No longer needed") { id } }',
            {"request": gid("ServiceRequest", request.id)},
        ),
        "decideQuote": (
            "mutation ($quote: ID!) { decideQuote(quoteId: $quote, approve: true) { status } }",
            {"quote": gid("Quote", quote.id)},
        ),
        "addProperty": (
            'mutation { addProperty(input: {name: "Annexe", addressLine1: "1 Quay"}) { id } }',
            {},
        ),
        "startInvoicePayment": (
            "mutation ($invoice: ID!) {"
            " startInvoicePayment(invoiceId: $invoice) { amount { minor } } }",
            {"invoice": gid("Invoice", invoice.id)},
        ),
        "addContact": ('mutation { addContact(input: {name: "Ann"}) { id } }', {}),
        "updateContact": (
            'mutation ($contact: ID!) { updateContact(id: $contact, input: {phone: "01632 960000"})'
            " { id } }",
            contact,
        ),
        "deleteContact": ("mutation ($contact: ID!) { deleteContact(id: $contact) }", contact),
        "setContactPortalAccess": (
            "mutation ($contact: ID!) { setContactPortalAccess(id: $contact, enabled: false)"
            " { id } }",
            contact,
        ),
        "addPortalUser": (
            'mutation { addPortalUser(input: {name: "Ann", email: "ann@harbourview.example",'
            " modules: [QUOTES]}) { id } }",
            {},
        ),
        "setPortalUserModules": (
            "mutation ($user: ID!) { setPortalUserModules(id: $user, modules: [QUOTES]) { id } }",
            users,
        ),
        "removePortalUser": ("mutation ($user: ID!) { removePortalUser(id: $user) }", users),
        "resendPortalUserInvitation": (
            "mutation ($user: ID!) { resendPortalUserInvitation(id: $user) { id } }",
            users,
        ),
    }


def test_t2_the_data_mutations_are_every_guarded_portal_mutation() -> None:
    schema = portal_schema()
    assert schema.mutation_type is not None
    with_data = {
        name
        for name, field in schema.mutation_type.fields.items()
        if field_directives(field) & {"requiresModule", "requiresContact"}
    }
    assert with_data == {
        "submitServiceRequest",
        "requestWork",
        "cancelRequest",
        "decideQuote",
        "addProperty",
        "startInvoicePayment",
        "addContact",
        "updateContact",
        "deleteContact",
        "setContactPortalAccess",
        "addPortalUser",
        "setPortalUserModules",
        "removePortalUser",
        "resendPortalUserInvitation",
    }


async def assert_stopped(db: Database, client: httpx.AsyncClient, token: str, code: str) -> None:
    """Every portal data field and data mutation answers `code` and nothing else, writes
    nothing, and no object is reached by id."""
    assert await refused_fields(client, token, code) == {name: True for name in ROOT_DOCUMENTS}
    before = await counts(db)
    for name, (document, variables) in (await data_mutations(db)).items():
        body = await ask(client, token, document, variables)
        assert error_codes(body) == [code], (name, body)
        assert body["data"] is None, (name, body)
    assert await counts(db) == before
    own = gid("Invoice", await invoice_id(db, "INV-5002"))
    body = await ask(client, token, "query ($id: ID!) { node(id: $id) { id } }", {"id": own})
    assert body == {"data": {"node": None}}


async def assert_working(client: httpx.AsyncClient, token: str) -> None:
    assert await refused_fields(client, token, "PORTAL_DISABLED") == {
        name: False for name in ROOT_DOCUMENTS
    }
    assert await invoice_numbers(client, token) == HARBOUR_SHOWN


async def test_t2_a_signed_in_user_whose_business_drops_to_starter_is_refused_everywhere(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    acme = await tenant_id(demo_db, "acme")
    await assert_working(demo_client, token)

    await update(demo_db, Tenant, col(Tenant.id) == acme, plan=Plan.STARTER)
    await assert_stopped(demo_db, demo_client, token, "PORTAL_NOT_IN_PLAN")

    await update(demo_db, Tenant, col(Tenant.id) == acme, plan=Plan.PRO)
    await assert_working(demo_client, token)


async def test_t3_a_signed_in_user_whose_business_switches_the_portal_off_is_refused(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    acme = await tenant_id(demo_db, "acme")
    await update(demo_db, Tenant, col(Tenant.id) == acme, portal_enabled=False)
    await assert_stopped(demo_db, demo_client, token, "PORTAL_DISABLED")
    await update(demo_db, Tenant, col(Tenant.id) == acme, portal_enabled=True)
    await assert_working(demo_client, token)


async def test_t4_a_signed_in_user_whose_customer_has_the_portal_switched_off_is_refused(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    harbour = await customer_of(demo_db, COMPANY)
    await update(demo_db, Customer, col(Customer.id) == harbour.id, portal_enabled=False)
    await assert_stopped(demo_db, demo_client, token, "PORTAL_DISABLED")
    await update(demo_db, Customer, col(Customer.id) == harbour.id, portal_enabled=True)
    await assert_working(demo_client, token)


async def test_t4_the_demo_customer_with_the_portal_off_is_refused_everywhere(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, "parks@citycouncil.example")
    assert await refused_fields(demo_client, token, "PORTAL_DISABLED") == {
        name: True for name in ROOT_DOCUMENTS
    }


@pytest.mark.parametrize("switch", ["tenant", "customer", "plan"])
async def test_t3_t4_switching_one_of_two_contractors_off_leaves_the_other(
    demo_db: Database, demo_client: httpx.AsyncClient, switch: str
) -> None:
    token = await token_for(demo_db, TWO)
    acme = await tenant_id(demo_db, "acme")
    maple_at_acme: Customer = await one(
        demo_db,
        Customer,
        col(Customer.tenant_id) == acme,
        col(Customer.portal_identifier) == "maple-court",
    )
    if switch == "tenant":
        await update(demo_db, Tenant, col(Tenant.id) == acme, portal_enabled=False)
    elif switch == "customer":
        await update(demo_db, Customer, col(Customer.id) == maple_at_acme.id, portal_enabled=False)
    else:
        await update(demo_db, Tenant, col(Tenant.id) == acme, plan=Plan.STARTER)

    body = await ask(
        demo_client,
        token,
        """{ contractors { name } customers { contractor { name } }
             invoices { edges { node { number } } }
             certificates { edges { node { number } } }
             jobs { edges { node { number } } }
             quotes { edges { node { number } } }
             requests { edges { node { number } } } }""",
    )
    assert "errors" not in body, body
    assert body["data"]["contractors"] == [{"name": NORTHSIDE}]
    assert body["data"]["customers"] == [{"contractor": {"name": NORTHSIDE}}]
    assert numbers(body, "invoices") == ["NS-1001"]
    assert sorted(numbers(body, "certificates")) == ["GS-901", "GS-902"]
    # Maple Court's acme job, quote and requests are gone with acme; northside's stay.
    assert numbers(body, "jobs") == ["NJ-301"]
    assert numbers(body, "quotes") == ["NQ-201"]
    assert edges(body, "requests") == []
    # Nor is anything of acme's reached by id.
    for number in ("INV-5012",):
        node_id = gid("Invoice", await invoice_id(demo_db, number))
        reached = await ask(
            demo_client, token, "query ($id: ID!) { node(id: $id) { id } }", {"id": node_id}
        )
        assert reached == {"data": {"node": None}}
    # With acme filtered for, nothing at all.
    acme_only = await invoice_numbers(demo_client, token, contractor=gid("Contractor", acme))
    assert acme_only == []


# -- 6. Mass assignment (SECURITY row 5) -----------------------------------------------------


# Input fields named like something a portal user must never set, each reviewed: the
# invitation's business is the public slug from its link (the token is bound to its own
# business), and a new property's, contact's or user's customer is one of the viewer's own,
# checked against its grants and by the data layer (test_e10_... below, test_e11_... and
# test_e12_... in test_portal_people).
ESCALATION_NAMES = {"tenantid", "tenant", "role", "status", "customerid"}
REVIEWED = {
    "AcceptInvitationInput.tenant",
    "PropertyInput.customerId",
    "ContactInput.customerId",
    "PortalUserInput.customerId",
}


def test_t1_no_portal_mutation_input_names_a_tenant_status_or_role_but_the_reviewed_ones() -> None:
    schema = portal_schema()
    assert schema.mutation_type is not None
    found: set[str] = set()
    seen: set[str] = set()

    def walk(kind: GraphQLInputObjectType) -> None:
        if kind.name in seen:
            return
        seen.add(kind.name)
        for name, field in kind.fields.items():
            if name.lower() in ESCALATION_NAMES:
                found.add(f"{kind.name}.{name}")
            inner = get_named_type(field.type)
            if isinstance(inner, GraphQLInputObjectType):
                walk(inner)

    for mutation, field in schema.mutation_type.fields.items():
        for name, argument in field.args.items():
            if name.lower() in ESCALATION_NAMES:
                found.add(f"Mutation.{mutation}({name})")
            inner = get_named_type(argument.type)
            if isinstance(inner, GraphQLInputObjectType):
                walk(inner)
    assert seen  # the walk reached the inputs
    assert found == REVIEWED, sorted(found)


async def test_e10_adding_a_property_to_another_customer_is_not_found_and_writes_nothing(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, COMPANY)
    add = """mutation ($customer: ID) {
      addProperty(input: {customerId: $customer, name: "Annexe", addressLine1: "1 Quay"}) {
        name customer { name }
      }
    }"""
    before = await counts(demo_db)
    riverside = await customer_of(demo_db, SITE)
    mill = await customer_of(demo_db, "polly@oldmill.example")
    answers = []
    for customer in (gid("Customer", riverside.id), gid("Customer", mill.id)):
        answers.append(await ask(demo_client, token, add, {"customer": customer}))
    made_up = await ask(demo_client, token, add, {"customer": gid("Customer", uuid.uuid4())})
    for body in answers:
        assert body["data"] is None
        assert error_codes(body) == error_codes(made_up) == ["NOT_FOUND"]
        assert body["errors"][0]["message"] == made_up["errors"][0]["message"]
    assert await counts(demo_db) == before

    # A site contact cannot add a property even to its own customer.
    site_token = await token_for(demo_db, SITE)
    body = await ask(demo_client, site_token, add, {"customer": gid("Customer", riverside.id)})
    assert error_codes(body) == ["CONTACT_FORBIDDEN"]
    assert await counts(demo_db) == before

    # Its own customer works, so the refusals above are about reach.
    harbour = await customer_of(demo_db, COMPANY)
    body = await ask(demo_client, token, add, {"customer": gid("Customer", harbour.id)})
    assert body == {
        "data": {"addProperty": {"name": "Annexe", "customer": {"name": "Harbour View Hotel"}}}
    }


@pytest.mark.parametrize(
    "document",
    [
        "{ customers { name portalEnabled } }",
        "{ customers { name moduleOverride } }",
        "{ staffUsers { email } }",
        "{ customers { name contractor { plan } } }",
        "{ invoices { edges { node { number tenantId } } } }",
        'mutation { resendInvitation(contactId: "x") { portalAccess } }',
    ],
)
async def test_h1_staff_only_fields_are_a_validation_error_on_the_portal_with_no_data(
    demo_db: Database, demo_client: httpx.AsyncClient, document: str
) -> None:
    token = await token_for(demo_db, COMPANY)
    response = await demo_client.post(
        PORTAL, json={"query": document}, headers={"authorization": f"Bearer {token}"}
    )
    body = response.json()
    assert body.get("data") is None, body
    assert body["errors"], body
    assert all("Cannot query field" in error["message"] for error in body["errors"]), body
    assert "Harbour" not in response.text


# -- 7. The data layer keeps a site contact's session to its site (T1) -----------------------


async def site_contact_grants(db: Database) -> tuple[Grant, ...]:
    account: PortalAccount = await one(db, PortalAccount, col(PortalAccount.email) == SITE)
    async with db.session(SYSTEM) as session:
        grants = await portal_grants(session, account.id)
    quayside = await site_named(db, QUAYSIDE)
    assert [grant.site_id for grant in grants] == [quayside.id]
    return grants


async def test_t1_a_site_contacts_scope_reads_no_invoice_and_only_its_own_site(
    demo_db: Database,
) -> None:
    grants = await site_contact_grants(demo_db)
    riverside = await customer_of(demo_db, SITE)
    async with demo_db.session(Scope.portal(grants)) as session:
        assert list(await session.scalars(select(Invoice))) == []
        # Not even by primary key, nor its own customer's invoice at its own site.
        key = (riverside.tenant_id, await invoice_id(demo_db, "INV-5007"))
        assert await session.get(Invoice, key) is None
        sites = list(await session.scalars(select(Site)))
        assert [site.name for site in sites] == [QUAYSIDE]
        # A join does not widen it.
        joined = list(
            await session.scalars(
                select(Site).join(Customer, col(Customer.id) == col(Site.customer_id))
            )
        )
        assert [site.name for site in joined] == [QUAYSIDE]
        customers = list(await session.scalars(select(Customer)))
        assert [customer.id for customer in customers] == [riverside.id]
    async with demo_db.session(SYSTEM) as session:
        riverside_invoices = await session.scalar(
            sa.select(sa.func.count()).where(col(Invoice.customer_id) == riverside.id)
        )
    assert riverside_invoices == 3  # there were invoices to find


async def test_t1_a_site_contacts_scope_cannot_write_a_request_at_another_site(
    demo_db: Database,
) -> None:
    grants = await site_contact_grants(demo_db)
    riverside = await customer_of(demo_db, SITE)
    itchen = await site_named(demo_db, "Itchen Bridge Works")
    quayside = await site_named(demo_db, QUAYSIDE)
    contact: Contact = await one(demo_db, Contact, col(Contact.email) == SITE)
    before = await counts(demo_db)

    def request(site: Site, number: str) -> ServiceRequest:
        return ServiceRequest(
            tenant_id=riverside.tenant_id,
            customer_id=riverside.id,
            site_id=site.id,
            contact_id=contact.id,
            number=number,
            description="Another skip, please.",
        )

    with pytest.raises(UnscopedAccess):
        async with demo_db.transaction(Scope.portal(grants)) as session:
            session.add(request(itchen, "PR-9901"))
    # Nor a request for the whole customer, with no site.
    with pytest.raises(UnscopedAccess):
        async with demo_db.transaction(Scope.portal(grants)) as session:
            no_site = request(quayside, "PR-9902")
            no_site.site_id = None
            session.add(no_site)
    assert await counts(demo_db) == before
    assert await ids_of(demo_db, ServiceRequest, col(ServiceRequest.number).like("PR-99%")) == set()

    # At its own site the same write goes through: the refusal is about reach.
    async with demo_db.transaction(Scope.portal(grants)) as session:
        session.add(request(quayside, "PR-9903"))
    assert len(await ids_of(demo_db, ServiceRequest, col(ServiceRequest.number) == "PR-9903")) == 1


# -- 7. @requiresContact, generated from the SDL (E14) ----------------------------------------

# How to reach a field of each object type from the root; a type newly given a
# contact-guarded field must be added here, or the test below fails naming it.
PATHS_TO_TYPES = {"Query": "", "Mutation": "", "Customer": "customers"}


def contact_guarded_fields() -> list[tuple[str, str]]:
    schema = portal_schema()
    return sorted(
        (type_name, field_name)
        for type_name, kind in schema.type_map.items()
        if isinstance(kind, GraphQLObjectType)
        for field_name, field in kind.fields.items()
        if "requiresContact" in field_directives(field)
    )


def contact_guarded_document(type_name: str, field_name: str) -> str:
    schema = portal_schema()
    kind = schema.type_map[type_name]
    assert isinstance(kind, GraphQLObjectType)
    field = kind.fields[field_name]
    passed = ", ".join(
        f"{name}: {dummy_value(argument.type)}"
        for name, argument in field.args.items()
        if isinstance(argument.type, GraphQLNonNull)
    )
    call = f"{field_name}({passed})" if passed else field_name
    named = get_named_type(field.type)
    selection = f"{call} {{ __typename }}" if isinstance(named, GraphQLObjectType) else call
    path = PATHS_TO_TYPES[type_name]
    inner = f"{path} {{ {selection} }}" if path else selection
    return f"{'mutation' if type_name == 'Mutation' else 'query'} {{ {inner} }}"


def dummy_value(kind: Any) -> str:
    named = get_named_type(kind)
    if isinstance(named, GraphQLInputObjectType):
        fields = ", ".join(
            f"{name}: {dummy_value(field.type)}"
            for name, field in named.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        )
        return f"{{{fields}}}"
    return {"Int": "1", "Boolean": "true", "Date": '"2026-01-01"'}.get(named.name, '"x"')


def test_e14_every_contact_guarded_field_has_a_way_in() -> None:
    fields = contact_guarded_fields()
    assert fields, "the SDL prints @requiresContact somewhere"
    assert {type_name for type_name, _ in fields} <= set(PATHS_TO_TYPES), fields


@pytest.mark.parametrize(
    ("type_name", "field_name"),
    contact_guarded_fields(),
    ids=[".".join(field) for field in contact_guarded_fields()],
)
async def test_e14_each_contact_guarded_field_refuses_a_site_contact_and_admits_a_company_one(
    demo_db: Database, demo_client: httpx.AsyncClient, type_name: str, field_name: str
) -> None:
    document = contact_guarded_document(type_name, field_name)
    counted = await counts(demo_db)
    site = await ask(demo_client, await token_for(demo_db, SITE), document)
    assert "CONTACT_FORBIDDEN" in error_codes(site), (document, site)
    assert await counts(demo_db) == counted
    company = await ask(demo_client, await token_for(demo_db, COMPANY), document)
    assert "CONTACT_FORBIDDEN" not in error_codes(company), (document, company)
