"""S10 over HTTP: the audit trail of portal access, modules, request decisions and
settings, with who, what, when, before and after; for MANAGER and above."""

from __future__ import annotations

import httpx
from strawberry.relay import to_base64

from app.db.models import Contact, StaffRole, StaffUser
from app.db.scope import SYSTEM
from app.db.session import Database
from app.settings import Settings
from tests.support import (
    PORTAL,
    error_codes,
    gql,
    make_portal_user,
    make_requests,
    make_tenant,
    portal_token,
    staff_token,
)

TRAIL = """query ($subjectId: ID, $first: Int, $after: String) {
  auditTrail(subjectId: $subjectId, first: $first, after: $after) {
    edges { node {
      id action subjectType subjectId actorKind actor { name } before after createdAt
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_s10_access_modules_decisions_and_settings_are_in_the_trail_newest_first(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    [request] = await make_requests(db, tenant, 1)
    async with db.transaction(SYSTEM) as session:
        contact = await session.get(Contact, (tenant.id, request.contact_id))
        assert contact is not None
        contact.email = "site@customer.example"
    contact_id = to_base64("Contact", str(request.contact_id))
    customer_id = to_base64("Customer", str(request.customer_id))
    steps = [
        (
            "mutation ($id: ID!) { setContactPortalAccess(contactId: $id, enabled: true) { id } }",
            {"id": contact_id},
        ),
        (
            "mutation ($id: ID!) { updateCustomerPortal(customerId: $id,"
            " input: {moduleOverride: [JOBS]}) { id } }",
            {"id": customer_id},
        ),
        (
            'mutation ($id: ID!) { declineServiceRequest(id: $id, reason: "Out of area") { id } }',
            {"id": to_base64("ServiceRequest", str(request.id))},
        ),
        ("mutation { updatePortalSettings(input: {portalEnabled: false}) { portalEnabled } }", {}),
    ]
    for document, variables in steps:
        done = await gql(client, document, variables, token=token)
        assert "errors" not in done, done

    body = await gql(client, TRAIL, {"first": 3}, token=token)
    page = body["data"]["auditTrail"]
    entries = [edge["node"] for edge in page["edges"]]
    assert [e["action"] for e in entries] == [
        "portal_settings.updated",
        "request.declined",
        "customer_portal.updated",
    ]
    assert all(e["actorKind"] == "STAFF" and e["actor"] == {"name": "Sam Staff"} for e in entries)
    settings_change, decline, modules = entries
    assert (settings_change["before"], settings_change["after"]) == (
        {"portal_enabled": True},
        {"portal_enabled": False},
    )
    assert decline["after"] == {"status": "DECLINED", "reason": "Out of area"}
    assert decline["subjectId"] == to_base64("ServiceRequest", str(request.id))
    assert (modules["before"], modules["after"]) == (
        {"module_override": None},
        {"module_override": ["JOBS"]},
    )
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(client, TRAIL, {"after": page["pageInfo"]["endCursor"]}, token=token)
    [access] = [edge["node"] for edge in rest["data"]["auditTrail"]["edges"]]
    assert access["action"] == "portal_access.enabled"
    assert (access["before"], access["after"]) == (
        {"portal_access": False},
        {"portal_access": True},
    )
    assert access["subjectId"] == contact_id

    one = await gql(client, TRAIL, {"subjectId": customer_id}, token=token)
    assert [e["node"]["action"] for e in one["data"]["auditTrail"]["edges"]] == [
        "customer_portal.updated"
    ]


async def test_s10_the_trail_is_for_managers_and_above_even_through_node(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    token = await staff_token(db, settings, manager)
    await gql(
        client,
        "mutation { updatePortalSettings(input: {portalEnabled: false}) { portalEnabled } }",
        token=token,
    )
    [edge] = (await gql(client, TRAIL, {}, token=token))["data"]["auditTrail"]["edges"]
    entry_id = edge["node"]["id"]
    assistant = StaffUser(
        tenant_id=tenant.id,
        email="assistant@acme.example",
        name="Ash",
        role=StaffRole.ASSISTANT_MANAGER,
    )
    async with db.transaction(SYSTEM) as session:
        session.add(assistant)
    assistant_token = await staff_token(db, settings, assistant)
    assert error_codes(await gql(client, TRAIL, {}, token=assistant_token)) == ["ROLE_FORBIDDEN"]
    node = "query ($id: ID!) { node(id: $id) { ... on AuditEntry { action } } }"
    assert (await gql(client, node, {"id": entry_id}, token=token))["data"]["node"] == {
        "action": "portal_settings.updated"
    }
    assert (await gql(client, node, {"id": entry_id}, token=assistant_token))["data"] == {
        "node": None
    }
    _, other_owner = await make_tenant(db, slug="other")
    other_token = await staff_token(db, settings, other_owner)
    assert (await gql(client, TRAIL, {}, token=other_token))["data"]["auditTrail"]["edges"] == []
    assert (await gql(client, node, {"id": entry_id}, token=other_token))["data"] == {"node": None}


async def test_s5_staff_narrow_one_users_modules_from_their_next_request_and_it_is_audited(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, manager = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    user = await make_portal_user(db, tenant)
    staff = await staff_token(db, settings, manager)
    portal = await portal_token(db, settings, user.account)
    contact_id = to_base64("Contact", str(user.contact.id))
    narrow = """mutation ($id: ID!, $modules: [PortalModule!]) {
      setContactPortalModules(contactId: $id, modules: $modules) { id portalModules }
    }"""
    quotes_and_invoices = "{ quotes { edges { node { id } } } invoices { edges { node { id } } } }"

    before = await gql(client, quotes_and_invoices, path=PORTAL, token=portal)
    assert error_codes(before) == []
    done = await gql(client, narrow, {"id": contact_id, "modules": ["QUOTES"]}, token=staff)
    assert done["data"]["setContactPortalModules"]["portalModules"] == ["QUOTES"]
    narrowed = await gql(client, quotes_and_invoices, path=PORTAL, token=portal)
    assert error_codes(narrowed) == ["MODULE_FORBIDDEN"]
    assert narrowed["data"] is None

    undone = await gql(client, narrow, {"id": contact_id, "modules": None}, token=staff)
    assert undone["data"]["setContactPortalModules"]["portalModules"] is None
    assert error_codes(await gql(client, quotes_and_invoices, path=PORTAL, token=portal)) == []

    body = await gql(client, TRAIL, {"subjectId": contact_id}, token=staff)
    changes = [
        (edge["node"]["action"], edge["node"]["before"], edge["node"]["after"])
        for edge in body["data"]["auditTrail"]["edges"]
    ]
    assert changes == [
        ("portal_user.modules_changed", {"modules": ["QUOTES"]}, {"modules": None}),
        ("portal_user.modules_changed", {"modules": None}, {"modules": ["QUOTES"]}),
    ]
