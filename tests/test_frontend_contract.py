"""H2: every operation the portal apps send is valid against the portal schema, and runs
over HTTP, as the app would send it, without errors."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from graphql import OperationDefinitionNode, build_schema, parse, validate
from sqlmodel import col
from starlette.applications import Starlette
from strawberry.relay import from_base64, to_base64

from app.db.models import (
    Contact,
    ContactKind,
    Invoice,
    InvoiceStatus,
    Job,
    MessageThread,
    PortalMembership,
    Quote,
    QuoteStatus,
    Rental,
    RequestableItem,
    RequestableKind,
    RequestStatus,
    ServiceRequest,
    Site,
    StaffRole,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.main import create_app
from app.sdl import PORTAL_SDL
from app.settings import Environment, Settings
from tests.conftest import make_settings, stripe_settings
from tests.stripe_standin import StandInServer, StripeStandIn
from tests.support import (
    PASSWORD,
    PORTAL,
    PortalUser,
    account_and_contact,
    emailed_token,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)

OPERATIONS = {path.stem: path for path in (PORTAL_SDL.parent / "operations").glob("*.graphql")}


def _operation_name(path: Path) -> str:
    definitions = parse(path.read_text()).definitions
    [operation] = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    assert operation.name is not None, f"{path.name} needs a named operation"
    return operation.name.value


@dataclass
class World:
    db: Database
    settings: Settings
    client: httpx.AsyncClient
    user: PortalUser


@dataclass
class Call:
    variables: dict[str, Any]
    token: str | None = None


async def _mobile_sign_in(world: World) -> dict[str, Any]:
    body = await gql(
        world.client,
        'mutation ($p: String!) { signIn(login: "jo", password: $p, client: MOBILE) '
        "{ tokens { refreshToken } } }",
        {"p": PASSWORD},
        path=PORTAL,
    )
    tokens: dict[str, Any] = body["data"]["signIn"]["tokens"]
    return tokens


async def _invited(world: World) -> Call:
    tenant, manager = await make_tenant(world.db, slug="inviter", role=StaffRole.ASSISTANT_MANAGER)
    colleague = await make_portal_user(world.db, tenant, email="boss@c.example", username="boss")
    newcomer = Contact(
        tenant_id=tenant.id,
        customer_id=colleague.customer.id,
        kind=ContactKind.COMPANY,
        name="New Person",
        email="new.person@c.example",
    )
    async with world.db.transaction(SYSTEM) as session:
        session.add(newcomer)
    switched = await gql(
        world.client,
        "mutation ($id: ID!) { setContactPortalAccess(contactId: $id, enabled: true) "
        "{ portalAccess } }",
        {"id": to_base64("Contact", str(newcomer.id))},
        token=await staff_token(world.db, world.settings, manager),
    )
    assert switched == {"data": {"setContactPortalAccess": {"portalAccess": True}}}
    invitation = {
        "tenant": "inviter",
        "token": await emailed_token(world.db, "new.person@c.example"),
        "name": "New Person",
        "username": "newperson",
        "password": "a long new passphrase",
    }
    return Call({"input": invitation})


async def _emailed(world: World, mutation: str) -> str:
    await gql(
        world.client, f'mutation {{ {mutation}(email: "{world.user.account.email}") }}', path=PORTAL
    )
    return await emailed_token(world.db, world.user.account.email)


async def _signed_in(world: World) -> str:
    return await portal_token(world.db, world.settings, world.user.account)


SCENARIOS: dict[str, Callable[[World], Awaitable[Call]]] = {
    "Viewer": lambda w: _as_call({}, _signed_in(w)),
    "SignIn": lambda w: _as_call({"login": "jo", "password": PASSWORD}),
    "SignOut": lambda w: _as_call({}, _signed_in(w)),
    "RefreshSession": lambda w: _refresh(w),
    "ChangePassword": lambda w: _as_call(
        {"currentPassword": PASSWORD, "newPassword": "an entirely new passphrase"}, _signed_in(w)
    ),
    "AcceptInvitation": _invited,
    "RequestPasswordReset": lambda w: _as_call({"email": w.user.account.email}),
    "ResetPassword": lambda w: _reset(w),
    "RequestMagicLink": lambda w: _as_call({"email": w.user.account.email}),
    "RedeemMagicLink": lambda w: _magic(w),
    "StartInvoicePayment": lambda w: _payable(w),
    "UpdateProfile": lambda w: _as_call({"name": "Jo Renamed", "username": "jo.r"}, _signed_in(w)),
    "RequestEmailChange": lambda w: _as_call(
        {"newEmail": "jo.moved@customer.example", "currentPassword": PASSWORD}, _signed_in(w)
    ),
    "ConfirmEmailChange": lambda w: _email_change(w),
    "SignOutEverywhere": lambda w: _as_call({}, _signed_in(w)),
}


async def _as_call(variables: dict[str, Any], token: Awaitable[str] | None = None) -> Call:
    return Call(variables, await token if token is not None else None)


async def _refresh(world: World) -> Call:
    return Call({"refreshToken": (await _mobile_sign_in(world))["refreshToken"]})


async def _reset(world: World) -> Call:
    token = await _emailed(world, "requestPasswordReset")
    return Call({"token": token, "newPassword": "a reset passphrase"})


async def _email_change(world: World) -> Call:
    await gql(
        world.client,
        'mutation { requestEmailChange(newEmail: "jo.moved@customer.example",'
        f' currentPassword: "{PASSWORD}") }}',
        path=PORTAL,
        token=await _signed_in(world),
    )
    return Call({"token": await emailed_token(world.db, "jo.moved@customer.example")})


async def _magic(world: World) -> Call:
    return Call({"token": await _emailed(world, "requestMagicLink")})


# Screens that show data run against the demo, as its company contact with every module.
DEMO_USER = "facilities@harbourview.example"


@dataclass
class Demo:
    db: Database
    customer_id: uuid.UUID
    tenant_id: uuid.UUID

    async def first(self, model: Any, *where: Any) -> str:
        """The global id of the first row of `model` at the demo user's customer."""
        async with self.db.session(SYSTEM) as session:
            row_id = await session.scalar(
                sa.select(model.id)
                .where(
                    model.tenant_id == self.tenant_id, model.customer_id == self.customer_id, *where
                )
                .order_by(model.id)
                .limit(1)
            )
        assert row_id is not None, f"the demo user has no {model.__name__}"
        name = {"DiaryEvent": "Appointment"}.get(model.__name__, model.__name__)
        return to_base64(name, str(row_id))


async def _rented_service(demo: Demo) -> dict[str, Any]:
    rental = await demo.first(Rental)
    async with demo.db.session(SYSTEM) as session:
        rental_row = await session.get(Rental, (demo.tenant_id, uuid.UUID(from_base64(rental)[1])))
        service = await session.scalar(
            sa.select(col(RequestableItem.id))
            .where(
                col(RequestableItem.tenant_id) == demo.tenant_id,
                col(RequestableItem.kind) == RequestableKind.SERVICE,
                col(RequestableItem.show_in_portal).is_(True),
            )
            .order_by(col(RequestableItem.name))
            .limit(1)
        )
    assert rental_row is not None and service is not None
    return {
        "input": {
            "siteId": to_base64("Site", str(rental_row.site_id)),
            "rentalId": rental,
            "serviceId": to_base64("RequestableItem", str(service)),
            "poNumber": "PO-1",
            "notes": "Gate code 1234.",
            "preferredDate": "2026-12-01",
        }
    }


DEMO_SCENARIOS: dict[str, Callable[[Demo], Awaitable[dict[str, Any]]]] = {
    "Home": lambda d: _plain({"withInvoices": True, "withRequests": True, "withJobs": True}),
    "Branding": lambda d: _plain({"business": "acme"}),
    "Invoices": lambda d: _plain({"unpaidOnly": False}),
    "Invoice": lambda d: _with_id(d.first(Invoice, Invoice.status == InvoiceStatus.UNPAID)),
    "Quotes": lambda d: _plain({}),
    "Quote": lambda d: _with_id(d.first(Quote, Quote.status == QuoteStatus.SENT)),
    "DecideQuote": lambda d: _decide(d),
    "Jobs": lambda d: _plain({}),
    "Job": lambda d: _with_id(d.first(Job)),
    "Certificates": lambda d: _plain({}),
    "Appointments": lambda d: _plain({"from": "2026-01-01", "to": "2026-12-31"}),
    "Requests": lambda d: _plain({}),
    "NewRequestForm": lambda d: _plain({}),
    "SubmitServiceRequest": _rented_service,
    "RequestWork": lambda d: _work(d),
    "CancelRequest": lambda d: _cancel(d),
    "Properties": lambda d: _plain({}),
    "AddProperty": lambda d: _plain(
        {"input": {"name": "New Depot", "addressLine1": "1 Quay Road", "uprn": "100062198765"}}
    ),
    "Contacts": lambda d: _plain({}),
    "AddContact": lambda d: _plain(
        {"input": {"name": "Ola Berg", "email": "ola@harbourview.example", "portalAccess": True}}
    ),
    "UpdateContact": lambda d: _changed_contact(d),
    "DeleteContact": lambda d: _with_id(_new_contact(d, access=False)),
    "SetContactPortalAccess": lambda d: _access(d),
    "PortalUsers": lambda d: _plain({}),
    "AddPortalUser": lambda d: _plain(
        {
            "input": {
                "name": "Kit Olsen",
                "email": "kit@harbourview.example",
                "username": "kit.olsen",
                "modules": ["QUOTES", "JOBS"],
            }
        }
    ),
    "SetPortalUserModules": lambda d: _user_modules(d),
    "RemovePortalUser": lambda d: _with_id(_invited_user(d)),
    "ResendPortalUserInvitation": lambda d: _with_id(_invited_user(d)),
    "MessageThreads": lambda d: _plain({"unreadOnly": False}),
    "MessageThread": lambda d: _about(d.first(MessageThread)),
    "SendMessage": lambda d: _message(d),
    "MarkMessageThreadRead": lambda d: _with_id(d.first(MessageThread)),
}


async def _new_contact(demo: Demo, *, access: bool) -> str:
    """A company contact of the demo user's customer, other than the demo user."""
    contact = Contact(
        tenant_id=demo.tenant_id,
        customer_id=demo.customer_id,
        kind=ContactKind.COMPANY,
        name="Jo Lind",
        email="jo.lind@harbourview.example",
        portal_access=access,
    )
    async with demo.db.transaction(SYSTEM) as session:
        session.add(contact)
    return to_base64("Contact", str(contact.id))


async def _changed_contact(demo: Demo) -> dict[str, Any]:
    return {"id": await _new_contact(demo, access=False), "input": {"phone": "01632 960123"}}


async def _access(demo: Demo) -> dict[str, Any]:
    return {"id": await _new_contact(demo, access=False), "enabled": True}


async def _invited_user(demo: Demo) -> str:
    """A user invited to the demo user's customer who has not accepted yet."""
    contact_id = uuid.UUID(from_base64(await _new_contact(demo, access=True))[1])
    membership = PortalMembership(
        tenant_id=demo.tenant_id, contact_id=contact_id, module_override=["QUOTES"]
    )
    async with demo.db.transaction(SYSTEM) as session:
        session.add(membership)
    return to_base64("PortalUser", str(membership.id))


async def _user_modules(demo: Demo) -> dict[str, Any]:
    return {"id": await _invited_user(demo), "modules": ["QUOTES", "JOBS"]}


async def _plain(variables: dict[str, Any]) -> dict[str, Any]:
    return variables


async def _with_id(global_id: Awaitable[str]) -> dict[str, Any]:
    return {"id": await global_id}


async def _about(global_id: Awaitable[str]) -> dict[str, Any]:
    return {"about": await global_id, "first": 10}


async def _message(demo: Demo) -> dict[str, Any]:
    quote = demo.first(Quote, Quote.status == QuoteStatus.SENT)
    return {"about": await quote, "body": "Could you start on Monday?\nThanks."}


async def _decide(demo: Demo) -> dict[str, Any]:
    return {"quoteId": await demo.first(Quote, Quote.status == QuoteStatus.SENT), "approve": True}


async def _cancel(demo: Demo) -> dict[str, Any]:
    request = await demo.first(ServiceRequest, ServiceRequest.status == RequestStatus.NEW)
    return {"requestId": request, "reason": "Sorted it ourselves."}


async def _work(demo: Demo) -> dict[str, Any]:
    site = await demo.first(Site)
    return {"input": {"kind": "QUOTE", "siteId": site, "description": "Two more units for May."}}


async def _payable(world: World) -> Call:
    """An unpaid invoice at a business paid into its own Stripe account."""
    user = world.user
    invoice = Invoice(
        tenant_id=user.tenant.id,
        customer_id=user.customer.id,
        number="INV-1",
        status=InvoiceStatus.UNPAID,
        currency="GBP",
        total_minor=12_000,
        issued_on=date.today(),
        due_on=date.today(),
    )
    async with world.db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant)
            .where(col(Tenant.id) == user.tenant.id)
            .values(stripe_account_id="acct_contract")
        )
        session.add(invoice)
    return await _as_call(
        {"invoiceId": to_base64("Invoice", str(invoice.id)), "amount": 5_000}, _signed_in(world)
    )


# Subscriptions run over WebSocket, not HTTP: tests/test_messages_live.py drives each with
# the stock graphql-ws client.
LIVE_OPERATIONS = {"MessageAdded"}


def test_h2_every_operation_has_a_scenario_that_runs_it() -> None:
    assert not set(SCENARIOS) & set(DEMO_SCENARIOS)
    assert set(OPERATIONS) == set(SCENARIOS) | set(DEMO_SCENARIOS) | LIVE_OPERATIONS


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_h2_each_operation_is_valid_against_the_portal_schema(name: str) -> None:
    schema = build_schema(PORTAL_SDL.read_text())
    assert validate(schema, parse(OPERATIONS[name].read_text())) == []
    assert _operation_name(OPERATIONS[name]) == name


def _answered(body: dict[str, Any]) -> None:
    assert "errors" not in body, body
    assert all(value not in (None, False) for value in body["data"].values()), body


@pytest.mark.parametrize("name", sorted(DEMO_SCENARIOS))
async def test_h2_each_data_operation_runs_over_http_on_the_demo(
    demo_db: Database, demo_client: httpx.AsyncClient, name: str
) -> None:
    account, contact = await account_and_contact(demo_db, DEMO_USER)
    demo = Demo(demo_db, contact.customer_id, contact.tenant_id)
    variables = await DEMO_SCENARIOS[name](demo)
    token = await portal_token(demo_db, Settings(env=Environment.TEST), account)
    response = await demo_client.post(
        PORTAL,
        json={"query": OPERATIONS[name].read_text(), "operationName": name, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    _answered(response.json())


@pytest.fixture
def settings(database_url: str, stripe_server: StandInServer) -> Settings:
    # Payments are on, against the local Stripe stand-in.
    return make_settings(database_url, **stripe_settings(stripe_server.url))


@pytest.fixture
def app(db: Database, settings: Settings, stripe_standin: StripeStandIn) -> Starlette:
    return create_app(settings, db=db)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_h2_each_operation_runs_over_http(
    db: Database, settings: Settings, client: httpx.AsyncClient, name: str
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    world = World(db, settings, client, await make_portal_user(db, tenant))
    call = await SCENARIOS[name](world)
    headers = {"authorization": f"Bearer {call.token}"} if call.token else {}
    response = await client.post(
        PORTAL,
        json={
            "query": OPERATIONS[name].read_text(),
            "operationName": name,
            "variables": call.variables,
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    _answered(response.json())
