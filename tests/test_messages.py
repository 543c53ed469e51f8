"""Messages between the office and its customers (E13): who reads and writes each thread,
plain text only, unread counts per side, the authors each side sees, and the statements a
screen costs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import from_base64, to_base64

from app.auth.passwords import hash_password
from app.db.base import utcnow
from app.db.models import (
    Contact,
    ContactKind,
    Customer,
    Invoice,
    InvoiceStatus,
    Job,
    JobVisit,
    Message,
    MessageThread,
    PortalAccount,
    PortalMembership,
    Quote,
    QuoteStatus,
    RequestStatus,
    ServiceRequest,
    Site,
    StaffRole,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.mail import OutboxWorker
from app.mail.setup import mail_worker
from app.messages.notices import send_message_notices
from app.schema.trusted import OPERATIONS
from app.settings import Settings
from tests.conftest import make_settings
from tests.smtp import SmtpServer
from tests.support import (
    PORTAL,
    STAFF,
    count_statements,
    error_codes,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)
from tests.test_mail import Clock

SEND = "mutation($about: ID!, $body: String!) { sendMessage(about: $about, body: $body) { id body authorName thread { id title } } }"  # noqa: E501
THREADS = "{ unreadMessageCount messageThreads { edges { node { id title subjectType subjectId unreadCount } } } }"  # noqa: E501
READ = "mutation($id: ID!) { markMessageThreadRead(id: $id) { id unreadCount } }"
THREAD = """query($about: ID!, $first: Int, $after: String) {
  messageThread(about: $about) {
    id unreadCount
    messages(first: $first, after: $after) {
      edges { cursor node { id body authorName } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


@pytest.fixture
def mailbox() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@dataclass
class World:
    tenant: Tenant
    customer: Customer
    other: Customer
    tokens: dict[str, str]
    ids: dict[str, str]


def _gid(type_name: str, row_id: uuid.UUID) -> str:
    return to_base64(type_name, str(row_id))


async def _staff(db: Database, tenant: Tenant, role: StaffRole, name: str) -> StaffUser:
    user = StaffUser(
        tenant_id=tenant.id,
        email=f"{name.split()[0].lower()}@{tenant.slug}.example",
        name=name,
        role=role,
    )
    async with db.transaction(SYSTEM) as session:
        session.add(user)
    return user


async def _site_contact(db: Database, customer: Customer, site: Site) -> PortalAccount:
    async with db.transaction(SYSTEM) as session:
        contact = Contact(
            tenant_id=customer.tenant_id,
            customer_id=customer.id,
            site_id=site.id,
            kind=ContactKind.SITE,
            name="Sid Site",
            email="sid@a.example",
            portal_access=True,
        )
        account = PortalAccount(
            email="sid@a.example", username="sid", name="Sid Site", password_hash=hash_password("x")
        )
        session.add_all([contact, account])
        await session.flush()
        session.add(
            PortalMembership(
                tenant_id=customer.tenant_id, account_id=account.id, contact_id=contact.id
            )
        )
    return account


async def world(db: Database, settings: Settings) -> World:
    """A business with staff at three roles; a customer with two company users and a site
    contact; another customer with a user of its own; a job at the site (a technician's),
    a job without a site, a sent quote, an unpaid invoice and a request."""
    tenant, owner = await make_tenant(db, slug="msgs")
    dispatcher = await _staff(db, tenant, StaffRole.DISPATCHER, "Dana Dispatch")
    technician = await _staff(db, tenant, StaffRole.TECHNICIAN, "Theo Tech")
    elsewhere = await _staff(db, tenant, StaffRole.TECHNICIAN, "Tara Elsewhere")
    ann = await make_portal_user(db, tenant, email="ann@a.example", username="ann")
    customer = ann.customer
    ben = await make_portal_user(
        db, tenant, email="ben@a.example", username="ben", customer=customer
    )
    cat = await make_portal_user(db, tenant, email="cat@b.example", username="cat")
    today = date.today()
    async with db.transaction(SYSTEM) as session:
        site = Site(tenant_id=tenant.id, customer_id=customer.id, name="Yard", address_line1="1")
        session.add(site)
        await session.flush()
        rows: dict[str, Any] = {
            "job": Job(
                tenant_id=tenant.id,
                customer_id=customer.id,
                site_id=site.id,
                number="J-1",
                title="Pump out",
            ),
            "company_job": Job(
                tenant_id=tenant.id, customer_id=customer.id, number="J-2", title="Office"
            ),
            "quote": Quote(
                tenant_id=tenant.id,
                customer_id=customer.id,
                number="Q-1",
                title="Units",
                status=QuoteStatus.SENT,
                currency="GBP",
            ),
            "invoice": Invoice(
                tenant_id=tenant.id,
                customer_id=customer.id,
                number="INV-1",
                status=InvoiceStatus.UNPAID,
                currency="GBP",
                total_minor=100,
                issued_on=today,
                due_on=today + timedelta(days=30),
            ),
            "request": ServiceRequest(
                tenant_id=tenant.id,
                customer_id=customer.id,
                site_id=site.id,
                number="SR-1",
                status=RequestStatus.NEW,
            ),
            "other_job": Job(
                tenant_id=tenant.id, customer_id=cat.customer.id, number="J-9", title="Theirs"
            ),
        }
        session.add_all(rows.values())
        await session.flush()
        now = utcnow()
        session.add(
            JobVisit(
                tenant_id=tenant.id,
                job_id=rows["job"].id,
                starts_at=now,
                ends_at=now + timedelta(hours=1),
                technician_id=technician.id,
            )
        )
    sid = await _site_contact(db, customer, site)
    names = {"job": "Job", "company_job": "Job", "other_job": "Job", "quote": "Quote"}
    names |= {"invoice": "Invoice", "request": "ServiceRequest"}
    tokens = {
        "owner": await staff_token(db, settings, owner),
        "dispatcher": await staff_token(db, settings, dispatcher),
        "technician": await staff_token(db, settings, technician),
        "elsewhere": await staff_token(db, settings, elsewhere),
        "ann": await portal_token(db, settings, ann.account),
        "ben": await portal_token(db, settings, ben.account),
        "cat": await portal_token(db, settings, cat.account),
        "sid": await portal_token(db, settings, sid),
    }
    ids = {key: _gid(names[key], row.id) for key, row in rows.items()}
    return World(tenant, customer, cat.customer, tokens, ids)


def _path(who: str) -> str:
    return PORTAL if who in {"ann", "ben", "cat", "sid"} else STAFF


async def send(client: httpx.AsyncClient, w: World, who: str, about: str, body: str) -> Any:
    return await gql(
        client, SEND, {"about": about, "body": body}, path=_path(who), token=w.tokens[who]
    )


async def threads(client: httpx.AsyncClient, w: World, who: str) -> dict[str, Any]:
    body = await gql(client, THREADS, path=_path(who), token=w.tokens[who])
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _titles(data: dict[str, Any]) -> set[str]:
    return {edge["node"]["title"] for edge in data["messageThreads"]["edges"]}


async def test_e13_a_thread_is_read_and_written_by_exactly_who_sees_its_record(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    for key in ("job", "company_job", "quote", "invoice", "request"):
        sent = await send(client, w, "dispatcher", w.ids[key], f"About {key}")
        assert "errors" not in sent, sent
    everything = {"Job J-1", "Job J-2", "Quote Q-1", "Invoice INV-1", "Request SR-1"}
    assert _titles(await threads(client, w, "ann")) == everything
    assert _titles(await threads(client, w, "ben")) == everything
    # A site contact: its own site's job and request, never an invoice or the company's.
    assert _titles(await threads(client, w, "sid")) == {"Job J-1", "Request SR-1"}
    assert _titles(await threads(client, w, "cat")) == set()
    # The technician on the job's visit sees that thread only; another technician none.
    assert _titles(await threads(client, w, "technician")) == {"Job J-1"}
    assert _titles(await threads(client, w, "elsewhere")) == set()
    assert _titles(await threads(client, w, "owner")) == everything

    for who, about in (
        ("cat", w.ids["job"]),
        ("sid", w.ids["invoice"]),
        ("sid", w.ids["company_job"]),
        ("elsewhere", w.ids["job"]),
        ("technician", w.ids["invoice"]),
        ("ann", w.ids["other_job"]),
    ):
        refused = await send(client, w, who, about, "Let me in")
        assert error_codes(refused) == ["NOT_FOUND"], (who, refused)
        got = await gql(client, THREAD, {"about": about}, path=_path(who), token=w.tokens[who])
        assert got["data"] == {"messageThread": None}, (who, got)
    # Ids of another type are not conversations.
    wrong = await send(client, w, "ann", _gid("Customer", w.customer.id), "Hello")
    assert error_codes(wrong) == ["NOT_FOUND"]

    assert "errors" not in await send(client, w, "sid", w.ids["job"], "Gate code is 1234")
    assert "errors" not in await send(client, w, "technician", w.ids["job"], "On my way")
    async with db.session(SYSTEM) as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(Message))
        threads_made = await session.scalar(sa.select(sa.func.count()).select_from(MessageThread))
    assert (count, threads_made) == (7, 5)


async def test_e13_each_side_has_its_own_unread_counts_and_reading_marks_them_read(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    for body in ("One", "Two"):
        assert "errors" not in await send(client, w, "dispatcher", w.ids["job"], body)
    assert "errors" not in await send(client, w, "dispatcher", w.ids["quote"], "Three")
    ann = await threads(client, w, "ann")
    assert ann["unreadMessageCount"] == 3
    assert sorted(e["node"]["unreadCount"] for e in ann["messageThreads"]["edges"]) == [1, 2]
    assert (await threads(client, w, "dispatcher"))["unreadMessageCount"] == 0
    assert (await threads(client, w, "sid"))["unreadMessageCount"] == 2

    job_thread = (
        await gql(client, THREAD, {"about": w.ids["job"]}, path=PORTAL, token=w.tokens["ann"])
    )["data"]["messageThread"]
    read = await gql(client, READ, {"id": job_thread["id"]}, path=PORTAL, token=w.tokens["ben"])
    assert read["data"]["markMessageThreadRead"]["unreadCount"] == 0
    # The customer's side has read it, whoever of them did.
    assert (await threads(client, w, "ann"))["unreadMessageCount"] == 1

    assert "errors" not in await send(client, w, "ann", w.ids["job"], "Thanks")
    assert "errors" not in await send(client, w, "sid", w.ids["job"], "And me")
    office = await threads(client, w, "dispatcher")
    assert office["unreadMessageCount"] == 2
    assert (await threads(client, w, "ann"))["unreadMessageCount"] == 1
    read = await gql(client, READ, {"id": job_thread["id"]}, token=w.tokens["technician"])
    assert read["data"]["markMessageThreadRead"]["unreadCount"] == 0
    assert (await threads(client, w, "owner"))["unreadMessageCount"] == 0
    # A thread out of reach cannot be marked, and says no more than a made-up one.
    refused = await gql(client, READ, {"id": job_thread["id"]}, path=PORTAL, token=w.tokens["cat"])
    assert error_codes(refused) == ["NOT_FOUND"]


async def test_e13_unread_counts_are_exact_under_concurrent_first_sends(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    results = await asyncio.gather(
        *(
            send(client, w, who, w.ids["job"], f"Message {n}")
            for n, who in enumerate(["ann", "ben", "sid"] * 4)
        )
    )
    assert all("errors" not in result for result in results), results
    office = await threads(client, w, "dispatcher")
    assert office["unreadMessageCount"] == 12
    assert [e["node"]["unreadCount"] for e in office["messageThreads"]["edges"]] == [12]
    assert len({result["data"]["sendMessage"]["thread"]["id"] for result in results}) == 1


async def test_e13_messages_are_plain_text_within_a_length_and_nothing_is_written_otherwise(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    for body in ("", "   ", "ring \x07 bell", "tab\there", "a\u202eb", "x" * 4001):
        refused = await send(client, w, "ann", w.ids["job"], body)
        assert error_codes(refused) == ["INVALID_INPUT"], (body, refused)
        assert refused["errors"][0]["extensions"]["field"] == "body"
    async with db.session(SYSTEM) as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(MessageThread)) == 0
    kept = await send(client, w, "ann", w.ids["job"], "  Line one\r\nLine two  ")
    assert kept["data"]["sendMessage"]["body"] == "Line one\nLine two"


async def test_e13_staff_see_which_portal_user_wrote_and_customers_see_the_business(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    await send(client, w, "dispatcher", w.ids["job"], "From the office")
    await send(client, w, "ann", w.ids["job"], "From Ann")
    query = """query($about: ID!) { messageThread(about: $about) { messages { edges { node {
        body authorName %s } } } } }"""
    portal = await gql(
        client,
        query % "fromContractor fromYou",
        {"about": w.ids["job"]},
        path=PORTAL,
        token=w.tokens["ben"],
    )
    nodes = [e["node"] for e in portal["data"]["messageThread"]["messages"]["edges"]]
    assert nodes == [
        {
            "body": "From Ann",
            "authorName": "Jo Customer",
            "fromContractor": False,
            "fromYou": False,
        },
        {
            "body": "From the office",
            "authorName": w.tenant.name,
            "fromContractor": True,
            "fromYou": False,
        },
    ]
    staff = await gql(
        client,
        query % "fromCustomer authorEmail staffUser { name }",
        {"about": w.ids["job"]},
        token=w.tokens["owner"],
    )
    nodes = [e["node"] for e in staff["data"]["messageThread"]["messages"]["edges"]]
    assert nodes == [
        {
            "body": "From Ann",
            "authorName": "Jo Customer",
            "fromCustomer": True,
            "authorEmail": "ann@a.example",
            "staffUser": None,
        },
        {
            "body": "From the office",
            "authorName": "Dana Dispatch",
            "fromCustomer": False,
            "authorEmail": None,
            "staffUser": {"name": "Dana Dispatch"},
        },
    ]
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant)
            .where(col(Tenant.id) == w.tenant.id)
            .values(message_staff_first_names=True)
        )
    portal = await gql(
        client, query % "fromYou", {"about": w.ids["job"]}, path=PORTAL, token=w.tokens["ann"]
    )
    nodes = [e["node"] for e in portal["data"]["messageThread"]["messages"]["edges"]]
    assert [(n["authorName"], n["fromYou"]) for n in nodes] == [
        ("Jo Customer", True),
        (f"Dana at {w.tenant.name}", False),
    ]


async def test_e13_a_thread_pages_newest_first_by_cursor(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    for n in range(5):
        await send(client, w, "dispatcher" if n % 2 else "ann", w.ids["quote"], f"M{n}")
    seen: list[str] = []
    after = None
    while True:
        page = await gql(
            client,
            THREAD,
            {"about": w.ids["quote"], "first": 2, "after": after},
            path=PORTAL,
            token=w.tokens["ann"],
        )
        messages = page["data"]["messageThread"]["messages"]
        seen += [edge["node"]["body"] for edge in messages["edges"]]
        if not messages["pageInfo"]["hasNextPage"]:
            break
        after = messages["pageInfo"]["endCursor"]
    assert seen == ["M4", "M3", "M2", "M1", "M0"]
    forged = await gql(
        client,
        THREAD,
        {"about": w.ids["quote"], "after": "bm9wZQ=="},
        path=PORTAL,
        token=w.tokens["ann"],
    )
    assert error_codes(forged) == ["INVALID_CURSOR"]


async def _fill(db: Database, count: int) -> None:
    """`count` more messages on each thread, from both sides."""
    async with db.transaction(SYSTEM) as session:
        account = await session.scalar(
            sa.select(col(PortalAccount.id)).where(col(PortalAccount.username) == "ann")
        )
        staff = await session.scalar(sa.select(col(StaffUser.id)).limit(1))
        for thread in list(await session.scalars(sa.select(MessageThread))):
            session.add_all(
                Message(
                    tenant_id=thread.tenant_id,
                    thread_id=thread.id,
                    author_account_id=None if n % 2 else account,
                    author_staff_id=staff if n % 2 else None,
                    author_name="Someone",
                    body=f"Filler {n}",
                )
                for n in range(count)
            )


async def _operation_statements(
    db: Database, client: httpx.AsyncClient, token: str, name: str, variables: dict[str, Any]
) -> int:
    with count_statements(db) as counter:
        response = await client.post(
            PORTAL,
            json={
                "query": (OPERATIONS / f"{name}.graphql").read_text(),
                "operationName": name,
                "variables": variables,
            },
            headers={"authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert "errors" not in body and all(body["data"].values()), body
    return counter.count


async def test_e13_the_threads_list_and_a_thread_cost_the_same_statements_at_10_and_200(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    for key in ("job", "quote", "invoice", "request"):
        await send(client, w, "dispatcher", w.ids[key], "Start")
    counts: dict[int, tuple[int, int]] = {}
    total = 1
    for target in (10, 200):
        await _fill(db, target - total)
        total = target
        token = w.tokens["ann"]
        listing = await _operation_statements(db, client, token, "MessageThreads", {})
        page = await _operation_statements(
            db, client, token, "MessageThread", {"about": w.ids["job"], "first": 100}
        )
        counts[target] = (listing, page)
    # The sign-in state, the badge, the page of threads, their unread counts, the businesses;
    # and the sign-in state, the thread, its messages, its unread count, its business.
    assert counts == {10: (5, 5), 200: (5, 5)}


async def test_e13_an_unread_message_is_emailed_once_after_the_delay_to_who_may_read_it(
    db: Database, database_url: str, client: httpx.AsyncClient, mailbox: SmtpServer
) -> None:
    settings = make_settings(database_url, smtp_url=mailbox.url)
    w = await world(db, settings)
    clock = Clock()
    worker = OutboxWorker(db, settings)
    assert "errors" not in await send(client, w, "dispatcher", w.ids["job"], "We come Monday")
    assert "errors" not in await send(client, w, "ann", w.ids["invoice"], "Paid it")
    # Not yet: the business's delay (15 minutes by default) has not passed.
    clock.advance(minutes=14)
    assert await send_message_notices(db, settings, now=clock) == 0
    clock.advance(minutes=2)
    assert await send_message_notices(db, settings, now=clock) == 3
    assert await worker.deliver_due() == 3
    # Everyone who sees the job: both company users and the site's contact; not the other
    # customer, and nobody about the office's own unread message.
    assert sorted(mailbox.inbox.recipients) == ["ann@a.example", "ben@a.example", "sid@a.example"]
    message = mailbox.inbox.messages[0]
    assert message["Subject"] == f"New message from {w.tenant.name}: Job J-1"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    thread_id = to_base64("MessageThread", str(await _thread_of(db, w.ids["job"])))
    assert f"http://127.0.0.1:8000/portal/msgs/messages/{thread_id}" in text.get_content()

    # Once until they read it, however many more messages wait.
    assert "errors" not in await send(client, w, "dispatcher", w.ids["job"], "Or Tuesday")
    clock.advance(minutes=30)
    assert await send_message_notices(db, settings, now=clock) == 0
    read = await gql(client, READ, {"id": thread_id}, path=PORTAL, token=w.tokens["sid"])
    assert "errors" not in read, read
    assert "errors" not in await send(client, w, "dispatcher", w.ids["job"], "Confirmed")
    assert await send_message_notices(db, settings) == 0
    clock = Clock()
    clock.advance(minutes=16)
    assert await send_message_notices(db, settings, now=clock) == 3
    assert await worker.deliver_due() == 3
    assert len(mailbox.inbox.messages) == 6


async def test_e13_the_business_sets_the_delay_and_the_mail_worker_sends_the_notices(
    db: Database, database_url: str, client: httpx.AsyncClient, mailbox: SmtpServer
) -> None:
    settings = make_settings(database_url, smtp_url=mailbox.url)
    w = await world(db, settings)
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.id) == w.tenant.id).values(message_notice_minutes=0)
        )
    assert "errors" not in await send(client, w, "owner", w.ids["invoice"], "Due Friday")
    assert await mail_worker(db, settings).deliver_due() == 2
    # Invoices are the company's: its two users, never the site contact.
    assert sorted(mailbox.inbox.recipients) == ["ann@a.example", "ben@a.example"]
    assert await mail_worker(db, settings).deliver_due() == 0


async def _thread_of(db: Database, about: str) -> uuid.UUID:
    async with db.session(SYSTEM) as session:
        found = await session.scalar(
            sa.select(col(MessageThread.id)).where(
                col(MessageThread.subject_id) == uuid.UUID(from_base64(about)[1])
            )
        )
    assert found is not None
    return uuid.UUID(str(found))


async def test_e13_a_manager_sets_the_notice_delay_and_first_names_within_bounds(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    w = await world(db, settings)
    change = """mutation($input: PortalSettingsChanges!) { updatePortalSettings(input: $input) {
        messageNoticeMinutes messageStaffFirstNames } }"""
    for wrong in (-1, 10081, None):
        refused = await gql(
            client, change, {"input": {"messageNoticeMinutes": wrong}}, token=w.tokens["owner"]
        )
        assert error_codes(refused) == ["INVALID_INPUT"], refused
        assert refused["errors"][0]["extensions"]["field"] == "messageNoticeMinutes"
    changed = await gql(
        client,
        change,
        {"input": {"messageNoticeMinutes": 60, "messageStaffFirstNames": True}},
        token=w.tokens["owner"],
    )
    assert changed["data"]["updatePortalSettings"] == {
        "messageNoticeMinutes": 60,
        "messageStaffFirstNames": True,
    }
    async with db.session(SYSTEM) as session:
        tenant = await session.get(Tenant, w.tenant.id)
    assert tenant is not None and tenant.message_notice_minutes == 60
    refused = await gql(
        client, change, {"input": {"messageNoticeMinutes": 5}}, token=w.tokens["dispatcher"]
    )
    assert error_codes(refused) == ["ROLE_FORBIDDEN"]
