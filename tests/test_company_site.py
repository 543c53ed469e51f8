"""A customer starts with its company site (S2): made with the customer by staff, given by
a migration to customers that had no site, and offered by the portal's request form (E4)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.db import migrate
from app.db.models import AuditEntry, Customer, Site, StaffRole, Tenant
from app.db.scope import SYSTEM
from app.db.session import Database, create_engine
from app.sdl import PORTAL_SDL
from app.settings import Settings
from tests.support import (
    PORTAL,
    error_codes,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)

OPERATIONS = PORTAL_SDL.parent / "operations"
CREATE = """mutation ($input: CustomerInput!) { createCustomer(input: $input) {
  id sites { name isCompanySite addressLine1 town postcode uprn } } }"""


async def _sites(db: Database, customer_id: uuid.UUID) -> list[Site]:
    async with db.session(SYSTEM) as session:
        return list(
            await session.scalars(
                sa.select(Site).where(col(Site.customer_id) == customer_id).order_by(col(Site.name))
            )
        )


async def test_s2_a_customer_staff_add_starts_with_its_company_site_at_its_address(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, dispatcher = await make_tenant(db, slug="acme", role=StaffRole.DISPATCHER)
    token = await staff_token(db, settings, dispatcher)
    address = {
        "addressLine1": "1 Harbour Road",
        "town": "Portsmouth",
        "postcode": "po1 3ab",
        "uprn": "100062198765",
    }
    body = await gql(
        client, CREATE, {"input": {"name": "Harbour View", "address": address}}, token=token
    )
    assert "errors" not in body, body
    [site] = body["data"]["createCustomer"]["sites"]
    assert site == {
        "name": "Company Site",
        "isCompanySite": True,
        "addressLine1": "1 Harbour Road",
        "town": "Portsmouth",
        "postcode": "po1 3ab",
        "uprn": "100062198765",
    }
    bare = await gql(client, CREATE, {"input": {"name": "No Address Ltd"}}, token=token)
    [plain] = bare["data"]["createCustomer"]["sites"]
    assert (plain["name"], plain["isCompanySite"], plain["addressLine1"]) == (
        "Company Site",
        True,
        "",
    )
    async with db.session(SYSTEM) as session:
        entries = list(
            await session.scalars(
                sa.select(AuditEntry).where(col(AuditEntry.action) == "customer.created")
            )
        )
    assert len(entries) == 2
    assert all(entry.after and entry.after["company_site_id"] for entry in entries)

    # A bad address leaves neither customer nor site behind.
    before = await _count(db)
    for wrong, field in [
        ({"addressLine1": " "}, "addressLine1"),
        ({**address, "uprn": "x1"}, "uprn"),
    ]:
        refused = await gql(
            client, CREATE, {"input": {"name": "Half Made", "address": wrong}}, token=token
        )
        assert error_codes(refused) == ["INVALID_INPUT"]
        assert refused["errors"][0]["extensions"]["field"] == field
    assert await _count(db) == before


async def _count(db: Database) -> tuple[int, int]:
    async with db.session(SYSTEM) as session:
        customers = await session.scalar(sa.select(sa.func.count()).select_from(Customer))
        sites = await session.scalar(sa.select(sa.func.count()).select_from(Site))
    return int(customers or 0), int(sites or 0)


async def test_e4_the_request_form_offers_the_company_site_of_a_new_customer(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, dispatcher = await make_tenant(db, slug="acme", role=StaffRole.DISPATCHER)
    token = await staff_token(db, settings, dispatcher)
    made = await gql(
        client,
        CREATE,
        {"input": {"name": "Fresh Co", "address": {"addressLine1": "2 Quay"}}},
        token=token,
    )
    async with db.session(SYSTEM) as session:
        customer = await session.scalar(sa.select(Customer).where(col(Customer.name) == "Fresh Co"))
    assert customer is not None and "errors" not in made
    user = await make_portal_user(db, tenant, customer=customer)
    portal = await portal_token(db, settings, user.account)
    form = await gql(
        client, (OPERATIONS / "NewRequestForm.graphql").read_text(), {}, path=PORTAL, token=portal
    )
    [offered] = form["data"]["customers"]
    [site] = offered["sites"]
    assert site["name"] == "Company Site"
    sent = await gql(
        client,
        (OPERATIONS / "RequestWork.graphql").read_text(),
        {"input": {"kind": "QUOTE", "siteId": site["id"], "description": "Two units"}},
        path=PORTAL,
        token=portal,
    )
    assert sent["data"]["requestWork"]["status"] == "NEW"
    assert site["id"] == to_base64("Site", (await _sites(db, customer.id))[0].id)


async def test_s2_the_migration_gives_each_customer_without_a_site_its_company_site_once(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate.downgrade, database_url, "0008_messages")
    db = Database(create_engine(database_url))
    tenant = Tenant(slug="old", name="Old Times")
    siteless = Customer(tenant_id=tenant.id, name="Siteless", portal_identifier="siteless")
    sited = Customer(tenant_id=tenant.id, name="Sited", portal_identifier="sited")
    async with db.transaction(SYSTEM) as session:
        session.add(tenant)
        await session.flush()
        session.add_all([siteless, sited])
        await session.flush()
        session.add(
            Site(tenant_id=tenant.id, customer_id=sited.id, name="Yard", address_line1="3 Lane")
        )
    await db.dispose()
    await asyncio.to_thread(migrate.upgrade, database_url)
    await asyncio.to_thread(migrate.downgrade, database_url, "0008_messages")
    await asyncio.to_thread(migrate.upgrade, database_url)
    db = Database(create_engine(database_url))
    try:
        [given] = await _sites(db, siteless.id)
        assert (given.name, given.is_company_site, given.address_line1) == (
            "Company Site",
            True,
            "",
        )
        assert given.created_at.tzinfo is not None and given.updated_at is not None
        assert [site.name for site in await _sites(db, sited.id)] == ["Yard"]
    finally:
        await db.dispose()
