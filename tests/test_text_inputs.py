"""SECURITY.md row 30, text that travels: line breaks, control characters and text-direction
marks in the names, addresses and notes people type, which reach emails, the office's
screens and logs. Every text input of both schemas is listed here (a test fails on one that
is not), each is refused with INVALID_INPUT on its field and nothing is written; multi-line
notes keep their line breaks; and no stored text can add a header to an email."""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from graphql import GraphQLInputObjectType, GraphQLNamedType, GraphQLSchema, get_named_type
from sqlmodel import SQLModel, col

from app.db.models import (
    Contact,
    Customer,
    Invoice,
    InvoiceStatus,
    OutboxEmail,
    PortalAccount,
    RequestableItem,
    RequestStatus,
    ServiceRequest,
    Site,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.mail import enqueue_email
from app.mail.worker import OutboxWorker
from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from tests.conftest import make_settings
from tests.smtp import SmtpServer
from tests.support import (
    PASSWORD,
    PORTAL,
    STAFF,
    error_codes,
    gid,
    make_tenant,
    portal_token,
    staff_token,
)

# Characters no one-line text may hold, and those no multi-line text may hold.
NOT_IN_A_LINE = ["\r\n", "\n", "\r", "\t", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\u2028"]
NOT_IN_TEXT = ["\r", "\t", "\x1b", "\x7f", "\x85", "\u202a", "\u2069", "\u2029"]
# Inputs that are never shown to anyone, each checked by what it is for instead.
NOT_SHOWN = {
    "staff.signIn.tenant": "a look-up",
    "staff.signIn.email": "a look-up",
    "staff.signIn.password": "a secret, never shown",
    "staff.refreshSession.refreshToken": "a secret, never shown",
    "staff.changePassword.currentPassword": "a secret, never shown",
    "staff.changePassword.newPassword": "a secret, never shown",
    "staff.setPortalLogo.logo.contentType": "one of the image types allowed",
    "staff.setPortalLogo.logo.base64": "decoded to an image",
    "staff.setCustomerLogo.logo.contentType": "one of the image types allowed",
    "staff.setCustomerLogo.logo.base64": "decoded to an image",
    "portal.signIn.login": "a look-up",
    "portal.signIn.password": "a secret, never shown",
    "portal.refreshSession.refreshToken": "a secret, never shown",
    "portal.changePassword.currentPassword": "a secret, never shown",
    "portal.changePassword.newPassword": "a secret, never shown",
    "portal.requestPasswordReset.email": "a look-up; mail goes only to an account's address",
    "portal.requestMagicLink.email": "a look-up; mail goes only to an account's address",
    "portal.resetPassword.token": "a secret, never shown",
    "portal.resetPassword.newPassword": "a secret, never shown",
    "portal.redeemMagicLink.token": "a secret, never shown",
    "portal.requestEmailChange.currentPassword": "a secret, never shown",
    "portal.confirmEmailChange.token": "a secret, never shown",
    "portal.acceptInvitation.input.tenant": "a look-up",
    "portal.acceptInvitation.input.token": "a secret, never shown",
    "portal.acceptInvitation.input.password": "a secret, never shown",
}


@dataclass
class Demo:
    """What the cases need from the demo: tokens and the ids of rows they change."""

    db: Database
    client: httpx.AsyncClient
    staff: str = ""
    portal: str = ""
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One mutation and its text inputs: each with a valid sample value."""

    schema: str
    query: str
    variables: Callable[[Demo], Awaitable[dict[str, Any]]]
    texts: dict[str, str]
    multiline: frozenset[str] = frozenset()


async def _none(_demo: Demo) -> dict[str, Any]:
    return {}


def _ids(*paths: str) -> Callable[[Demo], Awaitable[dict[str, Any]]]:
    """Variables holding the demo's ids at `paths` (`id`, `input.siteId`), each the id its
    last name names."""

    async def variables(demo: Demo) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for path in paths:
            found = with_value(found, path, demo.ids[path.rsplit(".", 1)[-1]])
        return found

    return variables


async def _invitation(demo: Demo) -> dict[str, Any]:
    """A fresh invitation for Rita at Riverside, sent by the office."""
    response = await demo_post(
        demo,
        STAFF,
        "mutation ($id: ID!) { setContactPortalAccess(contactId: $id, enabled: true) { id } }",
        {"id": demo.ids["rita"]},
    )
    assert "errors" not in response, response
    async with demo.db.session(SYSTEM) as session:
        body = await session.scalar(
            sa.select(col(OutboxEmail.text_body))
            .where(col(OutboxEmail.to_address) == "procurement@riverside.example")
            .order_by(col(OutboxEmail.created_at).desc())
            .limit(1)
        )
    assert body is not None
    found = re.search(r"token=([A-Za-z0-9_\-]+)", body)
    assert found is not None
    return {"input": {"tenant": "acme", "token": found.group(1), "password": PASSWORD}}


SITE_TEXTS = {
    "name": "Depot",
    "addressLine1": "1 Quay Road",
    "siteNumber": "D-12",
    "addressLine2": "Unit 4",
    "town": "Portsmouth",
    "postcode": "PO1 3AB",
    "uprn": "100062198765",
}
CONTACT_TEXTS = {"name": "Cleo Contact", "email": "cleo@harbourview.example", "phone": "023 9200"}
SEND_MESSAGE = (
    "mutation ($about: ID!, $body: String!) { sendMessage(about: $about, body: $body) { id } }"
)
MESSAGE_TEXTS = {"body": "The boiler is booked.\nSee you on Monday."}
CASES: dict[str, Case] = {
    "staff.sendMessage": Case(
        STAFF, SEND_MESSAGE, _ids("about"), MESSAGE_TEXTS, multiline=frozenset({"body"})
    ),
    "portal.sendMessage": Case(
        PORTAL, SEND_MESSAGE, _ids("about"), MESSAGE_TEXTS, multiline=frozenset({"body"})
    ),
    "staff.createCustomer": Case(
        STAFF,
        "mutation ($input: CustomerInput!) { createCustomer(input: $input) { id } }",
        _none,
        {
            "input.name": "Bob's Builders",
            **{
                f"input.address.{name}": value
                for name, value in SITE_TEXTS.items()
                if name not in ("name", "siteNumber")
            },
        },
    ),
    "staff.updateCustomer": Case(
        STAFF,
        "mutation ($id: ID!, $input: CustomerChanges!) { updateCustomer(id: $id, input: $input)"
        " { id } }",
        _ids("id"),
        {"input.name": "Harbour View Hotels"},
    ),
    "staff.createSite": Case(
        STAFF,
        "mutation ($customerId: ID!, $input: SiteInput!) {"
        " createSite(customerId: $customerId, input: $input) { id } }",
        _ids("customerId"),
        {f"input.{name}": value for name, value in SITE_TEXTS.items()},
    ),
    "staff.updateSite": Case(
        STAFF,
        "mutation ($site: ID!, $input: SiteChanges!) { updateSite(id: $site, input: $input)"
        " { id } }",
        _ids("site"),
        {f"input.{name}": value for name, value in SITE_TEXTS.items()},
    ),
    "staff.createContact": Case(
        STAFF,
        "mutation ($customerId: ID!, $input: ContactInput!) {"
        " createContact(customerId: $customerId, input: $input) { id } }",
        _ids("customerId"),
        {f"input.{name}": value for name, value in CONTACT_TEXTS.items()},
    ),
    "staff.updateContact": Case(
        STAFF,
        "mutation ($contact: ID!, $input: ContactChanges!) {"
        " updateContact(id: $contact, input: $input) { id } }",
        _ids("contact"),
        {f"input.{name}": value for name, value in CONTACT_TEXTS.items()},
    ),
    "staff.createRequestableItem": Case(
        STAFF,
        "mutation ($name: String!) { createRequestableItem(kind: SERVICE, name: $name) { id } }",
        _none,
        {"name": "Deep Clean"},
    ),
    "staff.renameRequestableItem": Case(
        STAFF,
        "mutation ($item: ID!, $name: String!) { renameRequestableItem(id: $item, name: $name)"
        " { id } }",
        _ids("item"),
        {"name": "Deep Clean"},
    ),
    "staff.declineServiceRequest": Case(
        STAFF,
        "mutation ($request: ID!, $reason: String!) {"
        " declineServiceRequest(id: $request, reason: $reason) { id } }",
        _ids("request"),
        {"reason": "We do not cover that area."},
        frozenset({"reason"}),
    ),
    "staff.updatePortalSettings": Case(
        STAFF,
        "mutation ($input: PortalSettingsChanges!) { updatePortalSettings(input: $input)"
        " { portalEnabled } }",
        _none,
        {
            "input.accentColour": "#2f5d8a",
            "input.stripeAccountId": "acct_1A2b3C4d5E6f",
            "input.timeZone": "Europe/London",
            "input.currency": "GBP",
        },
    ),
    "staff.updateCustomerPortal": Case(
        STAFF,
        "mutation ($customerId: ID!, $input: CustomerPortalChanges!) {"
        " updateCustomerPortal(customerId: $customerId, input: $input) { id } }",
        _ids("customerId"),
        {"input.portalIdentifier": "harbour-hotel", "input.accentColour": "#2f5d8a"},
    ),
    "portal.acceptInvitation": Case(
        PORTAL,
        "mutation ($input: AcceptInvitationInput!) { acceptInvitation(input: $input)"
        " { viewer { email } } }",
        _invitation,
        {"input.name": "Rita Procurement", "input.username": "rita"},
    ),
    "portal.submitServiceRequest": Case(
        PORTAL,
        "mutation ($input: ServiceRequestInput!) { submitServiceRequest(input: $input) { id } }",
        _ids("input.siteId", "input.serviceId"),
        {"input.poNumber": "PO-77", "input.notes": "Gate code 1234."},
        frozenset({"notes"}),
    ),
    "portal.requestWork": Case(
        PORTAL,
        "mutation ($input: WorkRequestInput!) { requestWork(input: $input) { id } }",
        _ids("input.siteId"),
        {"input.description": "Four extra units in May.", "input.poNumber": "PO-78"},
        frozenset({"description"}),
    ),
    "portal.cancelRequest": Case(
        PORTAL,
        "mutation ($requestId: ID!, $reason: String!) {"
        " cancelRequest(requestId: $requestId, reason: $reason) { id } }",
        _ids("requestId"),
        {"reason": "We found another way."},
        frozenset({"reason"}),
    ),
    "portal.updateProfile": Case(
        PORTAL,
        "mutation ($name: String, $username: String) {"
        " updateProfile(name: $name, username: $username) { id } }",
        _none,
        {"name": "Hannah Facilities", "username": "hannah-f"},
    ),
    "portal.requestEmailChange": Case(
        PORTAL,
        "mutation ($newEmail: String!, $password: String!) {"
        " requestEmailChange(newEmail: $newEmail, currentPassword: $password) }",
        _none,
        {"newEmail": "hannah.new@harbourview.example"},
    ),
    "portal.addProperty": Case(
        PORTAL,
        "mutation ($input: PropertyInput!) { addProperty(input: $input) { id } }",
        _none,
        {f"input.{name}": value for name, value in SITE_TEXTS.items() if name != "siteNumber"},
    ),
    "portal.addContact": Case(
        PORTAL,
        "mutation ($input: ContactInput!) { addContact(input: $input) { id } }",
        _none,
        {f"input.{name}": value for name, value in CONTACT_TEXTS.items()},
    ),
    "portal.updateContact": Case(
        PORTAL,
        "mutation ($contact: ID!, $input: ContactChanges!) {"
        " updateContact(id: $contact, input: $input) { id } }",
        _ids("contact"),
        {f"input.{name}": value for name, value in CONTACT_TEXTS.items()},
    ),
    "portal.addPortalUser": Case(
        PORTAL,
        "mutation ($input: PortalUserInput!) { addPortalUser(input: $input) { id } }",
        _none,
        {
            "input.name": "Cleo Contact",
            "input.email": CONTACT_TEXTS["email"],
            "input.username": "cleo",
        },
    ),
}
# Inputs whose other fields the cases above need, besides the text under test.
OTHER_INPUTS: dict[str, dict[str, Any]] = {
    "staff.createSite": {"input.isCompanySite": False},
    "portal.submitServiceRequest": {"input.newRental": True},
    "portal.requestWork": {"input.kind": "QUOTE"},
    "portal.addPortalUser": {"input.modules": ["REQUESTS"]},
    "portal.requestEmailChange": {"password": PASSWORD},
}


def text_inputs(name: str, schema: GraphQLSchema) -> set[str]:
    """`schema.mutation.argument[.field...]` for every String a mutation takes."""
    found: set[str] = set()

    def walk(prefix: str, type_: GraphQLNamedType) -> None:
        if isinstance(type_, GraphQLInputObjectType):
            for field_name, input_field in type_.fields.items():
                walk(f"{prefix}.{field_name}", get_named_type(input_field.type))
        elif type_.name == "String":
            found.add(prefix)

    assert schema.mutation_type is not None
    for mutation, definition in schema.mutation_type.fields.items():
        for argument, arg in definition.args.items():
            walk(f"{name}.{mutation}.{argument}", get_named_type(arg.type))
    return found


def test_sec30_every_text_input_of_both_schemas_is_checked_here_or_never_shown() -> None:
    inputs = text_inputs("staff", staff_schema(production=False)._schema) | text_inputs(
        "portal", portal_schema(production=False)._schema
    )
    covered = {f"{name}.{path}" for name, case in CASES.items() for path in case.texts}
    assert covered.isdisjoint(NOT_SHOWN)
    assert inputs - covered - set(NOT_SHOWN) == set(), "a text input with no test of row 30"
    assert (covered | set(NOT_SHOWN)) - inputs == set(), "a test of an input that is gone"


async def demo_post(
    demo: Demo, schema: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    token = demo.staff if schema == STAFF else demo.portal
    response = await demo.client.post(
        schema,
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def one_row(db: Database, statement: Any) -> Any:
    async with db.session(SYSTEM) as session:
        found = await session.scalar(statement)
    assert found is not None, statement
    return found


@pytest.fixture
async def demo(demo_db: Database, demo_database_url: str, demo_client: httpx.AsyncClient) -> Demo:
    settings = make_settings(demo_database_url)
    db = demo_db
    acme = await one_row(db, sa.select(Tenant).where(col(Tenant.slug) == "acme"))
    owner = await one_row(
        db, sa.select(StaffUser).where(col(StaffUser.email) == "owner@acme.example")
    )
    hannah = await one_row(
        db,
        sa.select(PortalAccount).where(
            col(PortalAccount.email) == "facilities@harbourview.example"
        ),
    )
    harbour = await one_row(
        db, sa.select(Customer).where(col(Customer.name) == "Harbour View Hotel")
    )
    site = await one_row(
        db,
        sa.select(Site).where(
            col(Site.customer_id) == harbour.id, col(Site.name) == "Harbour View Hotel"
        ),
    )
    harry = await one_row(db, sa.select(Contact).where(col(Contact.name) == "Harry Accounts"))
    rita = await one_row(
        db, sa.select(Contact).where(col(Contact.email) == "procurement@riverside.example")
    )
    delivery = await one_row(
        db,
        sa.select(RequestableItem).where(
            col(RequestableItem.tenant_id) == acme.id, col(RequestableItem.name) == "Delivery"
        ),
    )
    request = await one_row(
        db,
        sa.select(ServiceRequest)
        .where(
            col(ServiceRequest.tenant_id) == acme.id,
            col(ServiceRequest.status) == RequestStatus.NEW,
        )
        .limit(1),
    )
    invoice = await one_row(
        db,
        sa.select(Invoice)
        .where(col(Invoice.customer_id) == harbour.id, col(Invoice.status) == InvoiceStatus.UNPAID)
        .limit(1),
    )
    return Demo(
        db=db,
        client=demo_client,
        staff=await staff_token(db, settings, owner),
        portal=await portal_token(db, settings, hannah),
        ids={
            "id": gid("Customer", harbour.id),
            "customerId": gid("Customer", harbour.id),
            "site": gid("Site", site.id),
            "siteId": gid("Site", site.id),
            "contact": gid("Contact", harry.id),
            "rita": gid("Contact", rita.id),
            "item": gid("RequestableItem", delivery.id),
            "serviceId": gid("RequestableItem", delivery.id),
            "request": gid("ServiceRequest", request.id),
            "requestId": gid("ServiceRequest", request.id),
            "about": gid("Invoice", invoice.id),
        },
    )


# Rows a refused change must leave as they were; bookkeeping of sign-ins is not one.
_BOOKKEEPING = {"auth_sessions", "refresh_tokens", "rate_limit_counters"}


async def row_counts(db: Database) -> dict[str, int]:
    async with db.session(SYSTEM) as session:
        return {
            table.name: int(
                await session.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            )
            for table in SQLModel.metadata.sorted_tables
            if table.name not in _BOOKKEEPING
        }


def with_value(variables: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`variables` with `value` at a dotted path, making the input objects on the way."""
    # Deep: an input nested in an input (an address in a customer) is not shared either.
    result = copy.deepcopy(variables)
    *parents, last = path.split(".")
    target = result
    for parent in parents:
        target = target.setdefault(parent, {})
    target[last] = value
    return result


@pytest.mark.parametrize("name", sorted(CASES))
async def test_sec30_control_characters_and_direction_marks_are_refused_in_every_text_input(
    demo: Demo, name: str
) -> None:
    case = CASES[name]
    variables = await case.variables(demo)
    for path, value in OTHER_INPUTS.get(name, {}).items():
        variables = with_value(variables, path, value)
    # Every other text input at its valid sample, so only the one under test is wrong.
    for path, sample in case.texts.items():
        variables = with_value(variables, path, sample)
    before = await row_counts(demo.db)
    for path, sample in case.texts.items():
        field_name = path.rsplit(".", 1)[-1]
        characters = NOT_IN_TEXT if field_name in case.multiline else NOT_IN_A_LINE
        for character in characters:
            wrong = sample[:2] + character + sample[2:]
            body = await demo_post(
                demo, case.schema, case.query, with_value(variables, path, wrong)
            )
            assert body["data"] is None, (path, character, body)
            [error] = body["errors"]
            assert error["extensions"]["code"] == "INVALID_INPUT", (path, character, error)
            assert error["extensions"].get("field") == field_name, (path, character, error)
    assert await row_counts(demo.db) == before


async def test_sec30_the_invitation_with_an_injected_text_is_refused_and_no_email_goes(
    demo: Demo,
) -> None:
    before = await row_counts(demo.db)
    name = (
        "Bob\r\nBcc: everyone@customer.example\r\n\r\nYour account is locked: visit"
        " https://evil.example/login"
    )
    body = await demo_post(
        demo,
        PORTAL,
        CASES["portal.addPortalUser"].query,
        {"input": {"name": name, "email": "victim@customer.example", "modules": ["REQUESTS"]}},
    )
    assert error_codes(body) == ["INVALID_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "name"
    assert await row_counts(demo.db) == before


async def test_sec30_multi_line_notes_keep_their_line_breaks(demo: Demo) -> None:
    submitted = await demo_post(
        demo,
        PORTAL,
        "mutation ($input: ServiceRequestInput!) { submitServiceRequest(input: $input)"
        " { number } }",
        {
            "input": {
                "siteId": demo.ids["siteId"],
                "serviceId": demo.ids["serviceId"],
                "newRental": True,
                "notes": "Gate code 1234.\r\nRing the bell twice.\n",
            }
        },
    )
    number = submitted["data"]["submitServiceRequest"]["number"]
    notes = await one_row(
        demo.db,
        sa.select(col(ServiceRequest.notes)).where(col(ServiceRequest.number) == number),
    )
    assert notes == "Gate code 1234.\nRing the bell twice."
    declined = await demo_post(
        demo,
        STAFF,
        CASES["staff.declineServiceRequest"].query,
        {"request": demo.ids["request"], "reason": "We do not cover that area.\nTry Northside."},
    )
    assert "errors" not in declined, declined


async def test_sec30_a_stored_name_with_a_line_break_never_adds_an_email_header(
    db: Database, database_url: str
) -> None:
    smtp = SmtpServer()
    smtp.start()
    try:
        settings = make_settings(database_url, smtp_url=smtp.url)
        tenant, _ = await make_tenant(db, slug="acme")
        # Written before names were checked, or by hand: what is stored is not trusted.
        async with db.transaction(SYSTEM) as session:
            await session.execute(
                sa.update(Tenant)
                .where(col(Tenant.id) == tenant.id)
                .values(name="Acme\r\nBcc: everyone@customer.example\u202e\x1b")
            )
            stored = await session.get(Tenant, tenant.id)
            assert stored is not None
            await enqueue_email(
                session,
                template="invitation",
                to="jo@customer.example",
                context={
                    "contact_name": "Jo",
                    "accept_url": "https://portal.example/accept?token=t",
                    "expires_at": datetime(2026, 12, 1, tzinfo=UTC),
                },
                tenant=stored,
                settings=settings,
            )
        assert await OutboxWorker(db, settings).deliver_due() == 1
        assert smtp.inbox.recipients == ["jo@customer.example"]
        [message] = smtp.inbox.messages
        assert message["Bcc"] is None and len(message.get_all("Subject", [])) == 1
        # Long enough to be folded onto the next line, which only adds white space.
        assert " ".join(str(message["Subject"]).split()) == (
            "Acme Bcc: everyone@customer.example invites you to its customer portal"
        )
    finally:
        smtp.stop()
