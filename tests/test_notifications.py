"""Notifications (E15): the office hears what customers do live, with its badges; a customer
is emailed when its request is accepted, saying what it became."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.db.models import Contact, OutboxEmail, Site
from app.db.scope import SYSTEM
from app.db.session import Database
from app.messages.activity_emails import send_activity_emails
from app.settings import Settings
from tests.support import PORTAL, STAFF, error_codes, gid, gql, make_requests
from tests.test_mail import Clock
from tests.test_messages import SEND, world
from tests.test_messages_live import QUIET, _next, _send, connected, server_on
from tests.test_staff_requests import CONVERT, _inbox_staff

ACTIVITY = "subscription { officeActivity { kind subjectId newRequests unreadMessages } }"


async def _outbox(db: Database) -> list[OutboxEmail]:
    async with db.session(SYSTEM) as session:
        return list(
            await session.scalars(sa.select(OutboxEmail).order_by(col(OutboxEmail.created_at)))
        )


async def test_e15_accepting_a_request_emails_its_sender_what_it_became(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    requests = await make_requests(db, tenant, 3)
    async with db.transaction(SYSTEM) as session:
        for request in requests:
            contact = await session.get(Contact, (tenant.id, request.contact_id))
            assert contact is not None
            contact.email = f"{request.number.lower()}@customer.example"
        # The last one names no site: it cannot become a rental.
        last = await session.merge(requests[2])
        last.site_id = None
    job = await gql(
        client, CONVERT, {"id": gid("ServiceRequest", requests[0].id), "into": "JOB"}, token=token
    )
    assert "errors" not in job, job
    rental = await gql(
        client,
        CONVERT,
        {"id": gid("ServiceRequest", requests[1].id), "into": "RENTAL"},
        token=token,
    )
    assert "errors" not in rental, rental
    refused = await gql(
        client,
        CONVERT,
        {"id": gid("ServiceRequest", requests[2].id), "into": "RENTAL"},
        token=token,
    )
    assert error_codes(refused) == ["INVALID_INPUT"]
    emails = await _outbox(db)
    assert [(e.kind, e.to_address) for e in emails] == [
        ("request_accepted", "sr-0001@customer.example"),
        ("request_accepted", "sr-0002@customer.example"),
    ]
    assert emails[0].subject == f"{tenant.name} accepted your request SR-0001"
    assert "it is now job J-SR-0001" in emails[0].text_body
    assert "it is now rental R-SR-0002" in emails[1].text_body
    assert f"http://127.0.0.1:8000/portal/{tenant.slug}/requests" in emails[0].text_body


async def _activity(socket: Any, count: int) -> list[dict[str, Any]]:
    heard = []
    for _ in range(count):
        message = await _next(socket)
        assert message["type"] == "next", message
        heard.append(message["payload"]["data"]["officeActivity"])
    try:
        extra = await _next(socket, QUIET)
    except TimeoutError:
        return heard
    raise AssertionError(f"more than expected: {extra}")


async def test_e15_the_office_hears_requests_messages_and_quote_decisions_live_with_badges(
    db: Database, database_url: str, settings: Settings
) -> None:
    w = await world(db, settings)
    async with db.session(SYSTEM) as session:
        site = await session.scalar(sa.select(col(Site.id)).where(col(Site.name) == "Yard"))
    with server_on(database_url) as server:
        sockets = {}
        async with contextlib.AsyncExitStack() as stack:
            for who in ("owner", "dispatcher", "technician"):
                socket = await stack.enter_async_context(
                    connected(server, STAFF, {"authorization": f"Bearer {w.tokens[who]}"})
                )
                assert (await _next(socket))["type"] == "connection_ack"
                await socket.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ACTIVITY}})
                )
                sockets[who] = socket
            await asyncio.sleep(0.5)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                asked = await http.post(
                    PORTAL,
                    json={
                        "query": "mutation($input: WorkRequestInput!) { requestWork(input:"
                        " $input) { id } }",
                        "variables": {
                            "input": {
                                "kind": "JOB",
                                "siteId": to_base64("Site", str(site)),
                                "description": "Another unit, please.",
                            }
                        },
                    },
                    headers={"authorization": f"Bearer {w.tokens['ann']}"},
                )
                assert "errors" not in asked.json(), asked.text
                # The badges as they stand when each is heard: one step at a time.
                owner = await _activity(sockets["owner"], 1)
                decided = await http.post(
                    PORTAL,
                    json={
                        "query": "mutation($id: ID!) { decideQuote(quoteId: $id, approve: true)"
                        " { status } }",
                        "variables": {"id": w.ids["quote"]},
                    },
                    headers={"authorization": f"Bearer {w.tokens['ann']}"},
                )
                assert "errors" not in decided.json(), decided.text
                owner += await _activity(sockets["owner"], 1)
                await _send(http, w, "ben", "job", "Is Tuesday still on?")
                owner += await _activity(sockets["owner"], 1)
                # The office's own message is not news to it.
                await _send(http, w, "dispatcher", "job", "It is.")
            dispatcher, technician = await asyncio.gather(
                _activity(sockets["dispatcher"], 1),
                _activity(sockets["technician"], 1),
            )
    request_id = asked.json()["data"]["requestWork"]["id"]
    assert [(a["kind"], a["newRequests"], a["unreadMessages"]) for a in owner] == [
        ("REQUEST_SUBMITTED", 2, 0),
        ("QUOTE_DECIDED", 2, 0),
        ("MESSAGE_RECEIVED", 2, 1),
    ]
    assert owner[0]["subjectId"] == request_id and owner[1]["subjectId"] == w.ids["quote"]
    assert [(a["kind"], a["newRequests"], a["unreadMessages"]) for a in dispatcher] == [
        ("MESSAGE_RECEIVED", None, 1)
    ]
    assert technician[0]["kind"] == "MESSAGE_RECEIVED"


SET_EMAILS = "mutation($p: ActivityEmails!) { setActivityEmails(preference: $p) }"


async def test_e15_staff_are_emailed_what_customers_did_as_each_prefers(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    w = await world(db, settings)
    # Before anyone asks for emails: never told.
    await _send_portal(client, w, "ann", "quote", "Before")
    for who, preference in (("owner", "INSTANT"), ("dispatcher", "DAILY"), ("elsewhere", "NONE")):
        chosen = await gql(client, SET_EMAILS, {"p": preference}, token=w.tokens[who])
        assert chosen["data"] == {"setActivityEmails": preference}, chosen
    mine = await gql(client, "{ activityEmails }", token=w.tokens["owner"])
    assert mine["data"] == {"activityEmails": "INSTANT"}
    clock = Clock()
    clock.advance(seconds=1)
    async with db.session(SYSTEM) as session:
        site = await session.scalar(sa.select(col(Site.id)).where(col(Site.name) == "Yard"))
    asked = await gql(
        client,
        "mutation($input: WorkRequestInput!) { requestWork(input: $input) { number } }",
        {"input": {"kind": "QUOTE", "siteId": to_base64("Site", str(site)), "description": "x"}},
        path=PORTAL,
        token=w.tokens["ben"],
    )
    assert "errors" not in asked, asked
    decided = await gql(
        client,
        "mutation($id: ID!) { decideQuote(quoteId: $id, approve: false) { status } }",
        {"id": w.ids["quote"]},
        path=PORTAL,
        token=w.tokens["ann"],
    )
    assert "errors" not in decided, decided
    await _send_portal(client, w, "sid", "job", "Gate is open")
    clock.advance(seconds=2)
    assert await send_activity_emails(db, settings, now=clock) == 1
    [email] = await _outbox(db)
    assert (email.kind, email.to_address) == ("office_activity", "owner@msgs.example")
    assert email.subject == "3 new from customers"
    number = asked["data"]["requestWork"]["number"]
    for line in (f"Request {number}", "Quote Q-1: declined", "Job J-1: Sid Site"):
        assert line in email.text_body, email.text_body
    assert "Before" not in email.text_body and "Quote Q-1: Jo" not in email.text_body
    # Told once: nothing new, nothing sent; the daily digest waits for its day.
    assert await send_activity_emails(db, settings, now=clock) == 0
    clock.advance(hours=25)
    assert await send_activity_emails(db, settings, now=clock) == 1
    emails = await _outbox(db)
    digest = emails[-1]
    assert digest.to_address == "dana@msgs.example"
    assert digest.subject.startswith(f"Your day at {w.tenant.name}: 1 new")
    # Below the inbox's role: the messages it may read, not requests or quote decisions.
    assert "Job J-1: Sid Site" in digest.text_body and "Request" not in digest.text_body
    assert len(emails) == 2
    refused = await gql(client, SET_EMAILS, {"p": "SOMETIMES"}, token=w.tokens["owner"])
    assert error_codes(refused) == ["BAD_USER_INPUT"], refused


async def _send_portal(client: httpx.AsyncClient, w: Any, who: str, about: str, body: str) -> None:
    sent = await gql(
        client, SEND, {"about": w.ids[about], "body": body}, path=PORTAL, token=w.tokens[who]
    )
    assert "errors" not in sent, sent
