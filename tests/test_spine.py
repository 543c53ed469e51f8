"""The spine: both endpoints, relay conventions, loaders and their statement counts."""

from __future__ import annotations

import httpx
import pytest
from strawberry.relay import to_base64

from app.db.session import Database
from app.settings import Settings
from tests.support import (
    PORTAL,
    count_statements,
    error_codes,
    gql,
    make_customers,
    make_tenant,
    staff_token,
)

CUSTOMERS_WITH_CHILDREN = """
query ($first: Int) {
  customers(first: $first) {
    edges {
      node { id name contacts { id name kind site { id name } } sites { id name contacts { id } } }
    }
  }
}
"""


async def _staff(db: Database, settings: Settings, slug: str = "acme") -> tuple[str, object]:
    tenant, user = await make_tenant(db, slug=slug)
    return await staff_token(db, settings, user), tenant


async def test_h6_customers_with_contacts_and_sites_cost_the_same_for_5_and_50(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    token, tenant = await _staff(db, settings)
    await make_customers(db, tenant, 5)  # type: ignore[arg-type]
    with count_statements(db) as five:
        small = await gql(client, CUSTOMERS_WITH_CHILDREN, {"first": 50}, token=token)
    await make_customers(db, tenant, 45)  # type: ignore[arg-type]
    with count_statements(db) as fifty:
        large = await gql(client, CUSTOMERS_WITH_CHILDREN, {"first": 50}, token=token)

    assert "errors" not in small and "errors" not in large
    assert len(small["data"]["customers"]["edges"]) == 5
    assert len(large["data"]["customers"]["edges"]) == 50
    first = large["data"]["customers"]["edges"][0]["node"]
    assert len(first["contacts"]) == 4 and len(first["sites"]) == 2
    assert first["sites"][0]["contacts"]
    assert five.count == fifty.count, (five.statements, fifty.statements)
    # viewer, customers page, contacts, sites, sites' contacts, contacts' sites
    assert fifty.count <= 6


async def test_h3_connection_walks_every_customer_once_in_name_order(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    token, tenant = await _staff(db, settings)
    await make_customers(db, tenant, 23, contacts=0, sites=0)  # type: ignore[arg-type]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await gql(
            client,
            "query ($after: String) { customers(first: 10, after: $after) "
            "{ edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }",
            {"after": after},
            token=token,
        )
        connection = body["data"]["customers"]
        seen += [edge["node"]["name"] for edge in connection["edges"]]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 23


async def test_h3_page_size_is_capped_at_100(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    token, tenant = await _staff(db, settings)
    await make_customers(db, tenant, 105, contacts=0, sites=0)  # type: ignore[arg-type]
    body = await gql(
        client,
        "{ customers(first: 1000000) { edges { node { id } } pageInfo { hasNextPage } } }",
        token=token,
    )
    assert len(body["data"]["customers"]["edges"]) == 100
    assert body["data"]["customers"]["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("cursor", ["not-a-cursor", to_base64("x", "y"), "WzEsMl0="])
async def test_h3_a_forged_cursor_is_a_typed_error(
    db: Database, client: httpx.AsyncClient, settings: Settings, cursor: str
) -> None:
    token, _ = await _staff(db, settings)
    body = await gql(
        client,
        "query ($after: String) { customers(after: $after) { edges { node { id } } } }",
        {"after": cursor},
        token=token,
    )
    assert error_codes(body) == ["INVALID_CURSOR"]


async def test_h3_node_finds_a_customer_by_global_id_and_nothing_for_others(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    token, tenant = await _staff(db, settings)
    [customer] = await make_customers(db, tenant, 1)  # type: ignore[arg-type]
    _, other_tenant = await _staff(db, settings, slug="other")
    [foreign] = await make_customers(db, other_tenant, 1)  # type: ignore[arg-type]
    query = "query ($id: ID!) { node(id: $id) { __typename id ... on Customer { name } } }"

    own = await gql(client, query, {"id": to_base64("Customer", str(customer.id))}, token=token)
    assert own["data"]["node"] == {
        "__typename": "Customer",
        "id": to_base64("Customer", str(customer.id)),
        "name": customer.name,
    }
    for missing in [
        to_base64("Customer", str(foreign.id)),  # another tenant's
        to_base64("Customer", "00000000-0000-0000-0000-000000000000"),  # made up
        to_base64("Customer", "not-a-uuid"),
        to_base64("NoSuchType", str(customer.id)),
        to_base64("Query", "x"),
        "garbage",
    ]:
        body = await gql(client, query, {"id": missing}, token=token)
        assert body == {"data": {"node": None}}, missing


async def test_h3_customer_global_ids_do_not_resolve_on_the_portal(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, tenant = await _staff(db, settings)
    [customer] = await make_customers(db, tenant, 1)  # type: ignore[arg-type]
    body = await gql(
        client,
        "query ($id: ID!) { node(id: $id) { id } }",
        {"id": to_base64("Customer", str(customer.id))},
        path=PORTAL,
    )
    assert body == {"data": {"node": None}}


async def test_h3_staff_fields_need_a_signed_in_staff_user(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ viewer { id } customers { edges { node { id } } } }")
    assert body["data"] is None or body["data"].get("viewer") is None
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_h1_both_endpoints_answer_with_their_own_schema(client: httpx.AsyncClient) -> None:
    staff = await gql(client, '{ __type(name: "StaffUser") { name } }')
    portal = await gql(client, '{ __type(name: "StaffUser") { name } }', path=PORTAL)
    assert staff["data"]["__type"] == {"name": "StaffUser"}
    assert portal["data"]["__type"] is None
    assert (await gql(client, "{ viewer { id } }", path=PORTAL)) == {"data": {"viewer": None}}
