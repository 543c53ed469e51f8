"""A customer withdraws its own request from the portal while the office has not decided on
it (E18), and staff see that it was cancelled and why, over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.db.models import (
    AuditEntry,
    Job,
    RequestStatus,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
    StaffRole,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import PORTAL_SDL
from app.settings import Settings
from tests.support import (
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
OPEN = """mutation ($id: ID!) { openServiceRequest(id: $id) { status cancelReason } }"""
CONVERT = """mutation ($id: ID!) { convertServiceRequest(id: $id, into: JOB) { status } }"""
DECLINE = """mutation ($id: ID!) {
  declineServiceRequest(id: $id, reason: "No") { status } }"""
INBOX = """{ serviceRequests(statuses: [CANCELLED]) { edges { node {
  number status cancelReason decidedAt } } } }"""


async def _send(
    client: httpx.AsyncClient, operation: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    document = (OPERATIONS / f"{operation}.graphql").read_text()
    return await gql(client, document, variables, path=PORTAL, token=token)


class Setting:
    def __init__(self, user: PortalUser, portal: str, staff: str, site: Site) -> None:
        self.user, self.portal, self.staff, self.site = user, portal, staff, site

    async def request(self, client: httpx.AsyncClient) -> str:
        """A new JOB request sent from the portal; its global id."""
        body = await _send(
            client,
            "RequestWork",
            {
                "input": {
                    "kind": "JOB",
                    "siteId": to_base64("Site", self.site.id),
                    "description": "Blocked drain",
                }
            },
            self.portal,
        )
        assert "errors" not in body, body
        return str(body["data"]["requestWork"]["id"])

    async def cancel(self, client: httpx.AsyncClient, request_id: str, reason: str) -> Any:
        return await _send(
            client, "CancelRequest", {"requestId": request_id, "reason": reason}, self.portal
        )


async def _setting(db: Database, settings: Settings) -> Setting:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.ASSISTANT_MANAGER)
    user = await make_portal_user(db, tenant)
    site = Site(
        tenant_id=tenant.id, customer_id=user.customer.id, name="Depot", address_line1="1 Quay"
    )
    async with db.transaction(SYSTEM) as session:
        session.add(site)
    return Setting(
        user,
        await portal_token(db, settings, user.account),
        await staff_token(db, settings, manager),
        site,
    )


async def _request_row(db: Database, global_id: str) -> ServiceRequest:
    async with db.session(SYSTEM) as session:
        rows = list(await session.scalars(sa.select(ServiceRequest)))
    [row] = [r for r in rows if to_base64("ServiceRequest", r.id) == global_id]
    return row


async def test_e18_a_customer_cancels_a_new_or_read_request_and_staff_see_why(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    s = await _setting(db, settings)
    new, read = await s.request(client), await s.request(client)
    assert "errors" not in await gql(client, OPEN, {"id": read}, token=s.staff)

    for request_id, reason in [(new, "Fixed it ourselves"), (read, "Wrong site\nsorry")]:
        body = await s.cancel(client, request_id, f"  {reason} ")
        assert body["data"]["cancelRequest"] == {
            "id": request_id,
            "status": "CANCELLED",
            "cancelReason": reason,
        }
    inbox = await gql(client, INBOX, token=s.staff)
    nodes = [edge["node"] for edge in inbox["data"]["serviceRequests"]["edges"]]
    assert sorted(n["cancelReason"] for n in nodes) == ["Fixed it ourselves", "Wrong site\nsorry"]
    assert all(n["status"] == "CANCELLED" and n["decidedAt"] for n in nodes)
    opened = await gql(client, OPEN, {"id": new}, token=s.staff)
    assert opened["data"]["openServiceRequest"] == {
        "status": "CANCELLED",
        "cancelReason": "Fixed it ourselves",
    }
    listed = await _send(client, "Requests", {}, s.portal)
    assert {e["node"]["status"] for e in listed["data"]["requests"]["edges"]} == {"CANCELLED"}

    row = await _request_row(db, new)
    async with db.session(SYSTEM) as session:
        events = list(
            await session.scalars(
                sa.select(ServiceRequestEvent)
                .where(col(ServiceRequestEvent.request_id) == row.id)
                .order_by(col(ServiceRequestEvent.created_at))
            )
        )
        [entry] = await session.scalars(
            sa.select(AuditEntry).where(col(AuditEntry.subject_id) == row.id)
        )
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, RequestStatus.NEW),
        (RequestStatus.NEW, RequestStatus.CANCELLED),
    ]
    assert events[-1].account_id == s.user.account.id and events[-1].note == "Fixed it ourselves"
    assert entry.action == "request.cancelled" and entry.actor_account_id == s.user.account.id
    assert entry.actor_staff_id is None

    # Staff can no longer decide on it, and it cannot be cancelled twice.
    assert error_codes(await gql(client, CONVERT, {"id": new}, token=s.staff)) == [
        "REQUEST_CANCELLED"
    ]
    assert error_codes(await gql(client, DECLINE, {"id": new}, token=s.staff)) == [
        "REQUEST_CANCELLED"
    ]
    assert error_codes(await s.cancel(client, new, "again")) == ["REQUEST_ALREADY_DECIDED"]


async def test_e18_decided_requests_bad_reasons_and_others_requests_cannot_be_cancelled(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    s = await _setting(db, settings)
    converted, declined, open_one = [await s.request(client) for _ in range(3)]
    assert "errors" not in await gql(client, CONVERT, {"id": converted}, token=s.staff)
    assert "errors" not in await gql(client, DECLINE, {"id": declined}, token=s.staff)
    for request_id in (converted, declined):
        body = await s.cancel(client, request_id, "Changed my mind")
        assert error_codes(body) == ["REQUEST_ALREADY_DECIDED"]
        assert body["errors"][0]["extensions"]["field"] == "id"
    for reason in ["", "   ", "x" * 2001, "tab\there"]:
        body = await s.cancel(client, open_one, reason)
        assert error_codes(body) == ["INVALID_INPUT"], reason
        assert body["errors"][0]["extensions"]["field"] == "reason"
    # Another customer of the same business finds no such request.
    stranger = await make_portal_user(db, s.user.tenant, email="kim@other.example", username="kim")
    token = await portal_token(db, settings, stranger.account)
    body = await _send(
        client, "CancelRequest", {"requestId": open_one, "reason": "Not mine"}, token
    )
    assert error_codes(body) == ["NOT_FOUND"]
    assert (await _request_row(db, open_one)).status is RequestStatus.NEW


async def test_e18_a_cancel_racing_staff_opening_and_converting_happens_exactly_once(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    s = await _setting(db, settings)
    for _ in range(3):
        request_id = await s.request(client)
        cancel, opened, converted = await asyncio.gather(
            s.cancel(client, request_id, "No longer needed"),
            gql(client, OPEN, {"id": request_id}, token=s.staff),
            gql(client, CONVERT, {"id": request_id}, token=s.staff),
        )
        assert "errors" not in opened, opened
        row = await _request_row(db, request_id)
        async with db.session(SYSTEM) as session:
            jobs = list(
                await session.scalars(sa.select(Job).where(col(Job.source_request_id) == row.id))
            )
            steps = list(
                await session.scalars(
                    sa.select(col(ServiceRequestEvent.to_status)).where(
                        col(ServiceRequestEvent.request_id) == row.id
                    )
                )
            )
        if "errors" in cancel:
            assert error_codes(cancel) == ["REQUEST_ALREADY_DECIDED"]
            assert converted["data"]["convertServiceRequest"]["status"] == "COMPLETED"
            assert row.status is RequestStatus.COMPLETED and len(jobs) == 1
            assert RequestStatus.CANCELLED not in steps
        else:
            assert error_codes(converted) == ["REQUEST_CANCELLED"]
            assert row.status is RequestStatus.CANCELLED and jobs == []
            assert RequestStatus.COMPLETED not in steps
        assert steps.count(RequestStatus.CANCELLED) + steps.count(RequestStatus.COMPLETED) == 1
