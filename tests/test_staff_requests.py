"""S6-S8 over HTTP: the requests inbox, opening a request, converting and declining, with
the races of two staff at once (run on PostgreSQL too, with real row locks)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.db.models import (
    AuditEntry,
    Contact,
    Customer,
    Job,
    OutboxEmail,
    Rental,
    RequestableItem,
    RequestStatus,
    ServiceRequest,
    ServiceRequestEvent,
    Site,
    StaffRole,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM, Scope
from app.db.session import Database
from app.settings import Settings
from tests.support import (
    count_statements,
    error_codes,
    gid,
    gql,
    make_requests,
    make_tenant,
    rows,
    staff_token,
)

INBOX = """query ($statuses: [RequestStatus!], $search: String, $first: Int, $after: String) {
  serviceRequests(statuses: $statuses, search: $search, first: $first, after: $after) {
    edges { node { number status } }
    pageInfo { hasNextPage endCursor }
  }
}"""
INBOX_IN_FULL = """query {
  unreadServiceRequestCount
  serviceRequests(first: 100) {
    edges { node {
      number status productName serviceName poNumber
      customer { name } site { siteNumber } contact { name }
      product { name } service { name } readBy { name } decidedBy { name }
      convertedJob { number } convertedRental { reference } history { toStatus }
    } }
  }
}"""
OPEN = """mutation ($id: ID!) {
  openServiceRequest(id: $id) {
    status readAt readBy { name } history { fromStatus toStatus staffUser { name } }
  }
}"""
CONVERT = """mutation ($id: ID!, $into: Conversion!) {
  convertServiceRequest(id: $id, into: $into) {
    status decidedBy { name }
    convertedJob {
      number title poNumber status site { name } customer { name }
      productName serviceName preferredDate description notes
    }
    convertedRental {
      reference description site { name } product { name }
      poNumber productName serviceName startsOn notes
    }
  }
}"""
DECLINE = """mutation ($id: ID!, $reason: String!) {
  declineServiceRequest(id: $id, reason: $reason) { status declineReason decidedBy { name } }
}"""


async def _inbox_staff(
    db: Database, settings: Settings, *, slug: str = "acme", name: str = "Sam Staff"
) -> tuple[Tenant, str]:
    tenant, user = await make_tenant(db, slug=slug, role=StaffRole.ASSISTANT_MANAGER)
    return tenant, await staff_token(db, settings, user)


async def _colleague(db: Database, settings: Settings, tenant: Tenant, name: str) -> str:
    user = StaffUser(
        tenant_id=tenant.id,
        email=f"{name.lower()}@{tenant.slug}.example",
        name=name,
        role=StaffRole.MANAGER,
    )
    async with db.transaction(SYSTEM) as session:
        session.add(user)
    return await staff_token(db, settings, user)


def numbers(body: dict[str, Any]) -> list[str]:
    assert "errors" not in body, body
    return [edge["node"]["number"] for edge in body["data"]["serviceRequests"]["edges"]]


async def test_s7_inbox_is_newest_first_across_pages(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    await make_requests(db, tenant, 5)
    first = await gql(client, INBOX, {"first": 2}, token=token)
    assert numbers(first) == ["SR-0005", "SR-0004"]
    seen = numbers(first)
    cursor = first["data"]["serviceRequests"]["pageInfo"]["endCursor"]
    while cursor:
        page = await gql(client, INBOX, {"first": 2, "after": cursor}, token=token)
        seen += numbers(page)
        info = page["data"]["serviceRequests"]["pageInfo"]
        cursor = info["endCursor"] if info["hasNextPage"] else None
    assert seen == ["SR-0005", "SR-0004", "SR-0003", "SR-0002", "SR-0001"]
    forged = await gql(client, INBOX, {"after": "bm90IGEgY3Vyc29y"}, token=token)
    assert error_codes(forged) == ["INVALID_CURSOR"]


async def test_s7_filter_by_any_set_of_statuses_and_none_means_all(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    for status in RequestStatus:
        await make_requests(db, tenant, 1, status=status, prefix=status.value)
    everything = [
        "CANCELLED-0001",
        "DECLINED-0001",
        "COMPLETED-0001",
        "READ-0001",
        "NEW-0001",
    ]
    assert numbers(await gql(client, INBOX, {}, token=token)) == everything
    assert numbers(await gql(client, INBOX, {"statuses": []}, token=token)) == everything
    both = await gql(client, INBOX, {"statuses": ["NEW", "DECLINED"]}, token=token)
    assert numbers(both) == ["DECLINED-0001", "NEW-0001"]
    read = await gql(client, INBOX, {"statuses": ["READ"]}, token=token)
    assert numbers(read) == ["READ-0001"]


async def test_s7_search_by_customer_contact_site_number_or_po_ignoring_case(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    one, two, three, four = await make_requests(db, tenant, 4)
    async with db.transaction(SYSTEM) as session:
        customer = await session.get(Customer, (tenant.id, one.customer_id))
        contact = await session.get(Contact, (tenant.id, two.contact_id))
        site = await session.get(Site, (tenant.id, three.site_id))
        request = await session.get(ServiceRequest, (tenant.id, four.id))
        assert customer and contact and site and request
        customer.name = "École Saint-Éloi"
        contact.name = "Åsa Öberg"
        site.site_number = "S-77_B"
        request.po_number = "po-100%"
        # A request with no contact or site is still found by its customer or PO number.
        first = await session.get(ServiceRequest, (tenant.id, one.id))
        assert first is not None
        first.contact_id = first.site_id = None

    async def search(term: str) -> list[str]:
        return numbers(await gql(client, INBOX, {"search": term}, token=token))

    assert await search("éCOLE saint") == ["SR-0001"]
    assert await search("ÉCOLE") == ["SR-0001"]
    assert await search("åSA öB") == ["SR-0002"]
    assert await search("s-77_b") == ["SR-0003"]
    assert await search("PO-100%") == ["SR-0004"]
    # `%` and `_` are plain characters, not wildcards.
    assert await search("S-77%") == []
    assert await search("PO_1") == []
    assert await search("po-0002") == ["SR-0002"]
    assert await search("   ") == ["SR-0004", "SR-0003", "SR-0002", "SR-0001"]
    only_new = await gql(client, INBOX, {"search": "école", "statuses": ["READ"]}, token=token)
    assert numbers(only_new) == []


async def test_s7_opening_a_new_request_marks_it_read_once_and_records_who(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    other = await _colleague(db, settings, tenant, "Pat")
    first, _second = await make_requests(db, tenant, 2)
    badge = "query { unreadServiceRequestCount }"
    assert (await gql(client, badge, token=token))["data"]["unreadServiceRequestCount"] == 2

    # Reading through `node` is not opening it.
    node = await gql(
        client,
        "query ($id: ID!) { node(id: $id) { ... on ServiceRequest { status } } }",
        {"id": gid("ServiceRequest", first.id)},
        token=token,
    )
    assert node["data"]["node"] == {"status": "NEW"}

    opened = (await gql(client, OPEN, {"id": gid("ServiceRequest", first.id)}, token=token))["data"]
    assert opened["openServiceRequest"]["status"] == "READ"
    assert opened["openServiceRequest"]["readBy"] == {"name": "Sam Staff"}
    assert opened["openServiceRequest"]["history"] == [
        {"fromStatus": "NEW", "toStatus": "READ", "staffUser": {"name": "Sam Staff"}}
    ]
    again = (await gql(client, OPEN, {"id": gid("ServiceRequest", first.id)}, token=other))["data"]
    assert again["openServiceRequest"]["readBy"] == {"name": "Sam Staff"}
    assert again["openServiceRequest"]["readAt"] == opened["openServiceRequest"]["readAt"]
    assert len(again["openServiceRequest"]["history"]) == 1
    assert (await gql(client, badge, token=token))["data"]["unreadServiceRequestCount"] == 1


async def test_s7_opening_a_new_request_twice_at_once_records_one_step(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    other = await _colleague(db, settings, tenant, "Pat")
    [request] = await make_requests(db, tenant, 1)
    answers = await asyncio.gather(
        *(
            gql(client, OPEN, {"id": gid("ServiceRequest", request.id)}, token=t)
            for t in [token, other] * 3
        )
    )
    assert all("errors" not in answer for answer in answers), answers
    readers = {a["data"]["openServiceRequest"]["readBy"]["name"] for a in answers}
    assert len(readers) == 1
    events = await rows(db, ServiceRequestEvent, col(ServiceRequestEvent.request_id) == request.id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (RequestStatus.NEW, RequestStatus.READ)
    ]


async def test_s7_inbox_costs_the_same_statements_for_10_and_200_requests(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    await make_requests(db, tenant, 10)
    with count_statements(db) as ten:
        small = await gql(client, INBOX_IN_FULL, token=token)
    await make_requests(db, tenant, 190, prefix="MORE")
    with count_statements(db) as two_hundred:
        large = await gql(client, INBOX_IN_FULL, token=token)
    assert "errors" not in small and "errors" not in large, (small, large)
    assert len(small["data"]["serviceRequests"]["edges"]) == 10
    assert len(large["data"]["serviceRequests"]["edges"]) == 100
    assert large["data"]["unreadServiceRequestCount"] == 200
    assert ten.count == two_hundred.count, (ten.statements, two_hundred.statements)
    # viewer, count, page, customers, sites, contacts, items, events
    assert two_hundred.count <= 8, two_hundred.statements


async def test_s7_requests_are_hidden_below_the_inbox_role_even_through_node(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    [request] = await make_requests(db, tenant, 1)
    technician = StaffUser(
        tenant_id=tenant.id, email="tech@acme.example", name="Tess", role=StaffRole.TECHNICIAN
    )
    async with db.transaction(SYSTEM) as session:
        session.add(technician)
    tech_token = await staff_token(db, settings, technician)
    query = "query ($id: ID!) { node(id: $id) { ... on ServiceRequest { number } } }"
    assert (await gql(client, query, {"id": gid("ServiceRequest", request.id)}, token=token))[
        "data"
    ]["node"] == {"number": "SR-0001"}
    assert (await gql(client, query, {"id": gid("ServiceRequest", request.id)}, token=tech_token))[
        "data"
    ] == {"node": None}
    inbox = await gql(client, INBOX, {}, token=tech_token)
    assert error_codes(inbox) == ["ROLE_FORBIDDEN"]


async def test_s6_a_request_keeps_the_names_it_was_sent_with_after_a_rename(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    [request] = await make_requests(db, tenant, 1)
    assert request.product_id is not None
    renamed = await gql(
        client,
        "mutation ($id: ID!, $name: String!) {"
        " renameRequestableItem(id: $id, name: $name) { name } }",
        {"id": to_base64("RequestableItem", str(request.product_id)), "name": "Roll-off Dumpster"},
        token=token,
    )
    assert "errors" not in renamed, renamed
    body = await gql(client, INBOX_IN_FULL, token=token)
    [edge] = body["data"]["serviceRequests"]["edges"]
    assert edge["node"]["productName"] == "Skip"
    assert edge["node"]["product"] == {"name": "Roll-off Dumpster"}


async def _as_sent(db: Database, request: ServiceRequest) -> ServiceRequest:
    """The request with what a customer fills in besides the items: words and a date."""
    async with db.transaction(SYSTEM) as session:
        row = await session.merge(request)
        row.description = "Two units by the north gate."
        row.notes = "Gate code 4512; call Pat on arrival."
        row.preferred_date = date(2026, 12, 7)
    return row


async def _rename_items(db: Database, tenant: Tenant) -> None:
    """Renames the catalogue, so names carried from the request are told from today's."""
    async with db.transaction(Scope.tenant(tenant.id)) as session:
        for item in await session.scalars(sa.select(RequestableItem)):
            item.name = f"{item.name} (renamed)"


async def test_s8_converting_into_a_job_creates_it_from_the_request_and_completes_it(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    [request] = await make_requests(db, tenant, 1)
    request = await _as_sent(db, request)
    await _rename_items(db, tenant)
    body = await gql(
        client, CONVERT, {"id": gid("ServiceRequest", request.id), "into": "JOB"}, token=token
    )
    result = body["data"]["convertServiceRequest"]
    assert result["status"] == "COMPLETED" and result["decidedBy"] == {"name": "Sam Staff"}
    assert result["convertedJob"] == {
        "number": "J-SR-0001",
        "title": "Emptying - Skip",
        "poNumber": "PO-0001",
        "status": "PENDING",
        "site": {"name": "Site 0"},
        "customer": {"name": "Customer 0000"},
        "productName": "Skip",
        "serviceName": "Emptying",
        "preferredDate": "2026-12-07",
        "description": "Two units by the north gate.",
        "notes": "Gate code 4512; call Pat on arrival.",
    }
    assert result["convertedRental"] is None
    [job] = await rows(db, Job)
    assert job.source_request_id == request.id and job.site_id == request.site_id
    [entry] = await rows(db, AuditEntry, col(AuditEntry.action) == "request.converted_to_job")
    assert entry.before == {"status": "NEW"}
    assert entry.after == {"status": "COMPLETED", "job_id": str(job.id), "job_number": job.number}


async def test_s8_a_job_from_a_request_without_a_date_or_words_has_none(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    [request] = await make_requests(db, tenant, 1)
    body = await gql(
        client, CONVERT, {"id": gid("ServiceRequest", request.id), "into": "JOB"}, token=token
    )
    job = body["data"]["convertServiceRequest"]["convertedJob"]
    assert (job["preferredDate"], job["description"], job["notes"]) == (None, "", "")


async def test_s8_converting_into_a_rental_puts_the_product_on_hire_at_the_site(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    [request] = await make_requests(db, tenant, 1, status=RequestStatus.READ)
    request = await _as_sent(db, request)
    await _rename_items(db, tenant)
    body = await gql(
        client, CONVERT, {"id": gid("ServiceRequest", request.id), "into": "RENTAL"}, token=token
    )
    result = body["data"]["convertServiceRequest"]
    assert result["status"] == "COMPLETED" and result["convertedJob"] is None
    assert result["convertedRental"] == {
        "reference": "R-SR-0001",
        "description": "Emptying - Skip",
        "site": {"name": "Site 0"},
        "product": {"name": "Skip (renamed)"},
        "poNumber": "PO-0001",
        "productName": "Skip",
        "serviceName": "Emptying",
        "startsOn": "2026-12-07",
        "notes": "Two units by the north gate.\n\nGate code 4512; call Pat on arrival.",
    }
    twice = await gql(
        client, CONVERT, {"id": gid("ServiceRequest", request.id), "into": "JOB"}, token=token
    )
    assert error_codes(twice) == ["REQUEST_ALREADY_DECIDED"]
    assert len(await rows(db, Rental)) == 1 and await rows(db, Job) == []


async def test_s8_two_staff_converting_at_once_create_exactly_one_job(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    other = await _colleague(db, settings, tenant, "Pat")
    [request] = await make_requests(db, tenant, 1)
    answers = await asyncio.gather(
        *(
            gql(client, CONVERT, {"id": gid("ServiceRequest", request.id), "into": into}, token=t)
            for t, into in [(token, "JOB"), (other, "JOB"), (token, "RENTAL"), (other, "JOB")]
        )
    )
    won = [a for a in answers if "errors" not in a]
    lost = [error_codes(a) for a in answers if "errors" in a]
    assert len(won) == 1, answers
    assert lost == [["REQUEST_ALREADY_DECIDED"]] * 3
    assert len(await rows(db, Job)) + len(await rows(db, Rental)) == 1
    events = await rows(db, ServiceRequestEvent, col(ServiceRequestEvent.request_id) == request.id)
    assert [e.to_status for e in events] == [RequestStatus.COMPLETED]


async def test_s8_declining_emails_the_reason_to_the_submitter_through_the_outbox(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    [request] = await make_requests(db, tenant, 1)
    async with db.transaction(SYSTEM) as session:
        contact = await session.get(Contact, (tenant.id, request.contact_id))
        assert contact is not None
        contact.email = "site.person@customer.example"
    blank = await gql(
        client, DECLINE, {"id": gid("ServiceRequest", request.id), "reason": " "}, token=token
    )
    assert error_codes(blank) == ["INVALID_INPUT"]
    body = await gql(
        client,
        DECLINE,
        {"id": gid("ServiceRequest", request.id), "reason": "We do not serve that area."},
        token=token,
    )
    assert body["data"]["declineServiceRequest"] == {
        "status": "DECLINED",
        "declineReason": "We do not serve that area.",
        "decidedBy": {"name": "Sam Staff"},
    }
    [email] = await rows(db, OutboxEmail)
    assert email.kind == "request_declined"
    assert email.to_address == "site.person@customer.example"
    assert "SR-0001" in email.subject and "We do not serve that area." in email.text_body
    [entry] = await rows(db, AuditEntry, col(AuditEntry.action) == "request.declined")
    assert entry.after == {"status": "DECLINED", "reason": "We do not serve that area."}


async def test_s8_declined_request_cannot_be_converted(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    [request] = await make_requests(db, tenant, 1)
    await gql(
        client,
        DECLINE,
        {"id": gid("ServiceRequest", request.id), "reason": "Out of area."},
        token=token,
    )
    for into in ("JOB", "RENTAL"):
        body = await gql(
            client, CONVERT, {"id": gid("ServiceRequest", request.id), "into": into}, token=token
        )
        assert error_codes(body) == ["REQUEST_DECLINED"]
        assert (
            "submit" in body["errors"][0]["message"]
            or "new request" in body["errors"][0]["message"]
        )
    again = await gql(
        client, DECLINE, {"id": gid("ServiceRequest", request.id), "reason": "Again."}, token=token
    )
    assert error_codes(again) == ["REQUEST_ALREADY_DECIDED"]
    assert await rows(db, Job) == [] and await rows(db, Rental) == []
    [row] = await rows(db, ServiceRequest)
    assert row.status is RequestStatus.DECLINED and row.decline_reason == "Out of area."


async def test_s8_a_rental_needs_a_site_and_a_refused_conversion_writes_nothing(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _inbox_staff(db, settings)
    [request] = await make_requests(db, tenant, 1)
    async with db.transaction(SYSTEM) as session:
        row = await session.get(ServiceRequest, (tenant.id, request.id))
        assert row is not None
        row.site_id = None
    body = await gql(
        client, CONVERT, {"id": gid("ServiceRequest", request.id), "into": "RENTAL"}, token=token
    )
    assert error_codes(body) == ["INVALID_INPUT"]
    assert await rows(db, Rental) == [] and await rows(db, ServiceRequestEvent) == []
    assert await rows(db, AuditEntry) == []
    [unchanged] = await rows(db, ServiceRequest)
    assert unchanged.status is RequestStatus.NEW


async def test_s8_another_tenants_request_is_not_found_and_not_touched(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, token = await _inbox_staff(db, settings)
    other, _ = await make_tenant(db, slug="other")
    [foreign] = await make_requests(db, other, 1)
    for document, variables in [
        (OPEN, {"id": gid("ServiceRequest", foreign.id)}),
        (CONVERT, {"id": gid("ServiceRequest", foreign.id), "into": "JOB"}),
        (DECLINE, {"id": gid("ServiceRequest", foreign.id), "reason": "No."}),
    ]:
        assert error_codes(await gql(client, document, variables, token=token)) == ["NOT_FOUND"]
    [row] = await rows(db, ServiceRequest)
    assert row.status is RequestStatus.NEW and row.read_at is None
    assert await rows(db, RequestableItem, col(RequestableItem.tenant_id) != other.id) == []
