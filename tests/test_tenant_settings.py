"""A business's time zone and currency (T7), its portal addresses (T6), and the portal's
jobs (E7) and diary (E9) read in that time zone, over HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.auth.passwords import hash_password
from app.db.models import (
    AuditEntry,
    Contact,
    ContactKind,
    DiaryEvent,
    Job,
    JobStatus,
    JobVisit,
    OutboxEmail,
    PortalAccount,
    PortalMembership,
    PortalModule,
    Site,
    StaffRole,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import PORTAL_SDL
from app.settings import Settings
from tests.support import (
    PASSWORD,
    PORTAL,
    PortalUser,
    error_codes,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)

OPERATIONS = PORTAL_SDL.parent / "operations"
SETTINGS = "{ portalSettings { timeZone currency } }"
UPDATE = """mutation ($input: PortalSettingsChanges!) {
  updatePortalSettings(input: $input) { timeZone currency }
}"""


async def _send(
    client: httpx.AsyncClient, operation: str, variables: dict[str, Any], token: str | None
) -> dict[str, Any]:
    document = (OPERATIONS / f"{operation}.graphql").read_text()
    return await gql(client, document, variables, path=PORTAL, token=token)


async def _set_zone(db: Database, tenant: Tenant, zone: str) -> None:
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.id) == tenant.id).values(time_zone=zone)
        )


async def _appointment(
    db: Database, user: PortalUser, starts_at: datetime, title: str, site: Site | None = None
) -> None:
    async with db.transaction(SYSTEM) as session:
        session.add(
            DiaryEvent(
                tenant_id=user.tenant.id,
                customer_id=user.customer.id,
                site_id=site.id if site else None,
                title=title,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=30),
            )
        )


async def _titles(
    client: httpx.AsyncClient, token: str, start: date, end: date, **more: Any
) -> list[str]:
    body = await _send(
        client,
        "Appointments",
        {"from": start.isoformat(), "to": end.isoformat(), **more},
        token,
    )
    assert "errors" not in body, body
    return [edge["node"]["title"] for edge in body["data"]["appointments"]["edges"]]


async def test_t7_managers_set_an_iana_zone_and_an_iso_currency_and_only_those(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    assert (await gql(client, SETTINGS, token=token))["data"]["portalSettings"] == {
        "timeZone": "UTC",
        "currency": "GBP",
    }
    changed = await gql(
        client,
        UPDATE,
        {"input": {"timeZone": "America/New_York", "currency": " usd "}},
        token=token,
    )
    assert changed["data"]["updatePortalSettings"] == {
        "timeZone": "America/New_York",
        "currency": "USD",
    }
    refused = [
        ("timeZone", "Mars/Olympus_Mons"),
        ("timeZone", "america/new_york"),
        ("timeZone", "EST5EDT; DROP"),
        ("timeZone", None),
        ("currency", "XXX"),
        ("currency", "XAU"),
        ("currency", "POUNDS"),
        ("currency", "US"),
        ("currency", None),
    ]
    for field, value in refused:
        bad = await gql(client, UPDATE, {"input": {field: value}}, token=token)
        assert error_codes(bad) == ["INVALID_INPUT"], (field, value)
        assert bad["errors"][0]["extensions"]["field"] == field
    async with db.session(SYSTEM) as session:
        row = await session.get(Tenant, tenant.id)
        entries = list(await session.scalars(sa.select(AuditEntry)))
    assert row is not None and (row.time_zone, row.currency) == ("America/New_York", "USD")
    [entry] = entries
    assert entry.before == {"time_zone": "UTC", "currency": "GBP"}
    assert entry.after == {"time_zone": "America/New_York", "currency": "USD"}

    _, dispatcher = await make_tenant(db, slug="bravo", role=StaffRole.DISPATCHER)
    low = await staff_token(db, settings, dispatcher)
    body = await gql(client, UPDATE, {"input": {"timeZone": "Europe/Paris"}}, token=low)
    assert error_codes(body) == ["ROLE_FORBIDDEN"]


async def test_t7_the_portal_diary_and_emails_follow_the_zone_staff_set(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    staff = await staff_token(db, settings, manager)
    user = await make_portal_user(db, tenant)
    token = await portal_token(db, settings, user.account)
    # 23:30 UTC on 1 December is 2 December in Sydney (UTC+11 in summer).
    await _appointment(db, user, datetime(2026, 12, 1, 23, 30, tzinfo=UTC), "late")
    first, second = date(2026, 12, 1), date(2026, 12, 2)
    assert await _titles(client, token, first, first) == ["late"]
    assert await _titles(client, token, second, second) == []

    body = await gql(
        client,
        UPDATE,
        {"input": {"timeZone": "Australia/Sydney", "currency": "AUD"}},
        token=staff,
    )
    assert "errors" not in body, body
    assert await _titles(client, token, first, first) == []
    assert await _titles(client, token, second, second) == ["late"]
    home = await _send(
        client, "Home", {"withInvoices": False, "withRequests": False, "withJobs": False}, token
    )
    [customer] = home["data"]["customers"]
    assert customer["contractor"]["timeZone"] == "Australia/Sydney"
    assert customer["contractor"]["currency"] == "AUD"

    async with db.transaction(SYSTEM) as session:
        invitee = Contact(
            tenant_id=tenant.id,
            customer_id=user.customer.id,
            kind=ContactKind.COMPANY,
            name="Kim Newcomer",
            email="kim@customer.example",
        )
        session.add(invitee)
    invite = """mutation ($id: ID!) { setContactPortalAccess(contactId: $id, enabled: true) {
      portalAccess } }"""
    sent = await gql(client, invite, {"id": to_base64("Contact", invitee.id)}, token=staff)
    assert "errors" not in sent, sent
    async with db.session(SYSTEM) as session:
        email = await session.scalar(
            sa.select(OutboxEmail).where(col(OutboxEmail.to_address) == "kim@customer.example")
        )
    assert email is not None
    # The link's expiry is written as Sydney's clock reads it, named AEDT, never in UTC.
    found = [
        line for line in email.text_body.splitlines() if line.startswith("The invitation expires")
    ]
    assert len(found) == 1 and " AEDT." in found[0] and "UTC" not in found[0], found
    expiry = datetime.strptime(
        found[0].split(" on ", 1)[1].split(" AEDT")[0], "%d %B %Y at %H:%M"
    ).replace(tzinfo=ZoneInfo("Australia/Sydney"))
    assert timedelta(days=1) < expiry - datetime.now(UTC) < timedelta(days=31)
    assert " AEDT" in email.html_body


async def _second_business_member(db: Database, user: PortalUser, slug: str) -> PortalUser:
    """The same account as a company contact of a customer of another business."""
    other, _ = await make_tenant(db, slug=slug)
    return await make_portal_user(db, other, email=user.account.email)


async def test_t6_slug_identifier_and_one_global_sign_in_each_find_the_right_portal(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    acme, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    user = await make_portal_user(db, acme)
    north = (await _second_business_member(db, user, "north")).tenant
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.id) == north.id).values(accent_colour="#0a0b0c")
        )
    staff = await staff_token(db, settings, manager)
    rename = """mutation ($id: ID!, $input: CustomerPortalChanges!) {
      updateCustomerPortal(customerId: $id, input: $input) { portalIdentifier } }"""
    body = await gql(
        client,
        rename,
        {
            "id": to_base64("Customer", user.customer.id),
            "input": {"portalIdentifier": "Harbour-View", "accentColour": "#123456"},
        },
        token=staff,
    )
    assert body["data"]["updateCustomerPortal"]["portalIdentifier"] == "harbour-view"

    async def branding(business: str, customer: str | None = None) -> Any:
        answer = await _send(client, "Branding", {"business": business, "customer": customer}, None)
        return answer["data"]["branding"]

    assert (await branding("acme"))["name"] == "Acme"
    assert (await branding("NORTH")) == {
        "name": "North",
        "accentColour": "#0a0b0c",
        "logoUrl": None,
    }
    own = await branding("acme", "harbour-view")
    assert (own["name"], own["accentColour"]) == ("Acme", "#123456")
    # The identifier belongs to one business: under another slug it finds nothing, and the
    # one it had before the change is free.
    assert await branding("north", "harbour-view") is None
    assert await branding("acme", user.customer.portal_identifier) is None
    assert await branding("nobody") is None

    # One sign-in address for everyone: the same login reaches both businesses.
    signed = await _send(
        client,
        "SignIn",
        {"login": user.account.email, "password": PASSWORD, "client": "MOBILE"},
        None,
    )
    access = signed["data"]["signIn"]["tokens"]["accessToken"]
    contractors = await gql(client, "{ contractors { name slug } }", path=PORTAL, token=access)
    assert sorted(c["slug"] for c in contractors["data"]["contractors"]) == ["acme", "north"]
    by_username = await _send(
        client, "SignIn", {"login": "JO", "password": PASSWORD, "client": "MOBILE"}, None
    )
    assert by_username["data"]["signIn"]["viewer"]["email"] == user.account.email
    wrong = await _send(
        client, "SignIn", {"login": "jo", "password": "not the password", "client": "MOBILE"}, None
    )
    assert error_codes(wrong) == ["INVALID_CREDENTIALS"]


async def _site_contact(db: Database, settings: Settings, user: PortalUser, site: Site) -> str:
    """A site contact at `site` with a signed-up account; its bearer token."""
    async with db.transaction(SYSTEM) as session:
        contact = Contact(
            tenant_id=user.tenant.id,
            customer_id=user.customer.id,
            site_id=site.id,
            kind=ContactKind.SITE,
            name="Sol Site",
            email="sol@customer.example",
            portal_access=True,
        )
        account = PortalAccount(
            email="sol@customer.example", name="Sol Site", password_hash=hash_password(PASSWORD)
        )
        session.add_all([contact, account])
        await session.flush()
        session.add(
            PortalMembership(tenant_id=user.tenant.id, account_id=account.id, contact_id=contact.id)
        )
    return await portal_token(db, settings, account)


async def _sites(db: Database, user: PortalUser, *names: str) -> list[Site]:
    sites = [
        Site(tenant_id=user.tenant.id, customer_id=user.customer.id, name=n, address_line1=n)
        for n in names
    ]
    async with db.transaction(SYSTEM) as session:
        session.add_all(sites)
    return sites


async def test_e7_jobs_with_their_visits_and_a_site_contact_sees_its_own_site_only(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    token = await portal_token(db, settings, user.account)
    quay, depot = await _sites(db, user, "Quay", "Depot")
    start = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    jobs = [
        Job(
            tenant_id=tenant.id,
            customer_id=user.customer.id,
            site_id=site.id,
            number=f"J-{n}",
            title=f"Work at {site.name}",
            status=JobStatus.SCHEDULED,
        )
        for n, site in enumerate([quay, depot], start=1)
    ]
    async with db.transaction(SYSTEM) as session:
        session.add_all(jobs)
        await session.flush()
        # Written out of order: the portal lists them earliest first.
        session.add_all(
            JobVisit(
                tenant_id=tenant.id,
                job_id=jobs[0].id,
                starts_at=start + timedelta(days=days),
                ends_at=start + timedelta(days=days, hours=2),
            )
            for days in (7, 0, 3)
        )
    listed = await _send(client, "Jobs", {}, token)
    assert [e["node"]["number"] for e in listed["data"]["jobs"]["edges"]] == ["J-2", "J-1"]
    one = await _send(client, "Job", {"id": to_base64("Job", jobs[0].id)}, token)
    job = one["data"]["node"]
    assert (job["number"], job["status"]) == ("J-1", "SCHEDULED")
    assert [v["startsAt"][:10] for v in job["visits"]] == ["2026-12-03", "2026-12-06", "2026-12-10"]
    assert {v["status"] for v in job["visits"]} == {"SCHEDULED"}

    site_token = await _site_contact(db, settings, user, quay)
    mine = await _send(client, "Jobs", {}, site_token)
    assert [e["node"]["number"] for e in mine["data"]["jobs"]["edges"]] == ["J-1"]
    other = await _send(client, "Job", {"id": to_base64("Job", jobs[1].id)}, site_token)
    assert other["data"]["node"] is None
    own = await _send(client, "Job", {"id": to_base64("Job", jobs[0].id)}, site_token)
    assert len(own["data"]["node"]["visits"]) == 3

    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant)
            .where(col(Tenant.id) == tenant.id)
            .values(default_modules=[PortalModule.INVOICES.value])
        )
    refused = await _send(client, "Jobs", {}, token)
    assert error_codes(refused) == ["MODULE_FORBIDDEN"]


async def test_e9_a_day_is_the_business_s_day_at_both_edges_and_across_a_clock_change(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    auckland, _ = await make_tenant(db, slug="kiwi")
    await _set_zone(db, auckland, "Pacific/Auckland")
    user = await make_portal_user(db, auckland)
    token = await portal_token(db, settings, user.account)
    zone = ZoneInfo("Pacific/Auckland")
    day = date(2026, 12, 10)

    def at(d: date, hour: int, minute: int) -> datetime:
        return datetime(d.year, d.month, d.day, hour, minute, tzinfo=zone).astimezone(UTC)

    for when, title in [
        (at(day - timedelta(days=1), 23, 59), "day before, last minute"),
        (at(day, 0, 0), "first minute"),
        (at(day, 23, 59), "last minute"),
        (at(day + timedelta(days=1), 0, 0), "day after, first minute"),
    ]:
        await _appointment(db, user, when, title)
    # Auckland's midnight is 11:00 UTC the day before: a UTC day would cut these wrongly.
    assert await _titles(client, token, day, day) == ["first minute", "last minute"]
    assert await _titles(client, token, day - timedelta(days=1), day) == [
        "day before, last minute",
        "first minute",
        "last minute",
    ]

    # The same account at a London business, whose 29 March 2026 has 23 hours.
    there = await _second_business_member(db, user, "london")
    london = there.tenant
    await _set_zone(db, london, "Europe/London")
    change = date(2026, 3, 29)
    for when, title in [
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "00:30 GMT"),
        (datetime(2026, 3, 29, 22, 59, tzinfo=UTC), "23:59 BST"),
        (datetime(2026, 3, 29, 23, 0, tzinfo=UTC), "next day 00:00 BST"),
    ]:
        await _appointment(db, there, when, title)
    assert await _titles(client, token, change, change) == ["00:30 GMT", "23:59 BST"]
    only_london = await _titles(
        client, token, change, day, contractor=to_base64("Contractor", london.id)
    )
    assert only_london == ["00:30 GMT", "23:59 BST", "next day 00:00 BST"]

    for start, end in [(day, day - timedelta(days=1)), (day, day + timedelta(days=366))]:
        bad = await _send(client, "Appointments", {"from": str(start), "to": str(end)}, token)
        assert error_codes(bad) == ["INVALID_INPUT"]
        assert bad["errors"][0]["extensions"]["field"] == "to"
