"""S2 over HTTP: staff create and change customers, sites and contacts, with checked emails
and phone numbers, and see who changed a record last, the office or the customer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.auth.viewer import PortalViewer
from app.db.base import utcnow
from app.db.models import AuditEntry, Contact, Customer, Site, StaffRole
from app.db.scope import SYSTEM
from app.db.session import Database
from app.resolvers.audit import audit_entry
from app.settings import Settings
from tests.support import (
    error_codes,
    gql,
    make_customers,
    make_portal_user,
    make_tenant,
    staff_token,
)

CREATE_CUSTOMER = """mutation ($input: CustomerInput!) {
  createCustomer(input: $input) { id name portalIdentifier lastChange { actorKind action } }
}"""
CREATE_SITE = """mutation ($customerId: ID!, $input: SiteInput!) {
  createSite(customerId: $customerId, input: $input) { id name siteNumber uprn isCompanySite }
}"""
CREATE_CONTACT = """mutation ($customerId: ID!, $siteId: ID, $input: ContactInput!) {
  createContact(customerId: $customerId, siteId: $siteId, input: $input) {
    id kind name email phone site { name }
  }
}"""
UPDATE_CONTACT = """mutation ($id: ID!, $input: ContactChanges!) {
  updateContact(id: $id, input: $input) {
    name email phone updatedAt lastChange { actorKind action actor { name } }
  }
}"""
UPDATE_SITE = """mutation ($id: ID!, $input: SiteChanges!) {
  updateSite(id: $id, input: $input) { name town uprn }
}"""
CUSTOMER = """query ($id: ID!) {
  node(id: $id) {
    ... on Customer {
      name updatedAt lastChange { actorKind }
      contacts { name email lastChange { actorKind action at } }
      sites { name siteNumber contacts { name } }
    }
  }
}"""


async def _office(db: Database, settings: Settings, slug: str = "acme") -> tuple[Any, str]:
    tenant, user = await make_tenant(db, slug=slug, role=StaffRole.DISPATCHER)
    return tenant, await staff_token(db, settings, user)


async def _count(db: Database, model: Any) -> int:
    async with db.session(SYSTEM) as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


async def test_s2_staff_add_a_customer_its_site_and_contacts_and_read_them_back(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, token = await _office(db, settings)
    made = await gql(
        client, CREATE_CUSTOMER, {"input": {"name": "Harbour View Hotel"}}, token=token
    )
    customer = made["data"]["createCustomer"]
    assert customer["portalIdentifier"] == "harbour-view-hotel"
    assert customer["lastChange"] == {"actorKind": "STAFF", "action": "customer.created"}
    again = await gql(
        client, CREATE_CUSTOMER, {"input": {"name": "Harbour  View hotel"}}, token=token
    )
    assert again["data"]["createCustomer"]["portalIdentifier"] == "harbour-view-hotel-2"

    site = await gql(
        client,
        CREATE_SITE,
        {
            "customerId": customer["id"],
            "input": {
                "name": "Quayside",
                "addressLine1": "1 Quay Street",
                "siteNumber": "S-1",
                "uprn": "100023336956",
                "isCompanySite": True,
            },
        },
        token=token,
    )
    site_id = site["data"]["createSite"]["id"]
    company = await gql(
        client,
        CREATE_CONTACT,
        {
            "customerId": customer["id"],
            "input": {
                "name": "Fay Facilities",
                "email": " Fay@Harbour.EXAMPLE ",
                "phone": "+44 (0)20 7946 0000",
            },
        },
        token=token,
    )
    assert company["data"]["createContact"] == {
        "id": company["data"]["createContact"]["id"],
        "kind": "COMPANY",
        "name": "Fay Facilities",
        "email": "fay@harbour.example",
        "phone": "+44 (0)20 7946 0000",
        "site": None,
    }
    at_site = await gql(
        client,
        CREATE_CONTACT,
        {"customerId": customer["id"], "siteId": site_id, "input": {"name": "Sid Site"}},
        token=token,
    )
    assert at_site["data"]["createContact"]["kind"] == "SITE"
    assert at_site["data"]["createContact"]["site"] == {"name": "Quayside"}

    read = await gql(client, CUSTOMER, {"id": customer["id"]}, token=token)
    node = read["data"]["node"]
    assert [c["name"] for c in node["contacts"]] == ["Fay Facilities", "Sid Site"]
    # Besides the site added, the company site every customer starts with.
    assert node["sites"] == [
        {"name": "Company Site", "siteNumber": None, "contacts": []},
        {"name": "Quayside", "siteNumber": "S-1", "contacts": [{"name": "Sid Site"}]},
    ]


async def test_s2_bad_emails_phones_and_blank_names_are_typed_errors_and_write_nothing(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _office(db, settings)
    [customer] = await make_customers(db, tenant, 1, contacts=0, sites=0)
    customer_id = to_base64("Customer", str(customer.id))
    cases = [
        ({"name": "A", "email": "not-an-address"}, "email"),
        ({"name": "A", "phone": "call me"}, "phone"),
        ({"name": "A", "phone": "12345"}, "phone"),
        ({"name": "A", "phone": "+1 234 567 890 123 456"}, "phone"),
        ({"name": "   "}, "name"),
    ]
    for form, field in cases:
        body = await gql(
            client, CREATE_CONTACT, {"customerId": customer_id, "input": form}, token=token
        )
        assert error_codes(body) == ["INVALID_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
    bad_uprn = await gql(
        client,
        CREATE_SITE,
        {
            "customerId": customer_id,
            "input": {"name": "X", "addressLine1": "1 Road", "uprn": "12ab"},
        },
        token=token,
    )
    assert error_codes(bad_uprn) == ["INVALID_INPUT"]
    assert await _count(db, Contact) == 0
    assert await _count(db, Site) == 0
    assert await _count(db, AuditEntry) == 0


async def test_s2_changes_are_recorded_with_who_and_only_what_changed(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _office(db, settings)
    [customer] = await make_customers(db, tenant, 1, contacts=1, sites=1)
    async with db.session(SYSTEM) as session:
        contact = (
            await session.scalars(
                sa.select(Contact)
                .where(col(Contact.customer_id) == customer.id)
                .order_by(col(Contact.name))
            )
        ).first()
        site = (await session.scalars(sa.select(Site))).one()
    assert contact is not None
    contact_id = to_base64("Contact", str(contact.id))
    body = await gql(
        client,
        UPDATE_CONTACT,
        {"id": contact_id, "input": {"email": "new@customer.example", "phone": "020 7946 0001"}},
        token=token,
    )
    changed = body["data"]["updateContact"]
    assert changed["name"] == contact.name and changed["email"] == "new@customer.example"
    assert changed["lastChange"] == {
        "actorKind": "STAFF",
        "action": "contact.updated",
        "actor": {"name": "Sam Staff"},
    }
    cleared = await gql(
        client,
        UPDATE_SITE,
        {"id": to_base64("Site", str(site.id)), "input": {"town": "Leeds", "uprn": None}},
        token=token,
    )
    assert cleared["data"]["updateSite"] == {"name": site.name, "town": "Leeds", "uprn": None}
    blank = await gql(
        client,
        UPDATE_SITE,
        {"id": to_base64("Site", str(site.id)), "input": {"name": None}},
        token=token,
    )
    assert error_codes(blank) == ["INVALID_INPUT"]
    async with db.session(SYSTEM) as session:
        entry = (
            await session.scalars(
                sa.select(AuditEntry).where(col(AuditEntry.action) == "contact.updated")
            )
        ).one()
    assert entry.before == {"email": None, "phone": None}
    assert entry.after == {"email": "new@customer.example", "phone": "020 7946 0001"}


async def test_s2_staff_see_that_a_customer_changed_a_contact_from_the_portal(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _office(db, settings)
    user = await make_portal_user(db, tenant)
    # What the portal's contact editing writes (E11): the change and an entry by the account.
    portal = PortalViewer(
        session_id=uuid.uuid4(),
        account_id=user.account.id,
        name=user.account.name,
        email=user.account.email,
        username=user.account.username,
        grants=(),
    )
    async with db.transaction(SYSTEM) as session:
        contact = await session.get(Contact, (tenant.id, user.contact.id))
        assert contact is not None
        contact.phone = "0113 496 0000"
        contact.updated_at = utcnow()
        session.add(
            audit_entry(
                portal,
                tenant_id=tenant.id,
                action="contact.updated",
                subject_type="Contact",
                subject_id=contact.id,
                before={"phone": None},
                after={"phone": "0113 496 0000"},
            )
        )
    body = await gql(
        client, CUSTOMER, {"id": to_base64("Customer", str(user.customer.id))}, token=token
    )
    [seen] = body["data"]["node"]["contacts"]
    assert seen["lastChange"]["actorKind"] == "PORTAL"
    assert seen["lastChange"]["action"] == "contact.updated"


async def test_s2_a_site_contact_belongs_to_a_site_of_the_same_customer_and_tenant(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _office(db, settings)
    other_tenant, _ = await make_tenant(db, slug="other")
    first, second = await make_customers(db, tenant, 2, contacts=0, sites=1)
    [foreign] = await make_customers(db, other_tenant, 1, contacts=0, sites=1)
    async with db.session(SYSTEM) as session:
        second_site = (
            await session.scalars(sa.select(Site).where(col(Site.customer_id) == second.id))
        ).one()
        foreign_site = (
            await session.scalars(sa.select(Site).where(col(Site.customer_id) == foreign.id))
        ).one()
    contacts_before = await _count(db, Contact)
    for customer, site in [(first, second_site), (first, foreign_site)]:
        body = await gql(
            client,
            CREATE_CONTACT,
            {
                "customerId": to_base64("Customer", str(customer.id)),
                "siteId": to_base64("Site", str(site.id)),
                "input": {"name": "Nobody"},
            },
            token=token,
        )
        assert error_codes(body) == ["NOT_FOUND"]
    foreign_change = await gql(
        client,
        'mutation ($id: ID!) { updateCustomer(id: $id, input: {name: "Mine"}) { name } }',
        {"id": to_base64("Customer", str(foreign.id))},
        token=token,
    )
    assert error_codes(foreign_change) == ["NOT_FOUND"]
    async with db.session(SYSTEM) as session:
        unchanged = await session.get(Customer, (other_tenant.id, foreign.id))
    assert unchanged is not None and unchanged.name == foreign.name
    assert await _count(db, Contact) == contacts_before


async def test_s2_customers_of_one_name_added_at_once_get_different_identifiers(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, token = await _office(db, settings)
    answers = await asyncio.gather(
        *(
            gql(client, CREATE_CUSTOMER, {"input": {"name": "Maple Court"}}, token=token)
            for _ in range(4)
        )
    )
    assert all("errors" not in a for a in answers), answers
    identifiers = sorted(a["data"]["createCustomer"]["portalIdentifier"] for a in answers)
    assert identifiers == ["maple-court", "maple-court-2", "maple-court-3", "maple-court-4"]
    assert await _count(db, Customer) == 4
