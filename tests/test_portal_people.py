"""E11 and E12 over HTTP on the portal schema: a company contact, a site contact and users
with narrowed modules manage their company's contacts and portal users. Every change is the
row staff see, recorded in the staff audit trail as made by the portal account (S2, S3, S10);
a new user is invited by email and chooses their own password (S4, P1); nobody gives more
modules than they have (S5); and both people lists cost a fixed number of statements (H6)."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from graphql import GraphQLInputObjectType, GraphQLSchema, build_schema, print_ast
from sqlmodel import SQLModel, col
from strawberry.relay import from_base64

from app.db.models import (
    AuditEntry,
    Contact,
    ContactKind,
    Customer,
    OutboxEmail,
    PortalAccount,
    PortalMembership,
    Site,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import PORTAL_SDL
from app.settings import Environment, Settings
from tests.support import (
    PASSWORD,
    PORTAL,
    count_statements,
    emailed_token,
    error_codes,
    gid,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
    rows,
    staff_token,
)

T = TypeVar("T", bound=SQLModel)

TEST_SETTINGS = Settings(env=Environment.TEST)
# The portal apps send only the documents of the frontend contract (H2); so do these tests.
OPERATIONS = {
    path.stem: path.read_text() for path in (PORTAL_SDL.parent / "operations").glob("*.graphql")
}

# The demo's people (app/db/demo.py).
COMPANY = "facilities@harbourview.example"  # Hannah, company contact at Harbour View, all modules
SITE = "site.manager@riverside.example"  # Riverside's site contact at Quayside, all modules
NO_USERS = "bursar@greenfield.example"  # Greenfield's company contact: INVOICES and REQUESTS
NARROWED = "owen@oakwoodfestival.example"  # Oakwood: INVOICES, REQUESTS, PROPERTIES, USERS, JOBS
TWO = "ops@maplecourt.example"  # Maple Court's company contact at acme and at northside
RIVERSIDE_COMPANY = "procurement@riverside.example"  # Rita, no portal account in the demo
MANAGER = "manager@acme.example"  # acme staff, MANAGER: customers, inbox and audit trail
HARBOUR, RIVERSIDE, MAPLE = (
    "Harbour View Hotel",
    "Riverside Construction Ltd",
    "Maple Court Apartments",
)
HARBOUR_CONTACTS = ["Hannah Facilities", "Harry Accounts", "Staff Car Park Site Lead"]
CAR_PARK_LEAD = "lead.1@harbour-view.example"  # Harbour's site contact, no portal access
QUAYSIDE_LEAD = "Quayside Development Site Lead"
CLEO = "cleo@harbourview.example"  # someone new at Harbour View

STAFF_CUSTOMER = """query ($id: ID!) {
  node(id: $id) {
    ... on Customer {
      contacts {
        id kind name email phone portalAccess site { name } lastChange { actorKind action }
      }
    }
  }
}"""
STAFF_CONTACT = "query ($id: ID!) { node(id: $id) { id ... on Contact { name portalAccess } } }"
STAFF_INBOX = """{
  serviceRequests(first: 100) { edges { node { number contactName contact { name } } } }
}"""
STAFF_TRAIL = """query ($subjectId: ID) {
  auditTrail(subjectId: $subjectId, first: 100) {
    edges { node { action subjectId actorKind actor { name } before after } }
  }
}"""
CUSTOMERS = "{ customers { name contactKind modules } }"
QUOTES = "{ quotes { edges { node { number } } } }"
INVOICES = "{ invoices { edges { node { number } } } }"
JOBS = "{ jobs { edges { node { number } } } }"
USERS_ROOT = "{ users { edges { node { id } } } }"
CONTACTS_ROOT = "{ contacts { edges { node { id } } } }"
CERTIFICATES = "{ certificates { edges { node { number } } } }"


# -- Helpers ---------------------------------------------------------------------------------


async def one(db: Database, model: type[T], *where: Any) -> T:
    [row] = await rows(db, model, *where)
    return row


async def count(db: Database, model: type[SQLModel], *where: Any) -> int:
    async with db.session(SYSTEM) as session:
        found = await session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
    return int(found or 0)


async def snapshot(db: Database) -> dict[str, int]:
    """How many rows of what a people mutation could write."""
    models: list[type[SQLModel]] = [
        Contact,
        PortalMembership,
        PortalAccount,
        OutboxEmail,
        AuditEntry,
    ]
    return {model.__name__: await count(db, model) for model in models}


async def contact_named(db: Database, name: str) -> Contact:
    return await one(db, Contact, col(Contact.name) == name)


async def site_named(db: Database, name: str) -> Site:
    return await one(db, Site, col(Site.name) == name)


async def customer_named(db: Database, name: str, tenant: str = "acme") -> Customer:
    business = await one(db, Tenant, col(Tenant.slug) == tenant)
    return await one(
        db, Customer, col(Customer.name) == name, col(Customer.tenant_id) == business.id
    )


async def membership_of(db: Database, contact: Contact) -> PortalMembership:
    return await one(db, PortalMembership, col(PortalMembership.contact_id) == contact.id)


async def token_for(db: Database, email: str) -> str:
    account = await one(db, PortalAccount, col(PortalAccount.email) == email)
    return await portal_token(db, TEST_SETTINGS, account)


async def staff(db: Database) -> str:
    user = await one(db, StaffUser, col(StaffUser.email) == MANAGER)
    return await staff_token(db, TEST_SETTINGS, user)


async def send(
    client: httpx.AsyncClient,
    token: str,
    operation: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One operation of the frontend contract, as the portal apps send it."""
    return await gql(client, OPERATIONS[operation], variables, path=PORTAL, token=token)


async def ask(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    return await gql(client, query, variables, path=PORTAL, token=token)


async def office(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = await gql(client, query, variables, token=token)
    assert "errors" not in body, body
    return body


def data(body: dict[str, Any], field: str) -> Any:
    assert "errors" not in body, body
    return body["data"][field]


def nodes(body: dict[str, Any], field: str) -> list[dict[str, Any]]:
    return [edge["node"] for edge in data(body, field)["edges"]]


def refused(body: dict[str, Any], code: str, field: str | None = None) -> None:
    assert error_codes(body) == [code], body
    assert body["data"] is None, body
    if field is not None:
        assert body["errors"][0]["extensions"].get("field") == field, body


async def staff_contacts(
    client: httpx.AsyncClient, token: str, customer: Customer
) -> dict[str, dict[str, Any]]:
    """The customer's contacts as staff see them, by global id."""
    body = await office(client, token, STAFF_CUSTOMER, {"id": gid("Customer", customer.id)})
    return {contact["id"]: contact for contact in body["data"]["node"]["contacts"]}


async def portal_contacts(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    return nodes(await send(client, token, "Contacts", {"first": 100}), "contacts")


async def portal_users(client: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    """The users the viewer manages, by email."""
    listed = nodes(await send(client, token, "PortalUsers", {"first": 100}), "users")
    return {user["email"]: user for user in listed}


async def reaches(client: httpx.AsyncClient, token: str, customer: str) -> bool:
    """Whether this session's next request still sees `customer`."""
    response = await client.post(
        PORTAL,
        json={"query": "{ customers { name } }"},
        headers={"authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        return False
    found = (response.json().get("data") or {}).get("customers") or []
    return customer in [row["name"] for row in found]


async def session_status(client: httpx.AsyncClient, token: str) -> int:
    """The HTTP status of the session's next request: 401 once its sessions ended."""
    response = await client.post(
        PORTAL,
        json={"query": OPERATIONS["Viewer"]},
        headers={"authorization": f"Bearer {token}"},
    )
    return response.status_code


async def accept(
    client: httpx.AsyncClient, token: str, *, username: str, name: str = "Cleo Cleaner"
) -> dict[str, Any]:
    """The invitee accepts the emailed link through the existing acceptInvitation."""
    invitation = {
        "tenant": "acme",
        "token": token,
        "name": name,
        "username": username,
        "password": PASSWORD,
        "client": "MOBILE",
    }
    return await gql(client, OPERATIONS["AcceptInvitation"], {"input": invitation}, path=PORTAL)


async def accepted(db: Database, client: httpx.AsyncClient, email: str, username: str) -> str:
    """Accepts the newest invitation to `email`; the new user's access token."""
    body = await accept(client, await emailed_token(db, email), username=username)
    return str(data(body, "acceptInvitation")["tokens"]["accessToken"])


async def add_user(
    client: httpx.AsyncClient,
    token: str,
    *,
    modules: list[str],
    email: str = CLEO,
    name: str = "Cleo Cleaner",
    **more: Any,
) -> dict[str, Any]:
    user = {"name": name, "email": email, "modules": modules, **more}
    return await send(client, token, "AddPortalUser", {"input": user})


async def give_rita_an_account(db: Database) -> str:
    """Riverside's company contact, with portal access, signed in: the whole customer."""
    async with db.transaction(SYSTEM) as session:
        rita = (
            await session.scalars(sa.select(Contact).where(col(Contact.email) == RIVERSIDE_COMPANY))
        ).one()
        rita.portal_access = True
        account = PortalAccount(email=RIVERSIDE_COMPANY, username="rita", name=rita.name)
        session.add(account)
        await session.flush()
        session.add(
            PortalMembership(tenant_id=rita.tenant_id, account_id=account.id, contact_id=rita.id)
        )
    return await token_for(db, RIVERSIDE_COMPANY)


async def set_own_modules(db: Database, email: str, modules: list[str] | None) -> None:
    """Narrows the signed-in user's own modules (the per-user layer), as staff could."""
    account = await one(db, PortalAccount, col(PortalAccount.email) == email)
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(PortalMembership)
            .where(col(PortalMembership.account_id) == account.id)
            .values(module_override=modules)
        )


def portal_schema() -> GraphQLSchema:
    return build_schema(PORTAL_SDL.read_text())


# -- E11: contacts ---------------------------------------------------------------------------


async def test_e11_a_company_contact_adds_company_and_site_contacts_staff_see_on_the_same_row(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    harbour = await customer_named(demo_db, HARBOUR)
    car_park = await site_named(demo_db, "Staff Car Park")

    body = await send(
        demo_client,
        hannah,
        "AddContact",
        {
            "input": {
                "name": "Cara Cleaner",
                "email": "cara@harbourview.example",
                "phone": "+44 23 9200 1002",
            }
        },
    )
    company = data(body, "addContact")
    assert {key: value for key, value in company.items() if key != "id"} == {
        "kind": "COMPANY",
        "name": "Cara Cleaner",
        "email": "cara@harbourview.example",
        "phone": "+44 23 9200 1002",
        "portalAccess": False,
        "site": None,
    }
    body = await send(
        demo_client,
        hannah,
        "AddContact",
        {"input": {"siteId": gid("Site", car_park.id), "name": "Pat Parking"}},
    )
    at_site = data(body, "addContact")
    assert at_site["kind"] == "SITE"
    assert at_site["site"] == {"id": gid("Site", car_park.id), "name": "Staff Car Park"}

    # The very rows staff have, under the ids the portal answered with.
    seen = await staff_contacts(demo_client, await staff(demo_db), harbour)
    assert {key: seen[company["id"]][key] for key in ("kind", "name", "email", "phone")} == {
        "kind": "COMPANY",
        "name": "Cara Cleaner",
        "email": "cara@harbourview.example",
        "phone": "+44 23 9200 1002",
    }
    assert seen[company["id"]]["lastChange"]["actorKind"] == "PORTAL"
    assert (seen[at_site["id"]]["kind"], seen[at_site["id"]]["site"]) == (
        "SITE",
        {"name": "Staff Car Park"},
    )
    stored = await one(demo_db, Contact, col(Contact.name) == "Pat Parking")
    assert (stored.customer_id, stored.site_id, stored.kind) == (
        harbour.id,
        car_park.id,
        ContactKind.SITE,
    )
    # The portal lists them with the rest of the company's contacts, by name.
    listed = [row["name"] for row in await portal_contacts(demo_client, hannah)]
    assert listed == sorted([*HARBOUR_CONTACTS, "Cara Cleaner", "Pat Parking"])


async def test_e11_a_contact_added_with_portal_access_is_invited_and_can_accept(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    email = "cara@harbourview.example"
    body = await send(
        demo_client,
        hannah,
        "AddContact",
        {"input": {"name": "Cara Cleaner", "email": email, "portalAccess": True}},
    )
    added = data(body, "addContact")
    assert (added["kind"], added["portalAccess"]) == ("COMPANY", True)
    [invitation] = await rows(demo_db, OutboxEmail, col(OutboxEmail.to_address) == email)
    assert invitation.kind == "invitation"
    assert (await portal_users(demo_client, hannah))[email]["status"] == "INVITED"
    token = await accepted(demo_db, demo_client, email, "cara")
    assert await reaches(demo_client, token, HARBOUR)
    assert (await portal_users(demo_client, hannah))[email]["status"] == "ACTIVE"


async def test_e11_a_user_managing_two_companies_says_which_one_a_contact_is_for(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, TWO)
    before = await snapshot(demo_db)
    body = await send(demo_client, token, "AddContact", {"input": {"name": "Nell North"}})
    assert body["data"] is None and len(body["errors"]) == 1, body
    assert body["errors"][0]["extensions"].get("field") == "customerId", body
    assert await snapshot(demo_db) == before

    maple_north = await customer_named(demo_db, MAPLE, tenant="northside")
    body = await send(
        demo_client,
        token,
        "AddContact",
        {"input": {"name": "Nell North", "customerId": gid("Customer", maple_north.id)}},
    )
    assert data(body, "addContact")["kind"] == "COMPANY"
    stored = await contact_named(demo_db, "Nell North")
    assert (stored.tenant_id, stored.customer_id) == (maple_north.tenant_id, maple_north.id)


async def test_e11_a_site_contact_adds_a_contact_at_its_own_site(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    quayside = await site_named(demo_db, "Quayside Development")
    body = await send(
        demo_client,
        token,
        "AddContact",
        {"input": {"siteId": gid("Site", quayside.id), "name": "Sam Scaffold"}},
    )
    added = data(body, "addContact")
    assert (added["kind"], added["site"]["name"]) == ("SITE", "Quayside Development")
    listed = [row["name"] for row in await portal_contacts(demo_client, token)]
    assert listed == [QUAYSIDE_LEAD, "Sam Scaffold"]
    riverside = await customer_named(demo_db, RIVERSIDE)
    seen = await staff_contacts(demo_client, await staff(demo_db), riverside)
    assert seen[added["id"]]["site"] == {"name": "Quayside Development"}


async def test_e11_site_contact_cannot_add_a_company_contact_or_one_at_another_site(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    riverside = await customer_named(demo_db, RIVERSIDE)
    before = await snapshot(demo_db)

    company = await send(demo_client, token, "AddContact", {"input": {"name": "Nina Office"}})
    refused(company, "CONTACT_FORBIDDEN")
    named = await send(
        demo_client,
        token,
        "AddContact",
        {"input": {"customerId": gid("Customer", riverside.id), "name": "Nina Office"}},
    )
    refused(named, "CONTACT_FORBIDDEN")
    elsewhere = [
        gid("Site", (await site_named(demo_db, name)).id)
        for name in ("Itchen Bridge Works", "Riverside Head Office", "Staff Car Park")
    ]
    for site in [*elsewhere, gid("Site", uuid.uuid4())]:
        body = await send(
            demo_client, token, "AddContact", {"input": {"siteId": site, "name": "Nina Office"}}
        )
        refused(body, "NOT_FOUND")
    assert await snapshot(demo_db) == before


async def test_e11_a_site_contact_manages_only_the_contacts_at_its_own_site(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    assert [row["name"] for row in await portal_contacts(demo_client, token)] == [QUAYSIDE_LEAD]
    rita = await one(demo_db, Contact, col(Contact.email) == RIVERSIDE_COMPANY)
    itchen_lead = await contact_named(demo_db, "Itchen Bridge Works Site Lead")
    before = await snapshot(demo_db)
    for target in (rita, itchen_lead):
        target_id = gid("Contact", target.id)
        changed = await send(
            demo_client, token, "UpdateContact", {"id": target_id, "input": {"name": "Taken Over"}}
        )
        refused(changed, "NOT_FOUND")
        refused(await send(demo_client, token, "DeleteContact", {"id": target_id}), "NOT_FOUND")
        switched = await send(
            demo_client, token, "SetContactPortalAccess", {"id": target_id, "enabled": True}
        )
        refused(switched, "NOT_FOUND")
        stored = await one(demo_db, Contact, col(Contact.id) == target.id)
        assert (stored.name, stored.portal_access) == (target.name, False)
    assert await snapshot(demo_db) == before

    # Nor the portal users elsewhere at its customer: Rita, once she has an account.
    rita_token = await give_rita_an_account(demo_db)
    rita_user = {"id": gid("PortalUser", (await membership_of(demo_db, rita)).id)}
    before = await snapshot(demo_db)
    narrowed = await send(
        demo_client, token, "SetPortalUserModules", {**rita_user, "modules": ["JOBS"]}
    )
    refused(narrowed, "NOT_FOUND")
    refused(await send(demo_client, token, "RemovePortalUser", rita_user), "NOT_FOUND")
    refused(await send(demo_client, token, "ResendPortalUserInvitation", rita_user), "NOT_FOUND")
    assert await snapshot(demo_db) == before
    assert (await membership_of(demo_db, rita)).module_override is None
    assert await reaches(demo_client, rita_token, RIVERSIDE)


async def test_e11_editing_changes_only_the_fields_given_and_null_clears_as_for_staff(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    harry = await contact_named(demo_db, "Harry Accounts")
    harry_id = gid("Contact", harry.id)

    async def update(changes: dict[str, Any]) -> dict[str, Any]:
        body = await send(demo_client, hannah, "UpdateContact", {"id": harry_id, "input": changes})
        return body

    def shown(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
        contact = data(body, "updateContact")
        assert contact["id"] == harry_id
        return contact["name"], contact["email"], contact["phone"]

    assert shown(await update({"email": "harry@harbourview.example"})) == (
        "Harry Accounts",
        "harry@harbourview.example",
        "+44 23 9200 1001",
    )
    assert shown(await update({"phone": None})) == (
        "Harry Accounts",
        "harry@harbourview.example",
        None,
    )
    assert shown(await update({"email": ""})) == ("Harry Accounts", None, None)
    assert shown(await update({"name": "Harold Accounts", "phone": "023 9200 1009"})) == (
        "Harold Accounts",
        None,
        "023 9200 1009",
    )
    for blank in (None, "", "   "):
        refused(await update({"name": blank}), "INVALID_INPUT", "name")

    seen = await staff_contacts(
        demo_client, await staff(demo_db), await customer_named(demo_db, HARBOUR)
    )
    assert {key: seen[harry_id][key] for key in ("name", "email", "phone", "lastChange")} == {
        "name": "Harold Accounts",
        "email": None,
        "phone": "023 9200 1009",
        "lastChange": {"actorKind": "PORTAL", "action": "contact.updated"},
    }


@pytest.mark.parametrize(
    ("form", "code", "field"),
    [
        ({"name": "Ann", "email": "not-an-address"}, "INVALID_INPUT", "email"),
        ({"name": "Ann", "email": "ann@customer"}, "INVALID_INPUT", "email"),
        ({"name": "Ann", "phone": "call me"}, "INVALID_INPUT", "phone"),
        ({"name": "Ann", "phone": "12345"}, "INVALID_INPUT", "phone"),
        ({"name": "   "}, "INVALID_INPUT", "name"),
        ({"name": ""}, "INVALID_INPUT", "name"),
        ({"name": "Ann", "portalAccess": True}, "EMAIL_REQUIRED", "email"),
        ({"name": "Ann", "email": "  ", "portalAccess": True}, "EMAIL_REQUIRED", "email"),
    ],
)
async def test_e11_bad_input_to_add_a_contact_is_a_typed_error_and_writes_nothing(
    demo_db: Database,
    demo_client: httpx.AsyncClient,
    form: dict[str, Any],
    code: str,
    field: str,
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    before = await snapshot(demo_db)
    body = await send(demo_client, hannah, "AddContact", {"input": form})
    refused(body, code, field)
    assert await snapshot(demo_db) == before


async def test_e11_bad_changes_to_a_contact_are_typed_errors_and_change_nothing(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    harry = await contact_named(demo_db, "Harry Accounts")
    before = await snapshot(demo_db)
    for changes, field in [
        ({"email": "harry at harbourview"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"name": "  ", "phone": "023 9200 1009"}, "name"),
    ]:
        body = await send(
            demo_client,
            hannah,
            "UpdateContact",
            {"id": gid("Contact", harry.id), "input": changes},
        )
        refused(body, "INVALID_INPUT", field)
    stored = await one(demo_db, Contact, col(Contact.id) == harry.id)
    assert (stored.name, stored.email, stored.phone) == (harry.name, harry.email, harry.phone)
    assert await snapshot(demo_db) == before


async def test_e11_switching_access_on_emails_an_invitation_that_can_be_accepted(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    lead = await contact_named(demo_db, "Staff Car Park Site Lead")
    lead_id = gid("Contact", lead.id)
    assert await rows(demo_db, OutboxEmail, col(OutboxEmail.to_address) == CAR_PARK_LEAD) == []

    body = await send(
        demo_client, hannah, "SetContactPortalAccess", {"id": lead_id, "enabled": True}
    )
    assert body == {"data": {"setContactPortalAccess": {"id": lead_id, "portalAccess": True}}}
    [email] = await rows(demo_db, OutboxEmail, col(OutboxEmail.to_address) == CAR_PARK_LEAD)
    assert email.kind == "invitation"
    invited = (await portal_users(demo_client, hannah))[CAR_PARK_LEAD]
    assert invited["status"] == "INVITED"
    assert invited["contact"]["id"] == lead_id and invited["contact"]["kind"] == "SITE"
    seen = await staff_contacts(
        demo_client, await staff(demo_db), await customer_named(demo_db, HARBOUR)
    )
    assert seen[lead_id]["portalAccess"] is True

    token = await accepted(demo_db, demo_client, CAR_PARK_LEAD, "carpark")
    body = await ask(demo_client, token, "{ customers { name contactKind } }")
    assert data(body, "customers") == [{"name": HARBOUR, "contactKind": "SITE"}]
    active = (await portal_users(demo_client, hannah))[CAR_PARK_LEAD]
    assert (active["status"], active["username"]) == ("ACTIVE", "carpark")


async def test_e11_switching_access_on_without_an_email_is_email_required_and_changes_nothing(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    harry = await contact_named(demo_db, "Harry Accounts")
    before = await snapshot(demo_db)
    body = await send(
        demo_client,
        hannah,
        "SetContactPortalAccess",
        {"id": gid("Contact", harry.id), "enabled": True},
    )
    refused(body, "EMAIL_REQUIRED", "email")
    stored = await one(demo_db, Contact, col(Contact.id) == harry.id)
    assert stored.portal_access is False
    assert await snapshot(demo_db) == before


async def test_e11_clearing_the_email_of_a_contact_with_access_is_email_required(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    lead = await contact_named(demo_db, "Staff Car Park Site Lead")
    lead_id = gid("Contact", lead.id)
    body = await send(
        demo_client, hannah, "SetContactPortalAccess", {"id": lead_id, "enabled": True}
    )
    assert data(body, "setContactPortalAccess")["portalAccess"] is True
    for cleared in (None, ""):
        body = await send(
            demo_client, hannah, "UpdateContact", {"id": lead_id, "input": {"email": cleared}}
        )
        refused(body, "EMAIL_REQUIRED", "email")
    stored = await one(demo_db, Contact, col(Contact.id) == lead.id)
    assert (stored.email, stored.portal_access) == (CAR_PARK_LEAD, True)


async def test_e11_switching_access_off_stops_the_users_next_request_reaching_the_customer(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    lead = await contact_named(demo_db, "Staff Car Park Site Lead")
    lead_id = gid("Contact", lead.id)
    on = await send(demo_client, hannah, "SetContactPortalAccess", {"id": lead_id, "enabled": True})
    assert data(on, "setContactPortalAccess")["portalAccess"] is True
    token = await accepted(demo_db, demo_client, CAR_PARK_LEAD, "carpark")
    assert await reaches(demo_client, token, HARBOUR)

    off = await send(
        demo_client, hannah, "SetContactPortalAccess", {"id": lead_id, "enabled": False}
    )
    assert off == {"data": {"setContactPortalAccess": {"id": lead_id, "portalAccess": False}}}
    assert not await reaches(demo_client, token, HARBOUR)
    assert CAR_PARK_LEAD not in await portal_users(demo_client, hannah)
    seen = await staff_contacts(
        demo_client, await staff(demo_db), await customer_named(demo_db, HARBOUR)
    )
    assert seen[lead_id]["portalAccess"] is False


async def test_e11_switching_access_off_before_acceptance_voids_the_invitation(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    lead_id = gid("Contact", (await contact_named(demo_db, "Staff Car Park Site Lead")).id)
    for enabled in (True, False):
        body = await send(
            demo_client, hannah, "SetContactPortalAccess", {"id": lead_id, "enabled": enabled}
        )
        assert data(body, "setContactPortalAccess")["portalAccess"] is enabled
    link = await emailed_token(demo_db, CAR_PARK_LEAD)
    assert error_codes(await accept(demo_client, link, username="carpark")) == ["INVALID_TOKEN"]
    assert await rows(demo_db, PortalAccount, col(PortalAccount.email) == CAR_PARK_LEAD) == []


async def test_e11_a_deleted_contact_is_gone_for_staff_and_from_the_portal_list(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    harry = await contact_named(demo_db, "Harry Accounts")
    harry_id = gid("Contact", harry.id)
    body = await send(demo_client, hannah, "DeleteContact", {"id": harry_id})
    assert body == {"data": {"deleteContact": harry_id}}
    assert await rows(demo_db, Contact, col(Contact.id) == harry.id) == []
    office_token = await staff(demo_db)
    harbour = await customer_named(demo_db, HARBOUR)
    assert harry_id not in await staff_contacts(demo_client, office_token, harbour)
    assert await office(demo_client, office_token, STAFF_CONTACT, {"id": harry_id}) == {
        "data": {"node": None}
    }
    listed = [row["name"] for row in await portal_contacts(demo_client, hannah)]
    assert listed == ["Hannah Facilities", "Staff Car Park Site Lead"]
    again = await send(demo_client, hannah, "DeleteContact", {"id": harry_id})
    refused(again, "NOT_FOUND")


async def test_e11_deleting_a_contact_removes_the_row_ends_its_sessions_and_keeps_its_requests(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    rita = await give_rita_an_account(demo_db)
    quayside_token = await token_for(demo_db, SITE)
    quayside = await site_named(demo_db, "Quayside Development")
    work = {"kind": "JOB", "siteId": gid("Site", quayside.id), "description": "A second cabin."}
    sent = data(
        await send(demo_client, quayside_token, "RequestWork", {"input": work}), "requestWork"
    )
    lead = await contact_named(demo_db, QUAYSIDE_LEAD)
    lead_id = gid("Contact", lead.id)
    office_token = await staff(demo_db)
    riverside = await customer_named(demo_db, RIVERSIDE)
    assert lead_id in await staff_contacts(demo_client, office_token, riverside)

    body = await send(demo_client, rita, "DeleteContact", {"id": lead_id})
    assert body == {"data": {"deleteContact": lead_id}}

    assert await rows(demo_db, Contact, col(Contact.id) == lead.id) == []
    assert lead_id not in await staff_contacts(demo_client, office_token, riverside)
    assert await office(demo_client, office_token, STAFF_CONTACT, {"id": lead_id}) == {
        "data": {"node": None}
    }
    assert QUAYSIDE_LEAD not in [row["name"] for row in await portal_contacts(demo_client, rita)]
    # The quayside account had access nowhere else: its sessions are over.
    assert await session_status(demo_client, quayside_token) == 401
    assert not await reaches(demo_client, quayside_token, RIVERSIDE)
    inbox = nodes(await office(demo_client, office_token, STAFF_INBOX), "serviceRequests")
    sent_by_lead = {
        row["number"]: (row["contactName"], row["contact"])
        for row in inbox
        if row["number"] in {"PR-7001", "PR-7002", sent["number"]}
    }
    assert sent_by_lead == {
        number: (QUAYSIDE_LEAD, None) for number in ("PR-7001", "PR-7002", sent["number"])
    }


async def test_e11_deleting_a_contact_whose_account_has_access_elsewhere_keeps_that_access(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    harbour = await customer_named(demo_db, HARBOUR)
    morgan = await one(demo_db, PortalAccount, col(PortalAccount.email) == TWO)
    async with demo_db.transaction(SYSTEM) as session:
        also = Contact(
            tenant_id=harbour.tenant_id,
            customer_id=harbour.id,
            kind=ContactKind.COMPANY,
            name="Morgan Also",
            email=TWO,
            portal_access=True,
        )
        session.add(also)
        await session.flush()
        session.add(
            PortalMembership(tenant_id=also.tenant_id, account_id=morgan.id, contact_id=also.id)
        )
    token = await token_for(demo_db, TWO)
    assert await reaches(demo_client, token, HARBOUR)

    body = await send(demo_client, hannah, "DeleteContact", {"id": gid("Contact", also.id)})
    assert body == {"data": {"deleteContact": gid("Contact", also.id)}}
    assert not await reaches(demo_client, token, HARBOUR)
    assert await reaches(demo_client, token, MAPLE)
    assert await session_status(demo_client, token) == 200


async def test_e11_another_customers_or_businesses_contact_ids_are_not_found_and_change_nothing(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    northside = await one(demo_db, Tenant, col(Tenant.slug) == "northside")
    rita = await one(demo_db, Contact, col(Contact.email) == RIVERSIDE_COMPANY)
    morgan_there = await one(
        demo_db, Contact, col(Contact.email) == TWO, col(Contact.tenant_id) == northside.id
    )
    riverside = await customer_named(demo_db, RIVERSIDE)
    itchen = await site_named(demo_db, "Itchen Bridge Works")
    morgan_token = await token_for(demo_db, TWO)
    before = await snapshot(demo_db)

    targets = [gid("Contact", rita.id), gid("Contact", morgan_there.id)]
    for target in [*targets, gid("Contact", uuid.uuid4())]:
        changed = await send(
            demo_client,
            hannah,
            "UpdateContact",
            {"id": target, "input": {"name": "Taken Over", "email": "x@evil.example"}},
        )
        refused(changed, "NOT_FOUND")
        for enabled in (True, False):
            switched = await send(
                demo_client, hannah, "SetContactPortalAccess", {"id": target, "enabled": enabled}
            )
            refused(switched, "NOT_FOUND")
        refused(await send(demo_client, hannah, "DeleteContact", {"id": target}), "NOT_FOUND")
    for elsewhere in (
        {"customerId": gid("Customer", riverside.id)},
        {"siteId": gid("Site", itchen.id)},
    ):
        body = await send(
            demo_client, hannah, "AddContact", {"input": {"name": "Planted", **elsewhere}}
        )
        refused(body, "NOT_FOUND")

    assert await snapshot(demo_db) == before
    for row in (rita, morgan_there):
        stored = await one(demo_db, Contact, col(Contact.id) == row.id)
        assert (stored.name, stored.email, stored.portal_access) == (
            row.name,
            row.email,
            row.portal_access,
        )
    assert await reaches(demo_client, morgan_token, MAPLE)


async def test_e11_nobody_deletes_themselves_or_switches_their_own_access(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    before = await snapshot(demo_db)
    for email, customer in ((COMPANY, HARBOUR), (SITE, RIVERSIDE)):
        token = await token_for(demo_db, email)
        me = await one(demo_db, Contact, col(Contact.email) == email)
        my_id = gid("Contact", me.id)
        refused(
            await send(demo_client, token, "DeleteContact", {"id": my_id}),
            "SELF_CHANGE_FORBIDDEN",
        )
        refused(
            await send(
                demo_client, token, "SetContactPortalAccess", {"id": my_id, "enabled": False}
            ),
            "SELF_CHANGE_FORBIDDEN",
        )
        stored = await one(demo_db, Contact, col(Contact.id) == me.id)
        assert stored.portal_access is True
        assert await reaches(demo_client, token, customer)
    assert await snapshot(demo_db) == before


async def people_fields(db: Database) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every people field, each with real ids of Greenfield's (the narrowed user's own)."""
    grace = await one(db, Contact, col(Contact.email) == NO_USERS)
    lead = await contact_named(db, "Sports Field Site Lead")
    user = {"id": gid("PortalUser", (await membership_of(db, grace)).id)}
    contact = {"id": gid("Contact", lead.id)}
    return {
        "contacts": (CONTACTS_ROOT, {}),
        "users": (USERS_ROOT, {}),
        "addContact": (OPERATIONS["AddContact"], {"input": {"name": "Ann"}}),
        "updateContact": (OPERATIONS["UpdateContact"], {**contact, "input": {"name": "Ann"}}),
        "deleteContact": (OPERATIONS["DeleteContact"], contact),
        "setContactPortalAccess": (
            OPERATIONS["SetContactPortalAccess"],
            {**contact, "enabled": True},
        ),
        "addPortalUser": (
            OPERATIONS["AddPortalUser"],
            {"input": {"name": "Ann", "email": "ann@greenfield.example", "modules": ["INVOICES"]}},
        ),
        "setPortalUserModules": (
            OPERATIONS["SetPortalUserModules"],
            {**user, "modules": ["INVOICES"]},
        ),
        "removePortalUser": (OPERATIONS["RemovePortalUser"], user),
        "resendPortalUserInvitation": (OPERATIONS["ResendPortalUserInvitation"], user),
    }


async def test_e11_without_the_users_module_every_people_field_is_module_forbidden(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, NO_USERS)
    before = await snapshot(demo_db)
    for name, (document, variables) in (await people_fields(demo_db)).items():
        body = await ask(demo_client, token, document, variables)
        assert error_codes(body) == ["MODULE_FORBIDDEN"], (name, body)
        assert body["data"] is None, (name, body)
    assert await snapshot(demo_db) == before
    lead = await contact_named(demo_db, "Sports Field Site Lead")
    stored = await one(demo_db, Contact, col(Contact.id) == lead.id)
    assert (stored.name, stored.portal_access) == (lead.name, False)


async def test_e11_a_user_whose_own_modules_lose_users_is_refused_on_the_next_request(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    assert len(await portal_contacts(demo_client, hannah)) == len(HARBOUR_CONTACTS)
    await set_own_modules(demo_db, COMPANY, ["QUOTES", "JOBS", "INVOICES"])
    before = await snapshot(demo_db)
    refused(await send(demo_client, hannah, "Contacts", {"first": 10}), "MODULE_FORBIDDEN")
    added = await send(demo_client, hannah, "AddContact", {"input": {"name": "Ann"}})
    refused(added, "MODULE_FORBIDDEN")
    refused(await add_user(demo_client, hannah, modules=["QUOTES"]), "MODULE_FORBIDDEN")
    assert await snapshot(demo_db) == before


async def trail_of(db: Database, client: httpx.AsyncClient, subject: str) -> list[dict[str, Any]]:
    """The staff audit trail of one record, newest first; each entry by the portal user."""
    body = await office(client, await staff(db), STAFF_TRAIL, {"subjectId": subject})
    trail = nodes(body, "auditTrail")
    assert all(entry["subjectId"] == subject for entry in trail), trail
    # The trail names the portal user behind each change (S11).
    assert all(entry["actorKind"] == "PORTAL" for entry in trail), trail
    assert all(entry["actor"] == {"name": "Hannah Facilities"} for entry in trail), trail
    return trail


async def test_e11_every_change_is_in_the_staff_audit_trail_as_made_by_the_portal_account(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    account = await one(demo_db, PortalAccount, col(PortalAccount.email) == COMPANY)
    body = await send(demo_client, hannah, "AddContact", {"input": {"name": "Cara Cleaner"}})
    cara_id = data(body, "addContact")["id"]
    lead_id = gid("Contact", (await contact_named(demo_db, "Staff Car Park Site Lead")).id)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("UpdateContact", {"id": cara_id, "input": {"phone": "023 9200 1002"}}),
        ("DeleteContact", {"id": cara_id}),
        ("SetContactPortalAccess", {"id": lead_id, "enabled": True}),
        ("SetContactPortalAccess", {"id": lead_id, "enabled": False}),
    ]
    for operation, variables in steps:
        assert "errors" not in await send(demo_client, hannah, operation, variables)

    # Cara: added, changed, deleted; one entry at least for each.
    cara_trail = await trail_of(demo_db, demo_client, cara_id)
    assert len(cara_trail) >= 3, cara_trail
    actions = [entry["action"] for entry in cara_trail]
    # The same action, before and after as when staff change a contact.
    updated = cara_trail[actions.index("contact.updated")]
    assert (updated["before"], updated["after"]) == ({"phone": None}, {"phone": "023 9200 1002"})
    # The lead's access on, then off: as staff's switch records it, newest first.
    lead_trail = await trail_of(demo_db, demo_client, lead_id)
    assert [(e["action"], e["before"], e["after"]) for e in lead_trail] == [
        ("portal_access.disabled", {"portal_access": True}, {"portal_access": False}),
        ("portal_access.enabled", {"portal_access": False}, {"portal_access": True}),
    ]
    subjects = [uuid.UUID(from_base64(subject)[1]) for subject in (cara_id, lead_id)]
    stored = await rows(demo_db, AuditEntry, col(AuditEntry.subject_id).in_(subjects))
    assert len(stored) == len(cara_trail) + len(lead_trail)
    assert {(e.actor_account_id, e.actor_staff_id) for e in stored} == {(account.id, None)}


# -- E12: portal users -----------------------------------------------------------------------


async def test_e12_an_added_user_is_invited_by_email_and_listed_as_invited(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    harbour = await customer_named(demo_db, HARBOUR)
    body = await add_user(demo_client, hannah, modules=["QUOTES", "JOBS"], username="cleo")
    added = data(body, "addPortalUser")
    assert from_base64(added["id"])[0] == "PortalUser"
    assert {key: value for key, value in added.items() if key != "moduleOverride"} == {
        "id": added["id"],
        "name": "Cleo Cleaner",
        "email": CLEO,
        "username": "cleo",
        "status": "INVITED",
    }
    assert sorted(added["moduleOverride"]) == ["JOBS", "QUOTES"]

    [email] = await rows(demo_db, OutboxEmail, col(OutboxEmail.to_address) == CLEO)
    assert email.kind == "invitation"
    assert "token=" in email.text_body
    # Nobody has chosen a password for them: there is no account until they accept.
    assert await rows(demo_db, PortalAccount, col(PortalAccount.email) == CLEO) == []
    contact = await one(demo_db, Contact, col(Contact.email) == CLEO)
    assert (contact.customer_id, contact.kind, contact.portal_access) == (
        harbour.id,
        ContactKind.COMPANY,
        True,
    )
    listed = (await portal_users(demo_client, hannah))[CLEO]
    assert (listed["id"], listed["status"], listed["username"]) == (added["id"], "INVITED", "cleo")
    assert listed["contact"]["id"] == gid("Contact", contact.id)
    seen = await staff_contacts(demo_client, await staff(demo_db), harbour)
    assert seen[gid("Contact", contact.id)]["portalAccess"] is True
    assert seen[gid("Contact", contact.id)]["lastChange"]["actorKind"] == "PORTAL"


async def test_e12_added_user_has_exactly_the_modules_given_after_accepting(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    body = await add_user(demo_client, hannah, modules=["QUOTES"], username="cleo")
    added = data(body, "addPortalUser")
    assert (added["status"], added["username"]) == ("INVITED", "cleo")
    # The invitee chooses their own username; the proposed one was only a suggestion.
    token = await accepted(demo_db, demo_client, CLEO, "cleo.c")

    listed = (await portal_users(demo_client, hannah))[CLEO]
    assert (listed["id"], listed["status"], listed["username"]) == (
        added["id"],
        "ACTIVE",
        "cleo.c",
    )
    body = await ask(demo_client, token, CUSTOMERS)
    assert data(body, "customers") == [
        {"name": HARBOUR, "contactKind": "COMPANY", "modules": ["QUOTES"]}
    ]
    assert [row["number"] for row in nodes(await ask(demo_client, token, QUOTES), "quotes")] == [
        "Q-4002"
    ]
    for document in (INVOICES, JOBS, CERTIFICATES, USERS_ROOT, CONTACTS_ROOT):
        refused(await ask(demo_client, token, document), "MODULE_FORBIDDEN")


async def test_e12_a_site_contact_adds_users_at_its_own_site_only(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    token = await token_for(demo_db, SITE)
    quayside = await site_named(demo_db, "Quayside Development")
    itchen = await site_named(demo_db, "Itchen Bridge Works")
    before = await snapshot(demo_db)
    email = "sid@riverside.example"
    refused(await add_user(demo_client, token, modules=["JOBS"], email=email), "CONTACT_FORBIDDEN")
    elsewhere = await add_user(
        demo_client, token, modules=["JOBS"], email=email, siteId=gid("Site", itchen.id)
    )
    refused(elsewhere, "NOT_FOUND")
    assert await snapshot(demo_db) == before

    body = await add_user(
        demo_client, token, modules=["JOBS"], email=email, siteId=gid("Site", quayside.id)
    )
    assert data(body, "addPortalUser")["status"] == "INVITED"
    contact = await one(demo_db, Contact, col(Contact.email) == email)
    assert (contact.kind, contact.site_id) == (ContactKind.SITE, quayside.id)
    user_token = await accepted(demo_db, demo_client, email, "sid")
    body = await ask(demo_client, user_token, CUSTOMERS)
    assert data(body, "customers") == [
        {"name": RIVERSIDE, "contactKind": "SITE", "modules": ["JOBS"]}
    ]
    # Riverside's jobs are J-3003 at Quayside and J-3004 at Itchen Bridge.
    assert [row["number"] for row in nodes(await ask(demo_client, user_token, JOBS), "jobs")] == [
        "J-3003"
    ]


@pytest.mark.parametrize(
    "modules",
    [["QUOTES"], ["JOBS", "CERTIFICATES"], ["DIARIES", "INVOICES"], ["USERS", "QUOTES", "JOBS"]],
)
async def test_e12_modules_wider_than_the_adders_own_are_refused_and_nothing_is_written(
    demo_db: Database, demo_client: httpx.AsyncClient, modules: list[str]
) -> None:
    owen = await token_for(demo_db, NARROWED)
    email = "una@oakwoodfestival.example"
    before = await snapshot(demo_db)
    body = await add_user(demo_client, owen, modules=modules, email=email)
    refused(body, "MODULES_TOO_WIDE", "modules")
    assert await snapshot(demo_db) == before


async def test_e12_modules_within_the_adders_own_are_given(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    owen = await token_for(demo_db, NARROWED)
    email = "una@oakwoodfestival.example"
    body = await add_user(demo_client, owen, modules=["JOBS", "INVOICES"], email=email)
    added = data(body, "addPortalUser")
    assert (added["status"], sorted(added["moduleOverride"])) == ("INVITED", ["INVOICES", "JOBS"])
    token = await accepted(demo_db, demo_client, email, "una")
    [customer] = data(await ask(demo_client, token, CUSTOMERS), "customers")
    assert sorted(customer["modules"]) == ["INVOICES", "JOBS"]
    refused(
        await ask(demo_client, token, "{ requests { edges { node { id } } } }"), "MODULE_FORBIDDEN"
    )


async def test_e12_a_taken_username_is_refused_and_nothing_is_written(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    before = await snapshot(demo_db)
    # Hannah's own username, then that of an account at another customer she cannot see.
    for taken in ("harbourview", "quayside"):
        body = await add_user(demo_client, hannah, modules=["QUOTES"], username=taken)
        refused(body, "USERNAME_TAKEN", "username")
    assert await snapshot(demo_db) == before
    assert await rows(demo_db, Contact, col(Contact.email) == CLEO) == []


async def test_e12_someone_with_access_at_this_customer_already_is_already_a_user(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    assert "errors" not in await add_user(demo_client, hannah, modules=["QUOTES"])
    before = await snapshot(demo_db)
    for email in (COMPANY, CLEO):
        body = await add_user(demo_client, hannah, modules=["QUOTES"], email=email)
        refused(body, "ALREADY_A_USER", "email")
    assert await snapshot(demo_db) == before
    # Access at another customer is no bar: one account may speak for several.
    body = await add_user(demo_client, hannah, modules=["QUOTES"], email=SITE, name="Quinn")
    assert data(body, "addPortalUser")["status"] == "INVITED"


async def test_e12_a_site_contact_adding_someone_with_access_at_its_customer_is_already_a_user(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    """Rita speaks for all of Riverside; the Quayside site contact cannot see her, yet she
    already has portal access at this customer."""
    await give_rita_an_account(demo_db)
    token = await token_for(demo_db, SITE)
    quayside = gid("Site", (await site_named(demo_db, "Quayside Development")).id)
    before = await snapshot(demo_db)
    for email in (SITE, RIVERSIDE_COMPANY):
        body = await add_user(demo_client, token, modules=["JOBS"], email=email, siteId=quayside)
        refused(body, "ALREADY_A_USER", "email")
    assert await snapshot(demo_db) == before


async def test_e12_changing_a_users_modules_takes_effect_on_their_next_request(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    added = await add_user(demo_client, hannah, modules=["QUOTES", "INVOICES"])
    user_id = data(added, "addPortalUser")["id"]
    token = await accepted(demo_db, demo_client, CLEO, "cleo")
    assert "errors" not in await ask(demo_client, token, INVOICES)
    refused(await ask(demo_client, token, JOBS), "MODULE_FORBIDDEN")

    body = await send(
        demo_client, hannah, "SetPortalUserModules", {"id": user_id, "modules": ["QUOTES"]}
    )
    assert body == {"data": {"setPortalUserModules": {"id": user_id, "moduleOverride": ["QUOTES"]}}}
    refused(await ask(demo_client, token, INVOICES), "MODULE_FORBIDDEN")
    assert "errors" not in await ask(demo_client, token, QUOTES)

    body = await send(
        demo_client,
        hannah,
        "SetPortalUserModules",
        {"id": user_id, "modules": ["QUOTES", "JOBS"]},
    )
    assert sorted(data(body, "setPortalUserModules")["moduleOverride"]) == ["JOBS", "QUOTES"]
    assert [row["number"] for row in nodes(await ask(demo_client, token, JOBS), "jobs")] != []
    listed = (await portal_users(demo_client, hannah))[CLEO]
    assert sorted(listed["moduleOverride"]) == ["JOBS", "QUOTES"]

    # Staff see who changed the modules, from the portal (S10).
    contact = await one(demo_db, Contact, col(Contact.email) == CLEO)
    trail = nodes(
        await office(
            demo_client,
            await staff(demo_db),
            STAFF_TRAIL,
            {"subjectId": gid("Contact", contact.id)},
        ),
        "auditTrail",
    )
    changes = [entry for entry in trail if "INVOICES" in json.dumps(entry["before"])]
    assert changes, trail
    assert all(entry["actorKind"] == "PORTAL" for entry in trail), trail


async def test_e12_access_wider_than_the_changers_own_is_refused(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    owen = await token_for(demo_db, NARROWED)
    email = "una@oakwoodfestival.example"
    added = await add_user(demo_client, owen, modules=["INVOICES", "JOBS"], email=email)
    user_id = data(added, "addPortalUser")["id"]
    membership = await membership_of(
        demo_db, await one(demo_db, Contact, col(Contact.email) == email)
    )

    for wider in (["JOBS", "QUOTES"], ["DIARIES"], ["INVOICES", "JOBS", "CERTIFICATES"]):
        body = await send(
            demo_client, owen, "SetPortalUserModules", {"id": user_id, "modules": wider}
        )
        refused(body, "MODULES_TOO_WIDE", "modules")
    # Owen loses INVOICES himself: he may no longer change a user who has it.
    await set_own_modules(demo_db, NARROWED, ["USERS", "JOBS"])
    body = await send(
        demo_client, owen, "SetPortalUserModules", {"id": user_id, "modules": ["JOBS"]}
    )
    refused(body, "MODULES_TOO_WIDE", "modules")
    stored = await one(demo_db, PortalMembership, col(PortalMembership.id) == membership.id)
    assert sorted(stored.module_override or []) == ["INVOICES", "JOBS"]


async def test_e12_nobody_changes_or_removes_themselves(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    me = (await portal_users(demo_client, hannah))[COMPANY]
    before = await snapshot(demo_db)
    body = await send(
        demo_client, hannah, "SetPortalUserModules", {"id": me["id"], "modules": ["USERS"]}
    )
    refused(body, "SELF_CHANGE_FORBIDDEN")
    refused(
        await send(demo_client, hannah, "RemovePortalUser", {"id": me["id"]}),
        "SELF_CHANGE_FORBIDDEN",
    )
    assert await snapshot(demo_db) == before
    hannah_contact = await one(demo_db, Contact, col(Contact.email) == COMPANY)
    assert (await membership_of(demo_db, hannah_contact)).module_override is None
    assert "errors" not in await ask(demo_client, hannah, INVOICES)


async def test_e12_removing_a_user_ends_their_sessions_and_keeps_the_contact_without_access(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    user_id = data(await add_user(demo_client, hannah, modules=["QUOTES"]), "addPortalUser")["id"]
    token = await accepted(demo_db, demo_client, CLEO, "cleo")
    assert await reaches(demo_client, token, HARBOUR)

    body = await send(demo_client, hannah, "RemovePortalUser", {"id": user_id})
    assert body == {"data": {"removePortalUser": user_id}}
    assert await session_status(demo_client, token) == 401
    assert not await reaches(demo_client, token, HARBOUR)
    assert CLEO not in await portal_users(demo_client, hannah)
    contact = await one(demo_db, Contact, col(Contact.email) == CLEO)
    assert contact.portal_access is False
    assert (
        await rows(demo_db, PortalMembership, col(PortalMembership.contact_id) == contact.id) == []
    )
    listed = {row["name"]: row for row in await portal_contacts(demo_client, hannah)}
    assert listed["Cleo Cleaner"]["portalAccess"] is False
    seen = await staff_contacts(
        demo_client, await staff(demo_db), await customer_named(demo_db, HARBOUR)
    )
    assert seen[gid("Contact", contact.id)]["portalAccess"] is False


async def test_e12_removing_an_invited_user_voids_their_invitation(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    user_id = data(await add_user(demo_client, hannah, modules=["QUOTES"]), "addPortalUser")["id"]
    link = await emailed_token(demo_db, CLEO)
    assert (
        data(
            await send(demo_client, hannah, "RemovePortalUser", {"id": user_id}), "removePortalUser"
        )
        == user_id
    )
    assert error_codes(await accept(demo_client, link, username="cleo")) == ["INVALID_TOKEN"]
    assert await rows(demo_db, PortalAccount, col(PortalAccount.email) == CLEO) == []


async def test_e12_a_resent_invitation_replaces_the_earlier_link_and_an_active_user_needs_none(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    user_id = data(await add_user(demo_client, hannah, modules=["QUOTES"]), "addPortalUser")["id"]
    first = await emailed_token(demo_db, CLEO)

    body = await send(demo_client, hannah, "ResendPortalUserInvitation", {"id": user_id})
    assert body == {"data": {"resendPortalUserInvitation": {"id": user_id, "status": "INVITED"}}}
    second = await emailed_token(demo_db, CLEO)
    assert second != first
    emails = await rows(demo_db, OutboxEmail, col(OutboxEmail.to_address) == CLEO)
    assert [email.kind for email in emails] == ["invitation", "invitation"]

    assert error_codes(await accept(demo_client, first, username="cleo")) == ["INVALID_TOKEN"]
    assert "errors" not in await accept(demo_client, second, username="cleo")
    again = await send(demo_client, hannah, "ResendPortalUserInvitation", {"id": user_id})
    refused(again, "USER_ALREADY_ACTIVE")
    assert len(await rows(demo_db, OutboxEmail, col(OutboxEmail.to_address) == CLEO)) == 2


async def test_e12_another_customers_or_businesses_users_are_not_found_and_change_nothing(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    northside = await one(demo_db, Tenant, col(Tenant.slug) == "northside")
    quayside = await membership_of(demo_db, await contact_named(demo_db, QUAYSIDE_LEAD))
    morgan_there = await membership_of(
        demo_db,
        await one(
            demo_db, Contact, col(Contact.email) == TWO, col(Contact.tenant_id) == northside.id
        ),
    )
    quayside_token = await token_for(demo_db, SITE)
    before = await snapshot(demo_db)
    for membership_id in (quayside.id, morgan_there.id, uuid.uuid4()):
        user = {"id": gid("PortalUser", membership_id)}
        body = await send(
            demo_client, hannah, "SetPortalUserModules", {**user, "modules": ["QUOTES"]}
        )
        refused(body, "NOT_FOUND")
        refused(await send(demo_client, hannah, "RemovePortalUser", user), "NOT_FOUND")
        refused(await send(demo_client, hannah, "ResendPortalUserInvitation", user), "NOT_FOUND")
    assert await snapshot(demo_db) == before
    for membership in (quayside, morgan_there):
        stored = await one(demo_db, PortalMembership, col(PortalMembership.id) == membership.id)
        assert stored.module_override is None
    assert await reaches(demo_client, quayside_token, RIVERSIDE)
    listed = await portal_users(demo_client, hannah)
    assert set(listed) == {COMPANY}


def test_e12_nobody_but_the_invitee_sets_a_password_the_inputs_have_no_password_field() -> None:
    schema = portal_schema()
    user_input = schema.get_type("PortalUserInput")
    assert isinstance(user_input, GraphQLInputObjectType)
    assert set(user_input.fields) == {
        "customerId",
        "siteId",
        "name",
        "email",
        "username",
        "modules",
    }
    for name in ("PortalUserInput", "ContactInput", "ContactChanges"):
        input_type = schema.get_type(name)
        assert isinstance(input_type, GraphQLInputObjectType), name
        assert not [field for field in input_type.fields if "password" in field.lower()], name
    assert schema.mutation_type is not None
    for name in PEOPLE_MUTATIONS:
        arguments = schema.mutation_type.fields[name].args
        assert not [arg for arg in arguments if "password" in arg.lower()], name


async def test_e12_a_password_sent_with_a_new_user_is_refused_and_nothing_is_written(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    hannah = await token_for(demo_db, COMPANY)
    before = await snapshot(demo_db)
    user = {"name": "Cleo", "email": CLEO, "modules": ["QUOTES"], "password": PASSWORD}
    response = await demo_client.post(
        PORTAL,
        json={"query": OPERATIONS["AddPortalUser"], "variables": {"input": user}},
        headers={"authorization": f"Bearer {hannah}"},
    )
    body = response.json()
    assert body.get("data") is None, body
    assert body["errors"], body
    assert await snapshot(demo_db) == before


PEOPLE_QUERIES = ["contacts", "users"]
PEOPLE_MUTATIONS = [
    "addContact",
    "updateContact",
    "deleteContact",
    "setContactPortalAccess",
    "addPortalUser",
    "setPortalUserModules",
    "removePortalUser",
    "resendPortalUserInvitation",
]


def test_e12_every_people_field_requires_the_users_module_in_the_sdl() -> None:
    schema = portal_schema()
    assert schema.query_type is not None and schema.mutation_type is not None
    fields = [
        *(schema.query_type.fields[name] for name in PEOPLE_QUERIES),
        *(schema.mutation_type.fields[name] for name in PEOPLE_MUTATIONS),
    ]
    for field in fields:
        assert field.ast_node is not None
        directives = [
            (directive.name.value, [print_ast(arg.value) for arg in directive.arguments])
            for directive in field.ast_node.directives or ()
        ]
        assert ("requiresModule", ["USERS"]) in directives, (field, directives)


# -- H6: the people lists cost the same statements at 10 and at 200 rows -------------------


async def two_hundred_people(db: Database) -> None:
    """A company contact whose customer has 200 more contacts, every one a portal user: half
    at sites, a third signed up, the rest invited. Written once, copied for each test."""
    tenant, _ = await make_tenant(db, slug="acme")
    me = await make_portal_user(db, tenant)
    ids: dict[str, Any] = {"tenant_id": tenant.id, "customer_id": me.customer.id}
    async with db.transaction(SYSTEM) as session:
        sites = [Site(**ids, name=f"Site {i:03}", address_line1=f"{i} Road") for i in range(200)]
        session.add_all(sites)
        await session.flush()
        contacts = [
            Contact(
                **ids,
                site_id=sites[i].id if i % 2 else None,
                kind=ContactKind.SITE if i % 2 else ContactKind.COMPANY,
                name=f"Person {i:03}",
                email=f"person{i:03}@customer.example",
                phone="020 7946 0000",
                portal_access=True,
            )
            for i in range(200)
        ]
        session.add_all(contacts)
        await session.flush()
        accounts = {
            i: PortalAccount(email=contact.email or "", username=f"p{i:03}", name=contact.name)
            for i, contact in enumerate(contacts)
            if i % 3 == 0
        }
        session.add_all(accounts.values())
        await session.flush()
        session.add_all(
            PortalMembership(
                tenant_id=tenant.id,
                contact_id=contact.id,
                account_id=accounts[i].id if i in accounts else None,
                invited_username=None if i in accounts else f"invited{i:03}",
                module_override=["QUOTES", "JOBS"] if i % 4 == 0 else None,
            )
            for i, contact in enumerate(contacts)
        )


async def _people(db: Database, settings: Settings) -> tuple[str, list[uuid.UUID]]:
    """The viewer's token and the ids of the 200 contacts `two_hundred_people` wrote."""
    [account] = await rows(db, PortalAccount, col(PortalAccount.email) == "jo@customer.example")
    contacts = await rows(db, Contact, col(Contact.name).startswith("Person "))
    ordered = sorted(contacts, key=lambda contact: contact.name)
    return await portal_token(db, settings, account), [contact.id for contact in ordered]


async def _cost(
    db: Database, client: httpx.AsyncClient, token: str, operation: str, field: str
) -> tuple[int, int]:
    """The statements one list costs, and how many rows it answered."""
    with count_statements(db) as counter:
        body = await send(client, token, operation, {"first": 100})
    return counter.count, len(data(body, field)["edges"])


async def _down_to_ten(db: Database, contacts: list[uuid.UUID]) -> None:
    gone = contacts[10:]
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.delete(PortalMembership).where(col(PortalMembership.contact_id).in_(gone))
        )
        await session.execute(sa.delete(Contact).where(col(Contact.id).in_(gone)))


@pytest.mark.database(prepare=two_hundred_people)
@pytest.mark.parametrize(
    ("operation", "field"), [("Contacts", "contacts"), ("PortalUsers", "users")]
)
async def test_h6_each_people_list_costs_the_same_statements_for_10_and_200_rows(
    db: Database, client: httpx.AsyncClient, settings: Settings, operation: str, field: str
) -> None:
    token, contacts = await _people(db, settings)
    at_200, listed_200 = await _cost(db, client, token, operation, field)
    await _down_to_ten(db, contacts)
    at_10, listed_10 = await _cost(db, client, token, operation, field)
    # The viewer is on both lists too: a full page of 100, then 10 and the viewer.
    assert (listed_200, listed_10) == (100, 11)
    assert at_10 == at_200, (operation, at_10, at_200)
    assert at_200 <= 12, (operation, at_200)
