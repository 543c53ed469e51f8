"""E1-E10, H6: every portal list costs a fixed number of SQL statements whatever its length,
and the portal's actions do what they say, once, for whom they say."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from app.db.models import (
    Certificate,
    Contact,
    ContactKind,
    Customer,
    DiaryEvent,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Job,
    JobVisit,
    PortalAccount,
    Quote,
    QuoteLine,
    QuoteStatus,
    Rental,
    RequestableItem,
    RequestableKind,
    RequestStatus,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
    StoredFile,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import PORTAL_SDL
from app.settings import Settings
from tests.support import (
    PORTAL,
    PortalUser,
    count_statements,
    error_codes,
    gid,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
)

OPERATIONS = PORTAL_SDL.parent / "operations"
SOON = datetime.now(UTC) + timedelta(days=2)


@dataclass
class Me:
    """A company contact signed in, with its customer's sites and a requestable service."""

    user: PortalUser
    token: str
    sites: list[Site]
    service: RequestableItem


async def _customer_with(db: Database, settings: Settings, n: int) -> Me:
    """A company contact whose customer has `n` of everything the portal lists."""
    await _everything(db, n)
    return await _the_customer(db, settings)


async def two_hundred_of_everything(db: Database) -> None:
    """The statement-count tests' data: written once, copied for each test (conftest)."""
    await _everything(db, 200)


async def _everything(db: Database, n: int) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    ids: dict[str, Any] = {"tenant_id": tenant.id, "customer_id": user.customer.id}
    async with db.transaction(SYSTEM) as session:
        service = RequestableItem(tenant_id=tenant.id, kind=RequestableKind.SERVICE, name="Pump")
        pdf = b"%PDF-1.4 certificate"
        file = StoredFile(
            tenant_id=tenant.id,
            filename="gas safety.pdf",
            content_type="application/pdf",
            byte_size=len(pdf),
            sha256=hashlib.sha256(pdf).hexdigest(),
            content=pdf,
        )
        sites = [Site(**ids, name=f"Site {i:03}", address_line1=f"{i} Road") for i in range(n)]
        session.add_all([service, file, *sites])
        await session.flush()
        for i, site in enumerate(sites):
            on_site: dict[str, Any] = {**ids, "site_id": site.id}
            invoice = Invoice(
                **on_site,
                number=f"INV-{i:04}",
                status=InvoiceStatus.UNPAID,
                currency="GBP",
                total_minor=2000,
                issued_on=date(2026, 11, 1),
                due_on=date(2026, 12, 1),
            )
            quote = Quote(
                **on_site,
                number=f"Q-{i:04}",
                title="Quote",
                status=QuoteStatus.SENT,
                currency="GBP",
                total_minor=5000,
            )
            job = Job(**on_site, number=f"J-{i:04}", title="Job")
            request = ServiceRequest(**on_site, number=f"PR-{i:04}", contact_id=user.contact.id)
            rental = Rental(
                **on_site, reference=f"R-{i:04}", description="Unit", starts_on=date(2026, 1, 1)
            )
            session.add_all([invoice, quote, job, request, rental])
            await session.flush()
            session.add_all(
                [
                    InvoiceLine(
                        tenant_id=tenant.id,
                        invoice_id=invoice.id,
                        position=1,
                        description="Work",
                        unit_price_minor=2000,
                        total_minor=2000,
                    ),
                    QuoteLine(
                        tenant_id=tenant.id,
                        quote_id=quote.id,
                        position=1,
                        description="Work",
                        unit_price_minor=5000,
                        total_minor=5000,
                    ),
                    JobVisit(
                        tenant_id=tenant.id,
                        job_id=job.id,
                        starts_at=SOON + timedelta(minutes=i),
                        ends_at=SOON + timedelta(hours=1),
                    ),
                    Certificate(
                        **on_site,
                        number=f"C-{i:04}",
                        title="Gas safety",
                        issued_on=date(2026, 11, 1),
                        file_id=file.id,
                    ),
                    DiaryEvent(
                        **on_site,
                        job_id=job.id,
                        title="Visit",
                        starts_at=SOON,
                        ends_at=SOON + timedelta(hours=1),
                    ),
                    ServiceRequestEvent(
                        tenant_id=tenant.id, request_id=request.id, to_status=RequestStatus.NEW
                    ),
                ]
            )


async def _the_customer(db: Database, settings: Settings) -> Me:
    """The one customer `_everything` wrote, with a new bearer token of its contact."""
    async with db.session(SYSTEM) as session:
        tenant = (await session.scalars(sa.select(Tenant))).one()
        customer = (await session.scalars(sa.select(Customer))).one()
        contact = (await session.scalars(sa.select(Contact))).one()
        account = (await session.scalars(sa.select(PortalAccount))).one()
        sites = list(await session.scalars(sa.select(Site).order_by(col(Site.name))))
        service = (await session.scalars(sa.select(RequestableItem))).one()
    user = PortalUser(tenant=tenant, customer=customer, contact=contact, account=account)
    return Me(user, await portal_token(db, settings, account), sites, service)


LISTS: dict[str, dict[str, Any]] = {
    "Home": {"withInvoices": True, "withRequests": True, "withJobs": True},
    "Invoices": {"first": 100},
    "Quotes": {"first": 100},
    "Jobs": {"first": 100},
    "Certificates": {"first": 100},
    "Appointments": {"from": "2026-01-01", "to": "2026-12-31", "first": 100},
    "Requests": {"first": 100},
    "Properties": {"first": 100},
    "NewRequestForm": {},
}
NESTED = {
    # Lists inside lists, to show loaders batch them: every invoice's lines, every job's visits.
    "InvoiceLines": "{ invoices(first: 100) { edges { node { number lines { total { minor } } "
    "contractor { name } address uprn status } } } }",
    "JobVisits": "{ jobs(first: 100) { edges { node { number visits { startsAt } } } } }",
    "QuoteLines": "{ quotes(first: 100) { edges { node { number lines { description } } } } }",
}


async def _statements(
    db: Database, client: httpx.AsyncClient, token: str, document: str, variables: dict[str, Any]
) -> int:
    with count_statements(db) as counter:
        response = await client.post(
            PORTAL,
            json={"query": document, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert "errors" not in body, body
    return len(counter.statements)


@pytest.mark.database(prepare=two_hundred_of_everything)
@pytest.mark.parametrize("name", [*LISTS, *NESTED])
async def test_h6_each_portal_list_costs_the_same_statements_for_10_and_200_rows(
    db: Database, client: httpx.AsyncClient, settings: Settings, name: str
) -> None:
    many = await _the_customer(db, settings)
    document = (OPERATIONS / f"{name}.graphql").read_text() if name in LISTS else NESTED[name]
    variables = LISTS.get(name, {})
    at_200 = await _statements(db, client, many.token, document, variables)
    async with db.transaction(SYSTEM) as session:
        # Down to 10 of everything: drop the rest at this customer.
        keep = [site.id for site in many.sites[:10]]
        for table in (
            DiaryEvent,
            Certificate,
            ServiceRequest,
            Rental,
            Invoice,
            Quote,
            Job,
        ):
            await session.execute(sa.delete(table).where(col(table.site_id).not_in(keep)))
        await session.execute(sa.delete(Site).where(col(Site.id).not_in(keep)))
    at_10 = await _statements(db, client, many.token, document, variables)
    assert at_10 == at_200, (name, at_10, at_200)
    assert at_200 <= 12, (name, at_200)


# -- Actions ---------------------------------------------------------------------------------


async def _send(
    client: httpx.AsyncClient, operation: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    return await gql(
        client,
        (OPERATIONS / f"{operation}.graphql").read_text(),
        variables,
        path=PORTAL,
        token=token,
    )


async def test_e4_a_service_request_reaches_the_office_as_new_with_the_names_it_was_sent_with(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 1)
    async with db.session(SYSTEM) as session:
        rental = await session.scalar(sa.select(Rental))
    assert rental is not None
    body = await _send(
        client,
        "SubmitServiceRequest",
        {
            "input": {
                "siteId": gid("Site", me.sites[0].id),
                "rentalId": gid("Rental", rental.id),
                "serviceId": gid("RequestableItem", me.service.id),
                "poNumber": " PO-77 ",
                "preferredDate": "2026-12-03",
            }
        },
        me.token,
    )
    assert "errors" not in body, body
    sent = body["data"]["submitServiceRequest"]
    assert sent["status"] == "NEW" and sent["serviceName"] == "Pump"
    async with db.session(SYSTEM) as session:
        stored = await session.scalar(
            sa.select(ServiceRequest).where(col(ServiceRequest.number) == sent["number"])
        )
        events = list(await session.scalars(sa.select(ServiceRequestEvent)))
    assert stored is not None
    assert (stored.po_number, stored.contact_id, stored.rental_id) == (
        "PO-77",
        me.user.contact.id,
        rental.id,
    )
    assert stored.account_id == me.user.account.id
    assert [e.to_status for e in events if e.request_id == stored.id] == [RequestStatus.NEW]


async def test_e4_a_rental_at_another_site_or_a_hidden_service_is_refused_and_nothing_is_written(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 2)
    async with db.transaction(SYSTEM) as session:
        other_rental = await session.scalar(
            sa.select(Rental).where(col(Rental.site_id) == me.sites[1].id)
        )
        hidden = RequestableItem(
            tenant_id=me.user.tenant.id,
            kind=RequestableKind.SERVICE,
            name="Hidden",
            show_in_portal=False,
        )
        session.add(hidden)
    assert other_rental is not None
    base = {
        "siteId": gid("Site", me.sites[0].id),
        "serviceId": gid("RequestableItem", me.service.id),
    }
    cases = [
        ({**base, "rentalId": gid("Rental", other_rental.id)}, "NOT_FOUND"),
        ({**base, "newRental": True, "serviceId": gid("RequestableItem", hidden.id)}, "NOT_FOUND"),
        ({**base}, "INVALID_INPUT"),
        ({"siteId": base["siteId"], "newRental": True}, "INVALID_INPUT"),
    ]
    for sent, code in cases:
        body = await _send(client, "SubmitServiceRequest", {"input": sent}, me.token)
        assert error_codes(body) == [code], (sent, body)
    async with db.session(SYSTEM) as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(ServiceRequest))
    assert count == 2


async def test_e5_asking_for_a_quote_needs_a_description_and_lands_as_a_quote_request(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 1)
    work = {"kind": "QUOTE", "siteId": gid("Site", me.sites[0].id), "description": "  "}
    assert error_codes(await _send(client, "RequestWork", {"input": work}, me.token)) == [
        "INVALID_INPUT"
    ]
    work["description"] = "Quote for 4 extra units in May."
    body = await _send(client, "RequestWork", {"input": work}, me.token)
    assert body["data"]["requestWork"]["kind"] == "QUOTE"
    assert body["data"]["requestWork"]["status"] == "NEW"


async def test_e6_a_sent_quote_is_decided_once(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 1)
    async with db.session(SYSTEM) as session:
        quote = await session.scalar(sa.select(Quote))
    assert quote is not None
    variables = {"quoteId": gid("Quote", quote.id), "approve": True}
    body = await _send(client, "DecideQuote", variables, me.token)
    assert body["data"]["decideQuote"]["status"] == "APPROVED"
    again = await _send(client, "DecideQuote", {**variables, "approve": False}, me.token)
    assert error_codes(again) == ["QUOTE_NOT_OPEN"]
    async with db.session(SYSTEM) as session:
        stored = await session.get(Quote, (quote.tenant_id, quote.id))
    assert stored is not None and stored.status is QuoteStatus.APPROVED
    assert stored.decided_by_account_id == me.user.account.id


async def test_e8_a_certificate_link_downloads_the_document_for_its_account_only_while_valid(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 1)
    body = await _send(client, "Certificates", {"first": 5}, me.token)
    [edge] = body["data"]["certificates"]["edges"]
    url = edge["node"]["downloadUrl"]
    response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 certificate"
    assert response.headers["content-type"] == "application/pdf"
    assert "attachment" in response.headers["content-disposition"]
    # Any change to the link, and access switched off, both end it.
    assert (await client.get(url.replace("signature=", "signature=0"))).status_code == 404
    other = url.replace(str(me.user.account.id), "00000000-0000-0000-0000-000000000000")
    assert (await client.get(other)).status_code == 404
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant)
            .where(col(Tenant.id) == me.user.tenant.id)
            .values(portal_enabled=False)
        )
    assert (await client.get(url)).status_code == 404


async def test_e10_a_company_contact_adds_a_property_staff_then_see(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 1)
    bad = {"name": "Depot", "addressLine1": "1 Quay", "uprn": "12ab"}
    assert error_codes(await _send(client, "AddProperty", {"input": bad}, me.token)) == [
        "INVALID_INPUT"
    ]
    good = {**bad, "uprn": "100062198765", "postcode": "po1 3ab", "isCompanySite": True}
    body = await _send(client, "AddProperty", {"input": good}, me.token)
    added = body["data"]["addProperty"]
    assert (added["postcode"], added["uprn"], added["isCompanySite"]) == (
        "PO1 3AB",
        "100062198765",
        True,
    )
    async with db.session(SYSTEM) as session:
        site = await session.scalar(sa.select(Site).where(col(Site.name) == "Depot"))
    assert site is not None and site.customer_id == me.user.customer.id


async def test_t5_branding_by_business_and_customer_with_nothing_more(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 1)
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant)
            .where(col(Tenant.id) == me.user.tenant.id)
            .values(accent_colour="#112233")
        )
    document = (OPERATIONS / "Branding.graphql").read_text()
    tenant_only = await gql(client, document, {"business": "ACME"}, path=PORTAL)
    assert tenant_only == {
        "data": {"branding": {"name": "Acme", "accentColour": "#112233", "logoUrl": None}}
    }
    own = me.user.customer.portal_identifier
    customer = await gql(client, document, {"business": "acme", "customer": own}, path=PORTAL)
    assert customer["data"]["branding"]["accentColour"] == "#112233"
    for missing in ({"business": "nobody"}, {"business": "acme", "customer": "nobody"}):
        assert await gql(client, document, missing, path=PORTAL) == {"data": {"branding": None}}


async def test_e1_home_shows_what_is_owed_open_requests_and_upcoming_visits(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    me = await _customer_with(db, settings, 3)
    body = await _send(client, "Home", LISTS["Home"], me.token)
    [customer] = body["data"]["customers"]
    assert customer["outstanding"] == {"minor": 6000, "currency": "GBP"}
    assert customer["openRequestCount"] == 3
    assert customer["contactKind"] == ContactKind.COMPANY.value
    assert len(body["data"]["upcomingVisits"]) == 3
