"""Portal accounts over HTTP: staff switch portal access and resend invitations (S3, S4);
customers accept invitations (P1), sign in and reset passwords (P2), use magic links (P3),
belong to several contractors (P4), and lose access with the plan or a switch (T2-T4);
SECURITY.md rows 19-21; and invitations through the outbox to real SMTP (H5, row 25)."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import argon2
import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel, col
from starlette.applications import Starlette

from app.auth import passwords
from app.auth.ratelimit import EMAIL_LINK_PER_ACCOUNT, SIGN_IN_PER_ACCOUNT, TOKEN_PER_ADDRESS
from app.db.base import utcnow
from app.db.models import (
    AuditEntry,
    Contact,
    Customer,
    OneTimeToken,
    OutboxEmail,
    OutboxStatus,
    Plan,
    PortalAccount,
    RateLimitCounter,
    StaffRole,
    StaffUser,
    Tenant,
    TokenPurpose,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.conftest import http_client, make_settings
from tests.smtp import SmtpServer
from tests.support import (
    PASSWORD,
    PORTAL,
    PortalUser,
    emailed_token,
    error_codes,
    gid,
    gql,
    make_customers,
    make_portal_user,
    make_tenant,
    portal_token,
    rows,
    staff_token,
)

T = TypeVar("T", bound=SQLModel)

EMAIL = "jo@customer.example"
NEW_PASSWORD = "a brand new and rather long passphrase"
WRONG_PASSWORD = "not the password at all"
COOKIE = "__Host-portal_session"
EVIL = "https://evil.example"
ARGON2ID = re.compile(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")
# The portal apps send only these documents (H2), so the tests send them too.
OPERATIONS = {
    path.stem: path.read_text()
    for path in (Path(__file__).parents[1] / "frontend-contract" / "operations").glob("*.graphql")
}
SET_ACCESS = """mutation ($contactId: ID!, $enabled: Boolean!) {
  setContactPortalAccess(contactId: $contactId, enabled: $enabled) { email portalAccess }
}"""
RESEND = "mutation ($contactId: ID!) { resendInvitation(contactId: $contactId) { portalAccess } }"


# Staff side.


async def office(
    db: Database,
    settings: Settings,
    *,
    slug: str = "acme",
    role: StaffRole = StaffRole.ASSISTANT_MANAGER,
) -> tuple[Tenant, StaffUser, str]:
    """A tenant, a staff user of `role` there, and that user's bearer token."""
    tenant, user = await make_tenant(db, slug=slug, role=role)
    return tenant, user, await staff_token(db, settings, user)


async def contacts(db: Database, tenant: Tenant, *emails: str | None) -> list[Contact]:
    """Company contacts of one new customer, with these emails, portal access off."""
    [customer] = await make_customers(db, tenant, 1, contacts=len(emails), sites=0)
    async with db.transaction(SYSTEM) as session:
        found = list(
            await session.scalars(
                sa.select(Contact)
                .where(col(Contact.customer_id) == customer.id)
                .order_by(col(Contact.name))
            )
        )
        for contact, email in zip(found, emails, strict=True):
            contact.email = email
    return found


async def set_access(
    client: httpx.AsyncClient, staff: str, contact: Contact, enabled: bool
) -> dict[str, Any]:
    variables = {"contactId": gid("Contact", contact.id), "enabled": enabled}
    return await gql(client, SET_ACCESS, variables, token=staff)


async def resend(client: httpx.AsyncClient, staff: str, contact: Contact) -> dict[str, Any]:
    return await gql(client, RESEND, {"contactId": gid("Contact", contact.id)}, token=staff)


async def invite(client: httpx.AsyncClient, db: Database, staff: str, contact: Contact) -> str:
    """Switches the contact's access on; answers the token of the emailed invitation."""
    body = await set_access(client, staff, contact, True)
    assert body["data"]["setContactPortalAccess"]["portalAccess"] is True, body
    assert contact.email is not None
    return await emailed_token(db, contact.email)


# Portal side.


async def portal(
    client: httpx.AsyncClient,
    operation: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    cookie: str | None = None,
) -> httpx.Response:
    """One operation of the frontend contract, carrying exactly these credentials."""
    client.cookies.clear()
    headers = {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["cookie"] = f"{COOKIE}={cookie}"
        headers["x-csrf-protection"] = "1"
    document = {"query": OPERATIONS[operation], "operationName": operation}
    return await client.post(
        PORTAL, json={**document, "variables": variables or {}}, headers=headers
    )


async def answer(
    client: httpx.AsyncClient, operation: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await portal(client, operation, variables)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def accept(
    client: httpx.AsyncClient,
    token: str,
    *,
    tenant: str = "acme",
    username: str = "jo",
    password: str = PASSWORD,
) -> dict[str, Any]:
    invitation = {
        "tenant": tenant,
        "token": token,
        "name": "Jo Customer",
        "username": username,
        "password": password,
        "client": "MOBILE",
    }
    return await answer(client, "AcceptInvitation", {"input": invitation})


async def sign_in(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD
) -> dict[str, Any]:
    return await answer(
        client, "SignIn", {"login": login, "password": password, "client": "MOBILE"}
    )


def access_token(body: dict[str, Any], field: str) -> str:
    assert not body.get("errors"), body
    return str(body["data"][field]["tokens"]["accessToken"])


async def signed_in(client: httpx.AsyncClient, login: str, password: str = PASSWORD) -> str:
    """A mobile sign-in's access token."""
    return access_token(await sign_in(client, login, password), "signIn")


def session_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {COOKIE} cookie in {response.headers}")


async def browser_cookie(client: httpx.AsyncClient, login: str) -> str:
    """A browser sign-in's session cookie."""
    variables = {"login": login, "password": PASSWORD, "client": "BROWSER"}
    return session_cookie(await portal(client, "SignIn", variables))


async def viewer_email(
    client: httpx.AsyncClient, *, token: str | None = None, cookie: str | None = None
) -> str | None:
    response = await portal(client, "Viewer", token=token, cookie=cookie)
    assert response.status_code == 200, response.text
    viewer = response.json()["data"]["viewer"]
    return None if viewer is None else str(viewer["email"])


async def viewer_status(client: httpx.AsyncClient, token: str) -> int:
    return (await portal(client, "Viewer", token=token)).status_code


async def data_refusal(client: httpx.AsyncClient, token: str) -> list[str]:
    """The codes a signed-in session gets when it asks for portal data."""
    return error_codes(await gql(client, "{ contractors { name } }", path=PORTAL, token=token))


async def requested_link(
    client: httpx.AsyncClient, db: Database, operation: str, email: str = EMAIL
) -> str:
    """Asks for a reset or magic link; answers the token of the email that brings it."""
    field = operation[0].lower() + operation[1:]
    assert await answer(client, operation, {"email": email}) == {"data": {field: True}}
    return await emailed_token(db, email)


# The database, read and moved in time directly.


async def execute(db: Database, statement: sa.Executable) -> None:
    async with db.transaction(SYSTEM) as session:
        await session.execute(statement)


async def age_token(db: Database, purpose: TokenPurpose, email: str, by: timedelta) -> None:
    """Makes the tokens of `purpose` for `email` look issued `by` earlier than they were."""
    async with db.transaction(SYSTEM) as session:
        for token in await session.scalars(
            sa.select(OneTimeToken).where(
                col(OneTimeToken.purpose) == purpose, col(OneTimeToken.email) == email
            )
        ):
            token.created_at -= by
            token.expires_at -= by


async def stored_hash(db: Database, email: str = EMAIL) -> str:
    [account] = await rows(db, PortalAccount, col(PortalAccount.email) == email)
    assert account.password_hash is not None
    return account.password_hash


def argon2_cost(password_hash: str) -> tuple[int, int]:
    """The memory (KiB) and passes of an argon2id hash."""
    found = ARGON2ID.match(password_hash)
    assert found is not None, password_hash
    return int(found.group(1)), int(found.group(2))


async def audit_actions(db: Database) -> list[str]:
    entries = sorted(await rows(db, AuditEntry), key=lambda entry: entry.created_at)
    return [entry.action for entry in entries]


async def signed_in_user(client: httpx.AsyncClient, db: Database) -> tuple[PortalUser, str]:
    """Jo at tenant "acme" (the only tenant of the account), with a mobile access token."""
    tenant, _ = await make_tenant(db, slug="acme")
    jo = await make_portal_user(db, tenant)
    token = await signed_in(client, "jo")
    assert await viewer_email(client, token=token) == EMAIL
    return jo, token


# S3: the per-contact portal access switch.


async def test_s3_switching_access_on_writes_one_invitation_and_an_audit_entry(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, user, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)

    body = await set_access(client, staff, contact, True)
    assert body == {"data": {"setContactPortalAccess": {"email": EMAIL, "portalAccess": True}}}
    # Already on: nothing more happens.
    assert await set_access(client, staff, contact, True) == body

    [email] = await rows(db, OutboxEmail)
    assert (email.kind, email.to_address, email.tenant_id) == ("invitation", EMAIL, tenant.id)
    token = await emailed_token(db, EMAIL)
    assert f"{settings.portal_app_url}/acme/accept-invitation?token={token}" in email.text_body
    [entry] = await rows(db, AuditEntry)
    assert (entry.action, entry.actor_staff_id, entry.subject_type, entry.subject_id) == (
        "portal_access.enabled",
        user.id,
        "Contact",
        contact.id,
    )
    assert (entry.before, entry.after) == ({"portal_access": False}, {"portal_access": True})


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"plan": Plan.STARTER}, "PORTAL_NOT_IN_PLAN"),
        ({"portal_enabled": False}, "PORTAL_DISABLED"),
    ],
)
async def test_t2_no_invitation_goes_out_for_a_portal_the_business_cannot_offer(
    client: httpx.AsyncClient, db: Database, settings: Settings, change: dict[str, Any], code: str
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    async with db.transaction(SYSTEM) as session:
        await session.execute(sa.update(Tenant).where(col(Tenant.id) == tenant.id).values(**change))

    body = await set_access(client, staff, contact, True)
    assert error_codes(body) == [code]
    assert await rows(db, OutboxEmail) == []
    assert [c.portal_access for c in await rows(db, Contact, col(Contact.id) == contact.id)] == [
        False
    ]


@pytest.mark.parametrize(
    "email", [None, "", "   ", "jo", "jo@", "jo at customer.example", "jo@customer"]
)
async def test_s3_a_contact_without_a_valid_email_gets_email_required_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, settings: Settings, email: str | None
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, email)

    body = await set_access(client, staff, contact, True)
    assert error_codes(body) == ["EMAIL_REQUIRED"]
    assert body["errors"][0]["extensions"]["field"] == "email"
    [stored] = await rows(db, Contact, col(Contact.id) == contact.id)
    assert (stored.portal_access, stored.email) == (False, email)
    assert await rows(db, OutboxEmail) == []
    assert await rows(db, OneTimeToken) == []
    assert await rows(db, AuditEntry) == []


@pytest.mark.parametrize("role", [StaffRole.TECHNICIAN, StaffRole.DISPATCHER])
async def test_s3_staff_below_assistant_manager_get_role_forbidden(
    client: httpx.AsyncClient, db: Database, settings: Settings, role: StaffRole
) -> None:
    tenant, _, staff = await office(db, settings, role=role)
    [contact] = await contacts(db, tenant, EMAIL)

    assert error_codes(await set_access(client, staff, contact, True)) == ["ROLE_FORBIDDEN"]
    assert error_codes(await resend(client, staff, contact)) == ["ROLE_FORBIDDEN"]
    [stored] = await rows(db, Contact, col(Contact.id) == contact.id)
    assert stored.portal_access is False
    assert await rows(db, OutboxEmail) == []
    assert await rows(db, AuditEntry) == []


async def test_s3_switching_access_off_ends_the_users_sessions_at_once(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, user, staff = await office(db, settings)
    jo = await make_portal_user(db, tenant)
    bearer = await signed_in(client, "jo")
    cookie = await browser_cookie(client, "jo")
    assert await viewer_email(client, cookie=cookie) == EMAIL

    body = await set_access(client, staff, jo.contact, False)
    assert body == {"data": {"setContactPortalAccess": {"email": EMAIL, "portalAccess": False}}}

    assert await viewer_status(client, bearer) == 401
    assert await viewer_email(client, cookie=cookie) is None
    assert error_codes(await sign_in(client, "jo")) == ["PORTAL_DISABLED"]
    [entry] = await rows(db, AuditEntry)
    assert (entry.action, entry.actor_staff_id, entry.subject_id) == (
        "portal_access.disabled",
        user.id,
        jo.contact.id,
    )
    assert (entry.before, entry.after) == ({"portal_access": True}, {"portal_access": False})


async def test_s3_switching_access_off_voids_an_outstanding_invitation(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    assert (await set_access(client, staff, contact, False))["data"] is not None
    assert error_codes(await accept(client, token)) == ["INVALID_TOKEN"]
    [stored] = await rows(db, OneTimeToken)
    assert stored.used_at is None and stored.revoked_at is not None
    assert await rows(db, PortalAccount) == []
    assert await audit_actions(db) == ["portal_access.enabled", "portal_access.disabled"]


# S4: resending, and invitations expire.


async def test_s4_a_resent_invitation_is_a_new_email_and_only_its_link_works(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    first = await invite(client, db, staff, contact)

    assert await resend(client, staff, contact) == {
        "data": {"resendInvitation": {"portalAccess": True}}
    }
    second = await emailed_token(db, EMAIL)
    assert second != first
    emails = await rows(db, OutboxEmail)
    assert [(email.kind, email.to_address) for email in emails] == [("invitation", EMAIL)] * 2

    assert error_codes(await accept(client, first)) == ["INVALID_TOKEN"]
    accepted = await accept(client, second)
    assert accepted["data"]["acceptInvitation"]["viewer"]["email"] == EMAIL
    assert await audit_actions(db) == ["portal_access.enabled", "portal_access.invitation_resent"]


async def test_s4_an_invitation_expires_after_seven_days(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    kept, lapsed = await contacts(db, tenant, EMAIL, "kim@customer.example")

    token = await invite(client, db, staff, kept)
    await age_token(db, TokenPurpose.INVITATION, EMAIL, timedelta(days=6, hours=23))
    assert access_token(await accept(client, token), "acceptInvitation")

    token = await invite(client, db, staff, lapsed)
    await age_token(
        db, TokenPurpose.INVITATION, "kim@customer.example", timedelta(days=7, seconds=1)
    )
    assert error_codes(await accept(client, token, username="kim")) == ["INVALID_TOKEN"]


# P1: accepting an invitation; rows 20 and 21 for invitation tokens and passwords.


async def test_p1_accepting_an_invitation_signs_in_once_and_then_username_and_email_sign_in(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    body = await accept(client, token)
    viewer = body["data"]["acceptInvitation"]["viewer"]
    assert (viewer["name"], viewer["email"], viewer["username"]) == ("Jo Customer", EMAIL, "jo")
    assert await viewer_email(client, token=access_token(body, "acceptInvitation")) == EMAIL
    for login in ("jo", EMAIL):
        assert await viewer_email(client, token=await signed_in(client, login)) == EMAIL

    assert error_codes(await accept(client, token)) == ["INVALID_TOKEN"]
    assert error_codes(await accept(client, token, username="jo2")) == ["INVALID_TOKEN"]
    assert len(await rows(db, PortalAccount)) == 1


async def test_p1_invitation_tokens_are_stored_hashed(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    async with db.session(SYSTEM) as session:
        stored = (await session.execute(sa.text("SELECT * FROM one_time_tokens"))).all()
    assert len(stored) == 1
    assert all(token not in str(value) for value in stored[0])


async def test_p1_an_invitation_at_another_tenants_address_is_refused(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    await make_tenant(db, slug="other")
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    for slug in ("other", "nowhere"):
        assert error_codes(await accept(client, token, tenant=slug)) == ["INVALID_TOKEN"]
    assert access_token(await accept(client, token), "acceptInvitation")


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("kx7#qpz", id="7-characters"),
        pytest.param("password123", id="common"),
        pytest.param("Password123", id="common-capitalised"),
    ],
)
async def test_p1_a_weak_password_is_refused_and_the_link_still_works(
    client: httpx.AsyncClient, db: Database, settings: Settings, password: str
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    body = await accept(client, token, password=password)
    assert error_codes(body) == ["PASSWORD_TOO_WEAK"]
    assert body["errors"][0]["extensions"]["field"] == "password"
    assert await rows(db, PortalAccount) == []
    assert access_token(await accept(client, token), "acceptInvitation")


async def test_p1_a_taken_username_is_refused_and_the_link_still_works(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    await make_portal_user(db, tenant, email="kim@customer.example", username="kim")
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    body = await accept(client, token, username="Kim")
    assert error_codes(body) == ["USERNAME_TAKEN"]
    assert body["errors"][0]["extensions"]["field"] == "username"
    assert access_token(await accept(client, token), "acceptInvitation")
    assert (
        await viewer_email(client, token=await signed_in(client, "kim")) == "kim@customer.example"
    )


# Row 20: one token, five requests at once.


async def test_p1_five_concurrent_accepts_of_one_invitation_make_one_account(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    bodies = await asyncio.gather(*(accept(client, token) for _ in range(5)))
    assert sorted(error_codes(body) for body in bodies) == [[]] + [["INVALID_TOKEN"]] * 4
    assert len(await rows(db, PortalAccount)) == 1


async def test_p2_five_concurrent_resets_with_one_link_give_one_success(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    token = await requested_link(client, db, "RequestPasswordReset")

    variables = {"token": token, "newPassword": NEW_PASSWORD}
    bodies = await asyncio.gather(*(answer(client, "ResetPassword", variables) for _ in range(5)))
    assert sorted(error_codes(body) for body in bodies) == [[]] + [["INVALID_TOKEN"]] * 4
    assert await signed_in(client, "jo", NEW_PASSWORD)


# Row 21: passwords.


@pytest.mark.parametrize("length", [8, 64, 128])
async def test_p1_passwords_of_8_to_128_characters_are_accepted_whole(
    client: httpx.AsyncClient, db: Database, settings: Settings, length: int
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    password = ("Xq7!" * 32)[:length]
    token = await invite(client, db, staff, contact)

    assert access_token(await accept(client, token, password=password), "acceptInvitation")
    assert await signed_in(client, "jo", password)
    assert error_codes(await sign_in(client, "jo", password[:-1])) == ["INVALID_CREDENTIALS"]


async def test_p1_passwords_differing_only_in_the_65th_character_are_different(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    chosen = ("Xq7!" * 18)[:70]
    other = chosen[:64] + "Z" + chosen[65:]
    assert len(other) == 70 and other != chosen
    token = await invite(client, db, staff, contact)

    assert access_token(await accept(client, token, password=chosen), "acceptInvitation")
    assert error_codes(await sign_in(client, "jo", other)) == ["INVALID_CREDENTIALS"]
    assert await signed_in(client, "jo", chosen)


@pytest.fixture
def production_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords hashed as every environment but the test one hashes them."""
    monkeypatch.setenv("PORTAL_ENV", "production")


def strong(password_hash: str) -> bool:
    """Whether a hash has at least OWASP's argon2id floor: 19 MiB and 2 passes."""
    memory, passes = argon2_cost(password_hash)
    return memory >= 19 * 1024 and passes >= 2


@pytest.mark.parametrize("env", ["production", "development", None])
def test_sec21_every_environment_but_test_hashes_with_at_least_19_mib_and_2_passes(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    def run_as(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("PORTAL_ENV", raising=False)
        else:
            monkeypatch.setenv("PORTAL_ENV", value)

    run_as("test")
    cheap = passwords.hash_password(PASSWORD)
    assert not strong(cheap) and passwords.verify_password(cheap, PASSWORD)

    run_as(env)
    assert passwords.hasher() is passwords.HASHER
    assert strong(passwords.hash_password(PASSWORD))
    # A hash made with the test environment's parameters is replaced at its next sign-in.
    assert passwords.verify_password(cheap, PASSWORD) and passwords.needs_rehash(cheap)


@pytest.mark.usefixtures("production_hashing")
async def test_p1_a_chosen_password_is_stored_as_argon2id_with_at_least_19_mib_and_2_passes(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)
    assert access_token(await accept(client, token), "acceptInvitation")

    password_hash = await stored_hash(db)
    assert strong(password_hash)
    assert PASSWORD not in password_hash


@pytest.mark.usefixtures("production_hashing")
async def test_p2_a_hash_with_weaker_parameters_signs_in_and_is_replaced_by_a_stronger_one(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    await execute(
        db,
        sa.update(PortalAccount)
        .where(col(PortalAccount.email) == EMAIL)
        .values(password_hash=weak),
    )

    assert await signed_in(client, "jo")
    rehashed = await stored_hash(db)
    assert rehashed != weak and strong(rehashed)
    assert await signed_in(client, "jo")


# P2: sign-in and password reset; row 19, account enumeration.


async def test_p2_signs_in_with_email_or_username(client: httpx.AsyncClient, db: Database) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    for login in ("jo", EMAIL, "JO@Customer.Example"):
        assert await viewer_email(client, token=await signed_in(client, login)) == EMAIL


async def test_p2_a_wrong_password_and_an_unknown_login_get_identical_answers(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    for known, unknown in (("jo", "nobody"), (EMAIL, "nobody@customer.example")):
        wrong = await portal(client, "SignIn", {"login": known, "password": WRONG_PASSWORD})
        missing = await portal(client, "SignIn", {"login": unknown, "password": WRONG_PASSWORD})
        assert (wrong.status_code, wrong.json()) == (missing.status_code, missing.json())
        assert error_codes(wrong.json()) == ["INVALID_CREDENTIALS"]


async def test_p2_fifty_sign_ins_each_for_an_existing_and_a_missing_email_answer_alike(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    codes = []
    for _ in range(50):
        existing = await portal(client, "SignIn", {"login": EMAIL, "password": WRONG_PASSWORD})
        missing = await portal(
            client, "SignIn", {"login": "nobody@customer.example", "password": WRONG_PASSWORD}
        )
        assert (existing.status_code, existing.json()) == (missing.status_code, missing.json())
        codes.append(error_codes(existing.json()))
    allowed = SIGN_IN_PER_ACCOUNT.attempts
    assert allowed < 50
    assert codes == [["INVALID_CREDENTIALS"]] * allowed + [["RATE_LIMITED"]] * (50 - allowed)


async def _fifty_link_requests_each(
    client: httpx.AsyncClient, db: Database, operation: str, kind: str
) -> None:
    """Row 19 for an emailed link: 50 requests each for an existing and a missing email
    answer alike, rate limit included, and mail goes to the existing account only."""
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    answers = []
    for _ in range(50):
        existing = await portal(client, operation, {"email": EMAIL})
        missing = await portal(client, operation, {"email": "nobody@customer.example"})
        assert (existing.status_code, existing.json()) == (missing.status_code, missing.json())
        answers.append(existing.json())
    field = operation[0].lower() + operation[1:]
    allowed = EMAIL_LINK_PER_ACCOUNT.attempts
    assert answers[:allowed] == [{"data": {field: True}}] * allowed
    assert [error_codes(body) for body in answers[allowed:]] == [["RATE_LIMITED"]] * (50 - allowed)
    # emailed_token first writes the links still only asked for (the mail worker's first step).
    await emailed_token(db, EMAIL)
    emails = await rows(db, OutboxEmail)
    assert [(email.kind, email.to_address) for email in emails] == [(kind, EMAIL)] * allowed


async def test_p2_fifty_reset_requests_each_for_an_existing_and_a_missing_email_answer_alike(
    client: httpx.AsyncClient, db: Database
) -> None:
    await _fifty_link_requests_each(client, db, "RequestPasswordReset", "password_reset")


# The time to hide is argon2's: timed with the parameters every other environment uses.
@pytest.mark.usefixtures("production_hashing")
async def test_p2_an_unknown_login_takes_as_long_as_a_wrong_password(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    durations: dict[str, list[float]] = {"existing": [], "unknown": []}
    for n in range(20):
        for who, login in (("existing", "jo"), ("unknown", f"nobody{n}")):
            # Only the work of checking is timed, never a fast rate-limit refusal.
            await execute(db, sa.delete(RateLimitCounter))
            started = time.perf_counter()
            body = await sign_in(client, login, WRONG_PASSWORD)
            durations[who].append(time.perf_counter() - started)
            assert error_codes(body) == ["INVALID_CREDENTIALS"]
    existing, unknown = (statistics.median(durations[who]) for who in ("existing", "unknown"))
    assert abs(existing - unknown) < 0.5 * max(existing, unknown), (existing, unknown)


async def test_p2_a_reset_link_sets_a_new_password_ends_every_session_and_works_once(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    jo = await make_portal_user(db, tenant)
    bearers = [await signed_in(client, "jo"), await portal_token(db, settings, jo.account)]
    cookie = await browser_cookie(client, "jo")

    token = await requested_link(client, db, "RequestPasswordReset")
    [email] = await rows(db, OutboxEmail)
    assert email.kind == "password_reset"
    assert f"{settings.portal_app_url}/reset-password?token={token}" in email.text_body
    variables = {"token": token, "newPassword": NEW_PASSWORD}
    assert await answer(client, "ResetPassword", variables) == {"data": {"resetPassword": True}}

    assert [await viewer_status(client, bearer) for bearer in bearers] == [401, 401]
    assert await viewer_email(client, cookie=cookie) is None
    assert error_codes(await sign_in(client, "jo")) == ["INVALID_CREDENTIALS"]
    assert await viewer_email(client, token=await signed_in(client, "jo", NEW_PASSWORD)) == EMAIL
    again = {"token": token, "newPassword": "yet another long passphrase"}
    assert error_codes(await answer(client, "ResetPassword", again)) == ["INVALID_TOKEN"]
    assert await signed_in(client, "jo", NEW_PASSWORD)


async def test_p2_a_reset_link_expires_after_an_hour(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)

    token = await requested_link(client, db, "RequestPasswordReset")
    await age_token(db, TokenPurpose.PASSWORD_RESET, EMAIL, timedelta(minutes=59))
    variables = {"token": token, "newPassword": NEW_PASSWORD}
    assert await answer(client, "ResetPassword", variables) == {"data": {"resetPassword": True}}

    token = await requested_link(client, db, "RequestPasswordReset")
    await age_token(db, TokenPurpose.PASSWORD_RESET, EMAIL, timedelta(hours=1, seconds=1))
    variables = {"token": token, "newPassword": PASSWORD}
    assert error_codes(await answer(client, "ResetPassword", variables)) == ["INVALID_TOKEN"]
    assert await signed_in(client, "jo", NEW_PASSWORD)


# P3: magic links.


async def test_p3_opening_a_magic_link_changes_nothing_and_its_button_signs_in_once(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    token = await requested_link(client, db, "RequestMagicLink")
    [email] = await rows(db, OutboxEmail)
    link = f"{settings.public_url}/portal/magic-link?token={token}"
    assert email.kind == "magic_link" and link in email.text_body

    # A mail scanner fetching the link, twice.
    for _ in range(2):
        client.cookies.clear()
        page = await client.get(link.removeprefix(settings.public_url))
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in page.text and f'value="{token}"' in page.text
        assert "set-cookie" not in page.headers
    [stored] = await rows(db, OneTimeToken)
    assert stored.used_at is None

    form = {"token": token}
    refused = await client.post("/portal/magic-link", data=form, headers={"origin": EVIL})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    [stored] = await rows(db, OneTimeToken)
    assert stored.used_at is None

    origin = {"origin": settings.public_url}
    signed = await client.post("/portal/magic-link", data=form, headers=origin)
    assert signed.status_code == 303
    assert signed.headers["location"] == settings.portal_app_url
    assert await viewer_email(client, cookie=session_cookie(signed)) == EMAIL

    client.cookies.clear()
    again = await client.post("/portal/magic-link", data=form, headers=origin)
    assert again.status_code == 400 and "set-cookie" not in again.headers


async def test_p3_a_magic_link_redeemed_through_graphql_signs_in_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    token = await requested_link(client, db, "RequestMagicLink")

    body = await answer(client, "RedeemMagicLink", {"token": token})
    assert await viewer_email(client, token=access_token(body, "redeemMagicLink")) == EMAIL
    again = await answer(client, "RedeemMagicLink", {"token": token})
    assert error_codes(again) == ["INVALID_TOKEN"]


async def test_p3_a_magic_link_expires_after_15_minutes(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)

    token = await requested_link(client, db, "RequestMagicLink")
    await age_token(db, TokenPurpose.MAGIC_LINK, EMAIL, timedelta(minutes=14))
    body = await answer(client, "RedeemMagicLink", {"token": token})
    assert access_token(body, "redeemMagicLink")

    token = await requested_link(client, db, "RequestMagicLink")
    await age_token(db, TokenPurpose.MAGIC_LINK, EMAIL, timedelta(minutes=15, seconds=1))
    body = await answer(client, "RedeemMagicLink", {"token": token})
    assert error_codes(body) == ["INVALID_TOKEN"]


async def test_p3_fifty_magic_link_requests_each_for_an_existing_and_a_missing_email_answer_alike(
    client: httpx.AsyncClient, db: Database
) -> None:
    await _fifty_link_requests_each(client, db, "RequestMagicLink", "magic_link")


# P1-P3: each client address gets TOKEN_PER_ADDRESS tries at the token endpoints.

GUESSER = "203.0.113.7"
NEIGHBOUR = "198.51.100.20"
# What a try with a token came to: "OK", or the error code.
TokenTry = Callable[[httpx.AsyncClient, str], Awaitable[str]]


def outcome(body: dict[str, Any]) -> str:
    codes = error_codes(body)
    return codes[0] if codes else "OK"


def from_address(app: Starlette, address: str) -> httpx.AsyncClient:
    """A client whose requests come from `address`, as the server sees it."""
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def guessed_out(app: Starlette, attempt: TokenTry, token: str) -> None:
    """Wrong tokens from one address use up its tries; then even the right token is
    RATE_LIMITED there and is not used up, while another address gets through with it."""
    allowed = TOKEN_PER_ADDRESS.attempts
    async with from_address(app, GUESSER) as guesser:
        tries = [await attempt(guesser, f"guess{n:03d}-{'x' * 40}") for n in range(allowed)]
        assert tries == ["INVALID_TOKEN"] * allowed
        assert await attempt(guesser, token) == "RATE_LIMITED"
        assert await attempt(guesser, token) == "RATE_LIMITED"
    async with from_address(app, NEIGHBOUR) as neighbour:
        assert await attempt(neighbour, token) == "OK"


async def test_p1_one_address_gets_30_invitation_tokens_then_rate_limited(
    app: Starlette, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _, staff = await office(db, settings)
    [contact] = await contacts(db, tenant, EMAIL)
    token = await invite(client, db, staff, contact)

    async def attempt(http: httpx.AsyncClient, guess: str) -> str:
        return outcome(await accept(http, guess))

    await guessed_out(app, attempt, token)


async def test_p2_one_address_gets_30_reset_tokens_then_rate_limited(
    app: Starlette, client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    token = await requested_link(client, db, "RequestPasswordReset")

    async def attempt(http: httpx.AsyncClient, guess: str) -> str:
        variables = {"token": guess, "newPassword": NEW_PASSWORD}
        return outcome(await answer(http, "ResetPassword", variables))

    await guessed_out(app, attempt, token)
    assert await signed_in(client, "jo", NEW_PASSWORD)


async def test_p3_one_address_gets_30_magic_link_tokens_then_rate_limited(
    app: Starlette, client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    token = await requested_link(client, db, "RequestMagicLink")

    async def attempt(http: httpx.AsyncClient, guess: str) -> str:
        return outcome(await answer(http, "RedeemMagicLink", {"token": guess}))

    await guessed_out(app, attempt, token)


async def test_p3_one_address_gets_30_presses_of_the_magic_link_button_then_rate_limited(
    app: Starlette, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    token = await requested_link(client, db, "RequestMagicLink")

    async def attempt(http: httpx.AsyncClient, guess: str) -> str:
        http.cookies.clear()
        page = await http.post(
            "/portal/magic-link", data={"token": guess}, headers={"origin": settings.public_url}
        )
        if page.status_code == 303 and session_cookie(page):
            return "OK"
        assert page.status_code == 400 and "set-cookie" not in page.headers, page.text
        return "RATE_LIMITED" if "Too many attempts" in page.text else "INVALID_TOKEN"

    await guessed_out(app, attempt, token)


# T2-T4: the plan and the switches, at sign-in and for live sessions.


async def test_t2_customers_of_a_tenant_without_the_portal_plan_cannot_sign_in(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme", plan=Plan.STARTER)
    await make_portal_user(db, tenant)
    assert error_codes(await sign_in(client, "jo")) == ["PORTAL_NOT_IN_PLAN"]


async def test_t2_a_downgrade_ends_live_sessions_at_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    jo, token = await signed_in_user(client, db)
    await execute(
        db, sa.update(Tenant).where(col(Tenant.id) == jo.tenant.id).values(plan=Plan.STARTER)
    )
    assert await data_refusal(client, token) == ["PORTAL_NOT_IN_PLAN"]
    assert error_codes(await sign_in(client, "jo")) == ["PORTAL_NOT_IN_PLAN"]


async def test_t3_the_tenant_portal_switch_off_refuses_sign_in_and_ends_live_sessions(
    client: httpx.AsyncClient, db: Database
) -> None:
    jo, token = await signed_in_user(client, db)
    await execute(
        db, sa.update(Tenant).where(col(Tenant.id) == jo.tenant.id).values(portal_enabled=False)
    )
    assert await data_refusal(client, token) == ["PORTAL_DISABLED"]
    assert error_codes(await sign_in(client, "jo")) == ["PORTAL_DISABLED"]


async def test_t4_the_customer_portal_switch_off_refuses_sign_in_and_ends_live_sessions(
    client: httpx.AsyncClient, db: Database
) -> None:
    jo, token = await signed_in_user(client, db)
    await execute(
        db,
        sa.update(Customer)
        .where(col(Customer.tenant_id) == jo.tenant.id, col(Customer.id) == jo.customer.id)
        .values(portal_enabled=False),
    )
    assert await data_refusal(client, token) == ["PORTAL_DISABLED"]
    assert error_codes(await sign_in(client, "jo")) == ["PORTAL_DISABLED"]


# P4: one account, two contractors.


async def test_p4_an_account_at_two_contractors_keeps_its_session_until_both_switch_it_off(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    acme, _, acme_staff = await office(db, settings, slug="acme")
    other, _, other_staff = await office(db, settings, slug="other")
    at_acme = await make_portal_user(db, acme)
    at_other = await make_portal_user(db, other)
    assert at_acme.account.id == at_other.account.id
    token = await signed_in(client, "jo")

    assert (await set_access(client, acme_staff, at_acme.contact, False))["data"] is not None
    assert await viewer_email(client, token=token) == EMAIL
    assert await signed_in(client, "jo")

    assert (await set_access(client, other_staff, at_other.contact, False))["data"] is not None
    assert await viewer_status(client, token) == 401
    assert error_codes(await sign_in(client, "jo")) == ["PORTAL_DISABLED"]


# H5 and row 25: invitations through the outbox to a real SMTP server.


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.05)


async def make_due(db: Database) -> None:
    await execute(
        db, sa.update(OutboxEmail).values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )


async def test_h5_invitations_written_while_smtp_is_down_arrive_once_each_when_it_is_back(
    db: Database, database_url: str, smtp: SmtpServer
) -> None:
    settings = make_settings(database_url, smtp_url=smtp.url, mail_poll_seconds=0.05)
    app = create_app(settings, db=db)
    tenant, _, staff = await office(db, settings)
    addresses = [f"customer{n}@customer.example" for n in range(3)]
    people = await contacts(db, tenant, *addresses)

    async def attempted(times: int) -> bool:
        emails = await rows(db, OutboxEmail)
        return len(emails) == 3 and all(email.attempts >= times for email in emails)

    async def arrived() -> bool:
        return len(smtp.inbox.messages) >= 3

    smtp.stop()
    async with app.router.lifespan_context(app), http_client(app) as client:
        for person in people:
            await invite(client, db, staff, person)
        await eventually(lambda: attempted(1))
        await make_due(db)
        await eventually(lambda: attempted(2))
        smtp.start()
        await make_due(db)
        await eventually(arrived)
        # More passes, with every row due again: a sent email is never sent twice.
        await make_due(db)
        await asyncio.sleep(0.5)

    assert sorted(smtp.inbox.recipients) == addresses
    assert len(set(smtp.inbox.message_ids)) == 3
    for message in smtp.inbox.messages:
        token = await emailed_token(db, str(message["To"]))
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        assert (
            f"{settings.portal_app_url}/acme/accept-invitation?token={token}" in text.get_content()
        )
    emails = await rows(db, OutboxEmail)
    assert all(email.status is OutboxStatus.SENT and email.attempts >= 2 for email in emails)


async def test_h5_an_invitation_committed_before_a_crash_is_sent_once_after_restart(
    db: Database, database_url: str, smtp: SmtpServer
) -> None:
    # SECURITY row 25: the server dies after the commit and before any delivery pass.
    settings = make_settings(database_url, smtp_url=smtp.url, mail_poll_seconds=0.05)
    tenant, _, staff = await office(db, settings)
    [person] = await contacts(db, tenant, EMAIL)
    async with http_client(create_app(settings, db=db)) as client:  # no lifespan: no worker
        await invite(client, db, staff, person)
    assert [email.status for email in await rows(db, OutboxEmail)] == [OutboxStatus.PENDING]
    assert smtp.inbox.messages == []

    restarted = create_app(settings, db=db)
    async with restarted.router.lifespan_context(restarted):
        await eventually(lambda: _arrived(smtp, 1))
        await asyncio.sleep(0.3)
    assert smtp.inbox.recipients == [EMAIL]
    assert [email.status for email in await rows(db, OutboxEmail)] == [OutboxStatus.SENT]


async def _arrived(smtp: SmtpServer, count: int) -> bool:
    return len(smtp.inbox.messages) >= count
