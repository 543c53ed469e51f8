"""S9 and T5 (the setting) over HTTP: portal settings, the logo upload and where it is
served, and each customer's overrides of branding, modules, switch and identifier."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col
from strawberry.relay import to_base64

from app.db.models import AuditEntry, Customer, StaffRole, StoredFile
from app.db.scope import SYSTEM
from app.db.session import Database
from app.files import MAX_LOGO_BYTES
from app.settings import Settings
from tests.support import (
    PORTAL,
    error_codes,
    gql,
    make_customers,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)

SETTINGS = """{ portalSettings {
  portalInPlan portalEnabled defaultModules invoiceVisibility accentColour logoUrl
} }"""
UPDATE = """mutation ($input: PortalSettingsChanges!) {
  updatePortalSettings(input: $input) {
    portalEnabled defaultModules invoiceVisibility accentColour
  }
}"""
LOGO = """mutation ($logo: LogoInput) { setPortalLogo(logo: $logo) { logoUrl } }"""
CUSTOMER_PORTAL = """mutation ($id: ID!, $input: CustomerPortalChanges!) {
  updateCustomerPortal(customerId: $id, input: $input) {
    portalEnabled portalIdentifier moduleOverride accentColour
  }
}"""
CUSTOMER_LOGO = """mutation ($id: ID!, $logo: LogoInput) {
  setCustomerLogo(customerId: $id, logo: $logo) { logoUrl }
}"""
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def encoded(content: bytes, content_type: str = "image/png") -> dict[str, str]:
    return {"contentType": content_type, "base64": base64.b64encode(content).decode()}


async def _manager(db: Database, settings: Settings) -> tuple[Any, str]:
    tenant, user = await make_tenant(db, slug="acme", role=StaffRole.MANAGER)
    return tenant, await staff_token(db, settings, user)


async def _audit(db: Database) -> list[AuditEntry]:
    async with db.session(SYSTEM) as session:
        return list(
            await session.scalars(sa.select(AuditEntry).order_by(col(AuditEntry.created_at)))
        )


async def test_s9_settings_change_and_each_change_is_audited_with_before_and_after(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, token = await _manager(db, settings)
    start = (await gql(client, SETTINGS, token=token))["data"]["portalSettings"]
    assert start["portalEnabled"] is True and start["invoiceVisibility"] == "OUTSTANDING"
    assert start["logoUrl"] is None and start["portalInPlan"] is True
    body = await gql(
        client,
        UPDATE,
        {
            "input": {
                "defaultModules": ["JOBS", "INVOICES", "JOBS"],
                "invoiceVisibility": "OUTSTANDING_AND_PAID",
                "accentColour": "#AABBCC",
            }
        },
        token=token,
    )
    assert body["data"]["updatePortalSettings"] == {
        "portalEnabled": True,
        "defaultModules": ["JOBS", "INVOICES"],
        "invoiceVisibility": "OUTSTANDING_AND_PAID",
        "accentColour": "#aabbcc",
    }
    [entry] = await _audit(db)
    assert entry.action == "portal_settings.updated" and entry.subject_type == "Tenant"
    assert entry.before is not None and entry.before["accent_colour"] is None
    assert entry.after == {
        "default_modules": ["JOBS", "INVOICES"],
        "invoice_visibility": "OUTSTANDING_AND_PAID",
        "accent_colour": "#aabbcc",
    }
    for colour in ["red", "#abc", "#GGGGGG", "#aabbcc; background:url(x)"]:
        bad = await gql(client, UPDATE, {"input": {"accentColour": colour}}, token=token)
        assert error_codes(bad) == ["INVALID_INPUT"], colour
        assert bad["errors"][0]["extensions"]["field"] == "accentColour"
    cleared = await gql(client, UPDATE, {"input": {"accentColour": None}}, token=token)
    assert cleared["data"]["updatePortalSettings"]["accentColour"] is None
    assert len(await _audit(db)) == 2


async def test_t3_the_tenant_switch_off_ends_portal_sessions_at_once(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _manager(db, settings)
    user = await make_portal_user(db, tenant)
    portal = await portal_token(db, settings, user.account)
    me = "{ viewer { email } }"
    assert (await gql(client, me, path=PORTAL, token=portal))["data"]["viewer"] is not None
    body = await gql(client, UPDATE, {"input": {"portalEnabled": False}}, token=token)
    assert body["data"]["updatePortalSettings"]["portalEnabled"] is False
    # The session stays signed in, but every portal field now says the portal is off.
    after = await gql(client, "{ contractors { name } }", path=PORTAL, token=portal)
    assert error_codes(after) == ["PORTAL_DISABLED"]
    [entry] = await _audit(db)
    assert (entry.before, entry.after) == ({"portal_enabled": True}, {"portal_enabled": False})


async def test_t4_a_customers_switch_off_ends_its_users_sessions_at_once(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _manager(db, settings)
    user = await make_portal_user(db, tenant)
    portal = await portal_token(db, settings, user.account)
    me = "{ viewer { email } }"
    assert (await gql(client, me, path=PORTAL, token=portal))["data"]["viewer"] is not None
    body = await gql(
        client,
        CUSTOMER_PORTAL,
        {"id": to_base64("Customer", str(user.customer.id)), "input": {"portalEnabled": False}},
        token=token,
    )
    assert body["data"]["updateCustomerPortal"]["portalEnabled"] is False
    # The session stays signed in, but every portal field now says the portal is off.
    after = await gql(client, "{ contractors { name } }", path=PORTAL, token=portal)
    assert error_codes(after) == ["PORTAL_DISABLED"]


async def test_t5_a_logo_is_checked_stored_and_served_where_the_app_says(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _manager(db, settings)
    body = await gql(client, LOGO, {"logo": encoded(PNG)}, token=token)
    url = body["data"]["setPortalLogo"]["logoUrl"]
    assert url == f"{settings.public_url}/files/logo/{tenant.id}"
    served = await client.get(url.removeprefix(settings.public_url))
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    cached = await client.get(
        url.removeprefix(settings.public_url), headers={"if-none-match": served.headers["etag"]}
    )
    assert cached.status_code == 304

    refusals = [
        (encoded(b"<svg onload=alert(1)>", "image/svg+xml"), "FILE_TYPE_NOT_ALLOWED"),
        (encoded(b"GIF89a....", "image/png"), "FILE_TYPE_NOT_ALLOWED"),
        (encoded(b"\xff\xd8\xff" + b"\x00" * 10, "image/png"), "FILE_TYPE_NOT_ALLOWED"),
        (encoded(PNG + b"\x00" * MAX_LOGO_BYTES), "FILE_TOO_LARGE"),
        ({"contentType": "image/png", "base64": "not base64!"}, "INVALID_INPUT"),
    ]
    for logo, code in refusals:
        refused = await client.post(
            "/graphql",
            json={"query": LOGO, "variables": {"logo": logo}},
            headers={"authorization": f"Bearer {token}"},
        )
        if refused.status_code == 413:
            continue  # the body limit refused it before GraphQL: as good
        assert error_codes(refused.json()) == [code], logo["contentType"]

    removed = await gql(client, LOGO, {"logo": None}, token=token)
    assert removed["data"]["setPortalLogo"]["logoUrl"] is None
    assert (await client.get(url.removeprefix(settings.public_url))).status_code == 404
    async with db.session(SYSTEM) as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(StoredFile)) == 0
    actions = [entry.action for entry in await _audit(db)]
    assert actions == ["portal_settings.logo_changed", "portal_settings.logo_changed"]


async def test_t5_a_logo_upload_from_another_site_is_refused(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, token = await _manager(db, settings)
    for headers, content in [
        ({"origin": "https://evil.example"}, None),
        ({"content-type": "multipart/form-data; boundary=x"}, b"--x--"),
    ]:
        response = await client.post(
            "/graphql",
            json=None if content else {"query": LOGO, "variables": {"logo": encoded(PNG)}},
            content=content,
            headers={"authorization": f"Bearer {token}", **headers},
        )
        assert response.status_code in (400, 403, 415), response.text
    async with db.session(SYSTEM) as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(StoredFile)) == 0


async def test_s9_a_customer_overrides_branding_modules_switch_and_identifier(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _manager(db, settings)
    first, second = await make_customers(db, tenant, 2, contacts=0, sites=0)
    first_id = to_base64("Customer", str(first.id))
    body = await gql(
        client,
        CUSTOMER_PORTAL,
        {
            "id": first_id,
            "input": {
                "portalEnabled": False,
                "portalIdentifier": " Harbour-View ",
                "moduleOverride": ["INVOICES"],
                "accentColour": "#112233",
            },
        },
        token=token,
    )
    assert body["data"]["updateCustomerPortal"] == {
        "portalEnabled": False,
        "portalIdentifier": "harbour-view",
        "moduleOverride": ["INVOICES"],
        "accentColour": "#112233",
    }
    inherit = await gql(
        client,
        CUSTOMER_PORTAL,
        {"id": first_id, "input": {"moduleOverride": None, "accentColour": None}},
        token=token,
    )
    assert inherit["data"]["updateCustomerPortal"]["moduleOverride"] is None
    assert inherit["data"]["updateCustomerPortal"]["accentColour"] is None

    clash = await gql(
        client,
        CUSTOMER_PORTAL,
        {
            "id": to_base64("Customer", str(second.id)),
            "input": {"portalIdentifier": "harbour-view"},
        },
        token=token,
    )
    assert error_codes(clash) == ["PORTAL_IDENTIFIER_TAKEN"]
    for bad in ["Harbour View", "-edge", "x" * 64, ""]:
        refused = await gql(
            client,
            CUSTOMER_PORTAL,
            {"id": first_id, "input": {"portalIdentifier": bad}},
            token=token,
        )
        assert error_codes(refused) == ["INVALID_INPUT"], bad

    logo = await gql(client, CUSTOMER_LOGO, {"id": first_id, "logo": encoded(PNG)}, token=token)
    url = logo["data"]["setCustomerLogo"]["logoUrl"]
    assert url == f"{settings.public_url}/files/logo/{tenant.id}/{first.id}"
    assert (await client.get(url.removeprefix(settings.public_url))).content == PNG
    async with db.session(SYSTEM) as session:
        unchanged = await session.get(Customer, (tenant.id, second.id))
    assert unchanged is not None and unchanged.portal_identifier == second.portal_identifier
    actions = [entry.action for entry in await _audit(db)]
    assert actions == [
        "customer_portal.updated",
        "customer_portal.updated",
        "customer_portal.logo_changed",
    ]


async def test_s9_the_same_identifier_may_be_used_at_another_business(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    tenant, token = await _manager(db, settings)
    other, _ = await make_tenant(db, slug="other")
    [mine] = await make_customers(db, tenant, 1, contacts=0, sites=0)
    [theirs] = await make_customers(db, other, 1, contacts=0, sites=0)
    body = await gql(
        client,
        CUSTOMER_PORTAL,
        {
            "id": to_base64("Customer", str(mine.id)),
            "input": {"portalIdentifier": theirs.portal_identifier},
        },
        token=token,
    )
    assert body["data"]["updateCustomerPortal"]["portalIdentifier"] == theirs.portal_identifier
    foreign = await gql(
        client,
        CUSTOMER_LOGO,
        {"id": to_base64("Customer", str(theirs.id)), "logo": encoded(PNG)},
        token=token,
    )
    assert error_codes(foreign) == ["NOT_FOUND"]


async def test_s9_a_stripe_account_must_look_like_one_and_null_clears_it(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    _, token = await _manager(db, settings)
    account = "mutation ($input: PortalSettingsChanges!) { updatePortalSettings(input: $input) "
    account += "{ stripeAccountId } }"
    for bad in [
        "",
        "acct_",
        "acct_1A2b-3C4d",
        "acct_1A2b 3C4d",
        "ACCT_1A2b3C4d",
        "sk_live_1A2b3C4d",
        "acct_1A2b3C4d; drop",
        "acct_" + "a" * 251,
    ]:
        refused = await gql(client, account, {"input": {"stripeAccountId": bad}}, token=token)
        assert error_codes(refused) == ["INVALID_INPUT"], bad
        assert refused["errors"][0]["extensions"]["field"] == "stripeAccountId"
    assert await _audit(db) == []

    pasted = await gql(
        client, account, {"input": {"stripeAccountId": " acct_1A2b3C4d5E6f7G8h\n"}}, token=token
    )
    assert pasted["data"]["updatePortalSettings"] == {"stripeAccountId": "acct_1A2b3C4d5E6f7G8h"}
    shown = await gql(client, "{ portalSettings { stripeAccountId } }", token=token)
    assert shown["data"]["portalSettings"]["stripeAccountId"] == "acct_1A2b3C4d5E6f7G8h"
    cleared = await gql(client, account, {"input": {"stripeAccountId": None}}, token=token)
    assert cleared["data"]["updatePortalSettings"] == {"stripeAccountId": None}
    assert [(entry.before, entry.after) for entry in await _audit(db)] == [
        ({"stripe_account_id": None}, {"stripe_account_id": "acct_1A2b3C4d5E6f7G8h"}),
        ({"stripe_account_id": "acct_1A2b3C4d5E6f7G8h"}, {"stripe_account_id": None}),
    ]
