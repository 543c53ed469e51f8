"""What the office sees of its customers' portal use (S11): each contact's portal state, and
an audit trail that names the portal user behind a change and filters by actor, kind,
action and day, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.db.models import AuditEntry, Contact, ContactKind, StaffRole, Tenant
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import PORTAL_SDL
from app.settings import Settings
from tests.support import (
    PASSWORD,
    PORTAL,
    count_statements,
    error_codes,
    gql,
    make_portal_user,
    make_tenant,
    staff_token,
)

OPERATIONS = PORTAL_SDL.parent / "operations"
STATES = """query ($id: ID!) { node(id: $id) { ... on Customer {
  contacts { name portalState { stage invitedAt invitationExpiresAt lastSignInAt } } } } }"""
ACCESS = """mutation ($id: ID!, $on: Boolean!) {
  setContactPortalAccess(contactId: $id, enabled: $on) { id } }"""
TRAIL = """query ($actor: ID, $kind: ActorKind, $action: String, $from: Date, $to: Date) {
  auditTrail(actor: $actor, actorKind: $kind, action: $action, from: $from, to: $to,
             first: 100) {
    edges { node { action actorKind actor { __typename name email
      ... on PortalActor { id } ... on StaffUser { id role } } } }
  }
}"""


async def _contacts(db: Database, tenant: Tenant, customer_id: Any, *names: str) -> list[Contact]:
    rows = [
        Contact(
            tenant_id=tenant.id,
            customer_id=customer_id,
            kind=ContactKind.COMPANY,
            name=name,
            email=f"{name.lower()}@customer.example",
        )
        for name in names
    ]
    async with db.transaction(SYSTEM) as session:
        session.add_all(rows)
    return rows


def _by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert "errors" not in body, body
    return {c["name"]: c["portalState"] for c in body["data"]["node"]["contacts"]}


async def test_s11_each_contact_shows_not_invited_invited_active_or_switched_off(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    user = await make_portal_user(db, tenant)
    customer = to_base64("Customer", user.customer.id)
    _, invited, leaving = await _contacts(db, tenant, user.customer.id, "Nell", "Ivy", "Lou")
    for contact in (invited, leaving):
        body = await gql(
            client, ACCESS, {"id": to_base64("Contact", contact.id), "on": True}, token=token
        )
        assert "errors" not in body, body
    off = await gql(
        client, ACCESS, {"id": to_base64("Contact", leaving.id), "on": False}, token=token
    )
    assert "errors" not in off, off

    states = _by_name(await gql(client, STATES, {"id": customer}, token=token))
    assert states["Nell"] == {
        "stage": "NOT_INVITED",
        "invitedAt": None,
        "invitationExpiresAt": None,
        "lastSignInAt": None,
    }
    ivy = states["Ivy"]
    assert ivy["stage"] == "INVITED" and ivy["lastSignInAt"] is None
    sent = datetime.fromisoformat(ivy["invitedAt"])
    expires = datetime.fromisoformat(ivy["invitationExpiresAt"])
    assert abs(sent - datetime.now(UTC)) < timedelta(minutes=5)
    assert expires - sent == timedelta(days=7)
    assert states["Lou"]["stage"] == "SWITCHED_OFF" and states["Lou"]["invitedAt"] is not None
    # Jo signed up but has not signed in yet; then signs in.
    assert states["Jo Customer"]["stage"] == "ACTIVE"
    assert states["Jo Customer"]["lastSignInAt"] is None
    signed = await gql(
        client,
        (OPERATIONS / "SignIn.graphql").read_text(),
        {"login": "jo", "password": PASSWORD, "client": "MOBILE"},
        path=PORTAL,
    )
    assert "errors" not in signed, signed
    after = _by_name(await gql(client, STATES, {"id": customer}, token=token))
    seen = datetime.fromisoformat(after["Jo Customer"]["lastSignInAt"])
    assert abs(seen - datetime.now(UTC)) < timedelta(minutes=5)
    assert {name: state["stage"] for name, state in after.items()} == {
        "Jo Customer": "ACTIVE",
        "Nell": "NOT_INVITED",
        "Ivy": "INVITED",
        "Lou": "SWITCHED_OFF",
    }


async def test_s11_contact_states_cost_the_same_statements_for_10_and_200_contacts(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    user = await make_portal_user(db, tenant)
    customer = to_base64("Customer", user.customer.id)
    await _contacts(db, tenant, user.customer.id, *(f"A{n:03d}" for n in range(9)))
    with count_statements(db) as ten:
        small = _by_name(await gql(client, STATES, {"id": customer}, token=token))
    await _contacts(db, tenant, user.customer.id, *(f"B{n:03d}" for n in range(190)))
    with count_statements(db) as two_hundred:
        large = _by_name(await gql(client, STATES, {"id": customer}, token=token))
    assert (len(small), len(large)) == (10, 200)
    assert ten.count == two_hundred.count, (ten.statements, two_hundred.statements)


async def _entry(db: Database, tenant: Tenant, action: str, at: datetime) -> None:
    async with db.transaction(SYSTEM) as session:
        session.add(
            AuditEntry(
                tenant_id=tenant.id,
                action=action,
                subject_type="Tenant",
                subject_id=tenant.id,
                created_at=at,
            )
        )


async def test_s11_the_trail_names_the_portal_user_and_filters_by_actor_kind_action_and_day(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.id) == tenant.id).values(time_zone="Asia/Tokyo")
        )
    user = await make_portal_user(db, tenant)
    portal = await gql(
        client,
        (OPERATIONS / "SignIn.graphql").read_text(),
        {"login": "jo", "password": PASSWORD, "client": "MOBILE"},
        path=PORTAL,
    )
    portal_token = portal["data"]["signIn"]["tokens"]["accessToken"]
    added = await gql(
        client,
        (OPERATIONS / "AddContact.graphql").read_text(),
        {"input": {"name": "Ann Added"}},
        path=PORTAL,
        token=portal_token,
    )
    assert "errors" not in added, added
    [ann] = await _contacts(db, tenant, user.customer.id, "Zed")
    staff_change = await gql(
        client, ACCESS, {"id": to_base64("Contact", ann.id), "on": True}, token=token
    )
    assert "errors" not in staff_change, staff_change

    async def trail(**variables: Any) -> list[dict[str, Any]]:
        body = await gql(client, TRAIL, variables, token=token)
        assert "errors" not in body, body
        return [edge["node"] for edge in body["data"]["auditTrail"]["edges"]]

    [by_portal] = await trail(kind="PORTAL")
    assert by_portal["actorKind"] == "PORTAL"
    assert by_portal["actor"] == {
        "__typename": "PortalActor",
        "name": "Jo Customer",
        "email": "jo@customer.example",
        "id": to_base64("PortalActor", user.account.id),
    }
    assert await trail(actor=by_portal["actor"]["id"]) == [by_portal]
    staff_entries = await trail(kind="STAFF")
    assert [e["action"] for e in staff_entries] == ["portal_access.enabled"]
    assert staff_entries[0]["actor"]["__typename"] == "StaffUser"
    assert await trail(actor=to_base64("StaffUser", manager.id)) == staff_entries
    assert await trail(action="portal_access.enabled") == staff_entries
    assert [e["action"] for e in await trail(action="portal_access.")] == ["portal_access.enabled"]
    assert await trail(action="portal_access") == []
    assert await trail(kind="SYSTEM") == []

    # Days are Tokyo's (UTC+9): 15:00 UTC on 1 March is already 2 March there.
    await _entry(db, tenant, "system.late", datetime(2026, 3, 1, 14, 59, tzinfo=UTC))
    await _entry(db, tenant, "system.next_day", datetime(2026, 3, 1, 15, 0, tzinfo=UTC))
    await _entry(db, tenant, "system.day_after", datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    on_first = await trail(**{"from": "2026-03-01", "to": "2026-03-01"})
    assert [e["action"] for e in on_first] == ["system.late"]
    on_second = await trail(**{"from": "2026-03-02", "to": "2026-03-02", "kind": "SYSTEM"})
    assert [e["action"] for e in on_second] == ["system.next_day"]
    assert on_second[0]["actor"] is None
    assert len(await trail(**{"from": "2026-03-01", "to": "2026-03-03"})) == 3

    for variables, field in [
        ({"actor": to_base64("Contact", ann.id)}, "actor"),
        ({"actor": "not an id"}, "actor"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
    ]:
        bad = await gql(client, TRAIL, variables, token=token)
        assert error_codes(bad) == ["INVALID_INPUT"], variables
        assert bad["errors"][0]["extensions"]["field"] == field
