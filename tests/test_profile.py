"""My profile (E17): a portal user changes name, username, email (once the new address
confirms, the old one told) and password, and signs out everywhere, over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from app.db.models import OutboxEmail, PortalAccount
from app.db.scope import SYSTEM
from app.db.session import Database
from app.sdl import PORTAL_SDL
from app.settings import Settings
from tests.support import (
    PASSWORD,
    PORTAL,
    PortalUser,
    emailed_token,
    error_codes,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
)

OPERATIONS = PORTAL_SDL.parent / "operations"
ME = "{ viewer { name email username } }"
NEW_EMAIL = "jo.new@customer.example"


async def _send(
    client: httpx.AsyncClient, operation: str, variables: dict[str, Any], token: str | None
) -> dict[str, Any]:
    document = (OPERATIONS / f"{operation}.graphql").read_text()
    return await gql(client, document, variables, path=PORTAL, token=token)


async def _me(db: Database, settings: Settings) -> tuple[PortalUser, str]:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    return user, await portal_token(db, settings, user.account)


async def _signs_in(client: httpx.AsyncClient, login: str, password: str = PASSWORD) -> bool:
    body = await _send(
        client, "SignIn", {"login": login, "password": password, "client": "MOBILE"}, None
    )
    return "errors" not in body


async def _emails(db: Database, to: str) -> list[OutboxEmail]:
    async with db.session(SYSTEM) as session:
        return list(
            await session.scalars(
                sa.select(OutboxEmail)
                .where(col(OutboxEmail.to_address) == to)
                .order_by(col(OutboxEmail.created_at))
            )
        )


async def test_e17_a_user_changes_name_and_username_and_signs_in_by_the_new_one(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    user, token = await _me(db, settings)
    body = await _send(
        client, "UpdateProfile", {"name": " Joanna Customer ", "username": " JoC "}, token
    )
    assert body["data"]["updateProfile"]["name"] == "Joanna Customer"
    assert body["data"]["updateProfile"]["username"] == "joc"
    assert (await gql(client, ME, path=PORTAL, token=token))["data"]["viewer"] == {
        "name": "Joanna Customer",
        "email": user.account.email,
        "username": "joc",
    }
    assert await _signs_in(client, "joc") and not await _signs_in(client, "jo")
    # Leaving a field out keeps it.
    kept = await _send(client, "UpdateProfile", {"name": "Jo C"}, token)
    assert kept["data"]["updateProfile"]["username"] == "joc"

    await make_portal_user(db, user.tenant, email="kim@customer.example", username="kim")
    taken = await _send(client, "UpdateProfile", {"username": "KIM"}, token)
    assert error_codes(taken) == ["USERNAME_TAKEN"]
    for variables, field in [
        ({"name": "  "}, "name"),
        ({"username": ""}, "username"),
        ({"username": "jo@home"}, "username"),
        ({"username": "x" * 65}, "username"),
    ]:
        bad = await _send(client, "UpdateProfile", variables, token)
        assert error_codes(bad) == ["INVALID_INPUT"], variables
        assert bad["errors"][0]["extensions"]["field"] == field
    async with db.session(SYSTEM) as session:
        account = await session.get(PortalAccount, user.account.id)
    assert account is not None and (account.name, account.username) == ("Jo C", "joc")


async def test_e17_a_new_email_counts_only_once_its_link_is_opened_and_the_old_one_is_told(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    user, token = await _me(db, settings)
    old = user.account.email
    wrong = await _send(
        client, "RequestEmailChange", {"newEmail": NEW_EMAIL, "currentPassword": "nope"}, token
    )
    assert error_codes(wrong) == ["INVALID_CREDENTIALS"]
    assert await _emails(db, NEW_EMAIL) == []
    for address in ["not an address", old]:
        bad = await _send(
            client,
            "RequestEmailChange",
            {"newEmail": address, "currentPassword": PASSWORD},
            token,
        )
        assert error_codes(bad) == ["INVALID_INPUT"], address
        assert bad["errors"][0]["extensions"]["field"] == "newEmail"

    asked = await _send(
        client,
        "RequestEmailChange",
        {"newEmail": " Jo.New@Customer.Example ", "currentPassword": PASSWORD},
        token,
    )
    assert asked["data"]["requestEmailChange"] is True
    link = await emailed_token(db, NEW_EMAIL)
    [sent] = await _emails(db, NEW_EMAIL)
    assert sent.kind == "email_change" and "/confirm-email?token=" in sent.text_body
    # Nothing changes until the link is opened.
    assert (await gql(client, ME, path=PORTAL, token=token))["data"]["viewer"]["email"] == old
    assert await _signs_in(client, old) and not await _signs_in(client, NEW_EMAIL)

    confirmed = await _send(client, "ConfirmEmailChange", {"token": link}, None)
    assert confirmed["data"]["confirmEmailChange"] is True
    assert (await gql(client, ME, path=PORTAL, token=token))["data"]["viewer"]["email"] == (
        NEW_EMAIL
    )
    assert await _signs_in(client, NEW_EMAIL) and not await _signs_in(client, old)
    [told] = await _emails(db, old)
    assert told.kind == "email_changed" and NEW_EMAIL in told.text_body
    again = await _send(client, "ConfirmEmailChange", {"token": link}, None)
    assert error_codes(again) == ["INVALID_TOKEN"]


async def test_e17_a_second_request_replaces_the_first_and_a_taken_address_is_refused(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    user, token = await _me(db, settings)
    variables = {"newEmail": NEW_EMAIL, "currentPassword": PASSWORD}
    await _send(client, "RequestEmailChange", variables, token)
    first = await emailed_token(db, NEW_EMAIL)
    await _send(client, "RequestEmailChange", variables, token)
    second = await emailed_token(db, NEW_EMAIL)
    assert first != second
    stale = await _send(client, "ConfirmEmailChange", {"token": first}, None)
    assert error_codes(stale) == ["INVALID_TOKEN"]

    # Someone else signed up with the address meanwhile: the change is refused, nothing moves.
    await make_portal_user(db, user.tenant, email=NEW_EMAIL, username="other")
    taken = await _send(client, "ConfirmEmailChange", {"token": second}, None)
    assert error_codes(taken) == ["EMAIL_TAKEN"]
    assert (await gql(client, ME, path=PORTAL, token=token))["data"]["viewer"]["email"] == (
        user.account.email
    )
    assert await _emails(db, user.account.email) == []


async def test_e17_password_change_and_signing_out_everywhere_end_every_other_session(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    user, phone = await _me(db, settings)
    laptop = await portal_token(db, settings, user.account)
    changed = await _send(
        client,
        "ChangePassword",
        {"currentPassword": PASSWORD, "newPassword": "a much longer new passphrase"},
        phone,
    )
    assert "errors" not in changed, changed
    fresh = changed["data"]["changePassword"]["accessToken"]
    stale = await client.post(
        PORTAL, json={"query": ME}, headers={"authorization": f"Bearer {laptop}"}
    )
    assert stale.status_code == 401
    assert not await _signs_in(client, "jo")
    assert await _signs_in(client, "jo", "a much longer new passphrase")

    other = await portal_token(db, settings, user.account)
    everywhere = await _send(client, "SignOutEverywhere", {}, fresh)
    assert everywhere["data"]["signOutEverywhere"] is True
    for token in (fresh, other):
        after = await client.post(
            PORTAL, json={"query": ME}, headers={"authorization": f"Bearer {token}"}
        )
        assert after.status_code == 401
        assert after.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
