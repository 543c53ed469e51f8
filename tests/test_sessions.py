"""Sign-in (P2) and sessions (P5) over HTTP: cookies, bearer tokens, refresh rotation,
sign-out, password change, and the attacks of SECURITY.md rows 6, 7, 14-18."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlmodel import col
from starlette.applications import Starlette

from app.auth.passwords import hash_password
from app.auth.tokens import Audience, issue_access_token, read_access_token
from app.db.base import utcnow
from app.db.models import (
    AuthSession,
    OutboxEmail,
    Plan,
    PortalAccount,
    RateLimitCounter,
    StaffRole,
    StaffUser,
    Tenant,
)
from app.db.scope import SYSTEM
from app.db.session import Database
from app.settings import Settings
from tests.support import (
    PASSWORD,
    PORTAL,
    STAFF,
    PortalUser,
    count_statements,
    error_codes,
    gql,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)

COOKIE_NAMES = {STAFF: "__Host-staff_session", PORTAL: "__Host-portal_session"}
SIGN_IN = {
    STAFF: """mutation (
      $tenant: String!, $email: String!, $password: String!, $client: ClientKind!
    ) {
      signIn(tenant: $tenant, email: $email, password: $password, client: $client) {
        viewer { email } tokens { accessToken refreshToken }
      }
    }""",
    PORTAL: """mutation ($login: String!, $password: String!, $client: ClientKind!) {
      signIn(login: $login, password: $password, client: $client) {
        viewer { email } tokens { accessToken refreshToken }
      }
    }""",
}
# One guess, written inline as an attacker would, for documents that repeat it.
GUESS = {
    STAFF: 'signIn(tenant: "acme", email: "owner@acme.example", password: "guess") '
    "{ viewer { email } }",
    PORTAL: 'signIn(login: "jo", password: "guess") { viewer { email } }',
}
VIEWER = "{ viewer { email } }"
SIGN_OUT = "mutation { signOut }"
REFRESH = """mutation ($token: String!) {
  refreshSession(refreshToken: $token) { accessToken refreshToken }
}"""
CHANGE_PASSWORD = """mutation ($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) { accessToken refreshToken }
}"""
NEW_PASSWORD = "a brand new and rather long passphrase"
ONE_FIELD = "Send one sign-in or token field per request."
# The address httpx gives requests sent straight to the app.
CLIENT_ADDRESS = "127.0.0.1"
EVIL = "https://evil.example"


@dataclass(frozen=True)
class Side:
    """One schema's endpoint and a user who can sign in there."""

    path: str
    audience: Audience
    credentials: dict[str, str]
    email: str
    subject: uuid.UUID
    tenant_id: uuid.UUID | None


@dataclass(frozen=True)
class SetCookie:
    value: str
    attributes: dict[str, str]


@pytest.fixture(params=[STAFF, PORTAL], ids=["staff", "portal"])
async def side(request: pytest.FixtureRequest, db: Database) -> Side:
    tenant, user = await make_tenant(db, slug="acme")
    if request.param == STAFF:
        return await staff_side(db, user)
    return portal_side(await make_portal_user(db, tenant))


async def staff_side(db: Database, user: StaffUser) -> Side:
    """Gives the staff user PASSWORD, which `make_tenant` leaves unset."""
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(StaffUser)
            .where(col(StaffUser.tenant_id) == user.tenant_id, col(StaffUser.id) == user.id)
            .values(password_hash=hash_password(PASSWORD))
        )
    credentials = {"tenant": "acme", "email": user.email, "password": PASSWORD}
    return Side(STAFF, Audience.STAFF, credentials, user.email, user.id, user.tenant_id)


def portal_side(user: PortalUser) -> Side:
    credentials = {"login": user.account.username or user.account.email, "password": PASSWORD}
    return Side(PORTAL, Audience.PORTAL, credentials, user.account.email, user.account.id, None)


async def post(
    client: httpx.AsyncClient,
    path: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A JSON POST carrying exactly the credentials named here, and no others."""
    client.cookies.clear()
    return await client.post(
        path,
        json={"query": query, "variables": variables or {}},
        headers={**credentials_headers(path, token=token, cookie=cookie), **(headers or {})},
    )


def credentials_headers(
    path: str, *, token: str | None = None, cookie: str | None = None
) -> dict[str, str]:
    sent: dict[str, str] = {}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    if cookie is not None:
        # As a browser app sends it: the cookie, and the header a foreign page cannot add.
        sent["cookie"] = f"{COOKIE_NAMES[path]}={cookie}"
        sent["x-csrf-protection"] = "1"
    return sent


async def viewer_email(
    client: httpx.AsyncClient, path: str, *, token: str | None = None, cookie: str | None = None
) -> str | None:
    """The signed-in viewer's email, None when anonymous; fails on any non-200 answer."""
    response = await post(client, path, VIEWER, token=token, cookie=cookie)
    assert response.status_code == 200, response.text
    viewer = response.json()["data"]["viewer"]
    return None if viewer is None else str(viewer["email"])


async def viewer_status(client: httpx.AsyncClient, path: str, token: str) -> int:
    return (await post(client, path, VIEWER, token=token)).status_code


async def sign_in(
    client: httpx.AsyncClient, side: Side, kind: str = "MOBILE", **override: str
) -> httpx.Response:
    variables = {**side.credentials, "client": kind, **override}
    return await post(client, side.path, SIGN_IN[side.path], variables)


async def sign_in_codes(client: httpx.AsyncClient, side: Side, **override: str) -> list[str]:
    response = await sign_in(client, side, **override)
    assert response.status_code == 200, response.text
    return error_codes(response.json())


async def mobile(client: httpx.AsyncClient, side: Side) -> tuple[str, str]:
    """A mobile sign-in's access and refresh tokens."""
    response = await sign_in(client, side)
    tokens = response.json()["data"]["signIn"]["tokens"]
    return tokens["accessToken"], tokens["refreshToken"]


async def browser(client: httpx.AsyncClient, side: Side) -> str:
    """A browser sign-in's session cookie value."""
    response = await sign_in(client, side, "BROWSER")
    return set_cookies(response)[COOKIE_NAMES[side.path]].value


async def refresh(client: httpx.AsyncClient, path: str, token: str) -> dict[str, Any]:
    return await gql(client, REFRESH, {"token": token}, path=path)


def set_cookies(response: httpx.Response) -> dict[str, SetCookie]:
    """Each raw `set-cookie` header, by cookie name, with lower-cased attribute names."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        pair, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = pair.partition("=")
        parsed = (attribute.partition("=") for attribute in attributes)
        found[name] = SetCookie(value, {key.lower(): val for key, _, val in parsed})
    return found


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


async def deactivate(db: Database, side: Side) -> None:
    table = StaffUser if side.audience is Audience.STAFF else PortalAccount
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(table).where(col(table.id) == side.subject).values(is_active=False)
        )


async def update_session(db: Database, session_id: uuid.UUID, **values: Any) -> None:
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(AuthSession).where(col(AuthSession.id) == session_id).values(**values)
        )


async def counted_attempts(db: Database) -> list[str]:
    async with db.session(SYSTEM) as session:
        return list(await session.scalars(sa.select(col(RateLimitCounter.key))))


async def outbox_size(db: Database) -> int:
    async with db.session(SYSTEM) as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) or 0)


# Row 16: cookie flags; browsers get a cookie, mobile apps get tokens.


async def test_p5_browser_sign_in_sets_a_host_only_secure_httponly_lax_cookie_and_no_tokens(
    client: httpx.AsyncClient, side: Side
) -> None:
    response = await sign_in(client, side, "BROWSER")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["signIn"] == {"viewer": {"email": side.email}, "tokens": None}
    cookies = set_cookies(response)
    assert list(cookies) == [COOKIE_NAMES[side.path]]
    cookie = cookies[COOKIE_NAMES[side.path]]
    assert cookie.value
    assert "secure" in cookie.attributes
    assert "httponly" in cookie.attributes
    assert cookie.attributes["samesite"].lower() == "lax"
    assert cookie.attributes["path"] == "/"
    assert "domain" not in cookie.attributes
    assert await viewer_email(client, side.path, cookie=cookie.value) == side.email
    assert await viewer_email(client, side.path) is None


async def test_p5_mobile_sign_in_sets_no_cookie_and_returns_working_tokens(
    client: httpx.AsyncClient, side: Side
) -> None:
    response = await sign_in(client, side, "MOBILE")
    assert response.status_code == 200, response.text
    assert "set-cookie" not in response.headers
    tokens = response.json()["data"]["signIn"]["tokens"]
    assert tokens["accessToken"] and tokens["refreshToken"]
    assert await viewer_email(client, side.path, token=tokens["accessToken"]) == side.email


# P5 sign-out.


async def test_p5_sign_out_clears_the_cookie_and_the_old_cookie_no_longer_signs_in(
    client: httpx.AsyncClient, side: Side
) -> None:
    cookie = await browser(client, side)
    response = await post(client, side.path, SIGN_OUT, cookie=cookie)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"signOut": True}}
    cleared = set_cookies(response)[COOKIE_NAMES[side.path]]
    assert cleared.value in ("", '""')
    assert cleared.attributes["max-age"] == "0"
    assert await viewer_email(client, side.path, cookie=cookie) is None


async def test_p5_sign_out_with_a_bearer_token_ends_it_and_refuses_its_refresh_token(
    client: httpx.AsyncClient, side: Side
) -> None:
    access, refresh_token = await mobile(client, side)
    response = await post(client, side.path, SIGN_OUT, token=access)
    assert response.json() == {"data": {"signOut": True}}
    assert await viewer_status(client, side.path, access) == 401
    assert error_codes(await refresh(client, side.path, refresh_token)) == ["UNAUTHENTICATED"]


# Row 17: token abuse.


async def test_p5_forged_expired_misissued_and_revoked_tokens_get_401(
    client: httpx.AsyncClient, db: Database, settings: Settings, side: Side
) -> None:
    access, _ = await mobile(client, side)
    assert await viewer_status(client, side.path, access) == 200
    header, payload, signature = access.split(".")
    claims = token_claims(access)
    session_id = uuid.UUID(claims["sid"])

    def issue(issuer: Settings = settings, **overrides: Any) -> str:
        values: dict[str, Any] = {
            "audience": side.audience,
            "subject": side.subject,
            "session_id": session_id,
            "tenant_id": side.tenant_id,
            **overrides,
        }
        return issue_access_token(issuer, **values)

    alg_none = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    forged = {
        "alg none": f"{alg_none}.{payload}.",
        "another key": jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, OctKey.generate_key(256)),
        "another subject, same signature": ".".join(
            [header, b64url(json.dumps({**claims, "sub": str(uuid.uuid4())}).encode()), signature]
        ),
        "expired": issue(now=time.time() - 3600),
        "another issuer": issue(settings.model_copy(update={"public_url": EVIL})),
        "unknown session": issue(session_id=uuid.uuid4()),
    }
    for why, token in forged.items():
        assert await viewer_status(client, side.path, token) == 401, why
    assert await viewer_status(client, side.path, access) == 200
    await update_session(db, session_id, revoked_at=utcnow())
    assert await viewer_status(client, side.path, access) == 401


async def test_p5_a_token_for_one_schema_gets_401_at_the_other(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    tenant, user = await make_tenant(db, slug="acme")
    jo = await make_portal_user(db, tenant)
    staff = await staff_token(db, settings, user)
    portal = await portal_token(db, settings, jo.account)
    assert await viewer_status(client, STAFF, staff) == 200
    assert await viewer_status(client, PORTAL, portal) == 200
    assert await viewer_status(client, STAFF, portal) == 401
    assert await viewer_status(client, PORTAL, staff) == 401


async def test_p5_a_staff_token_dies_with_its_user_and_never_speaks_for_another_tenant(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    acme, alice = await make_tenant(db, slug="acme")
    globex, bob = await make_tenant(db, slug="globex")
    carol = StaffUser(
        tenant_id=acme.id, email="carol@acme.example", name="Carol", role=StaffRole.TECHNICIAN
    )
    async with db.transaction(SYSTEM) as session:
        session.add(carol)
    alice_token = await staff_token(db, settings, alice)
    carol_token = await staff_token(db, settings, carol)
    # Even with the real key, a token naming globex's user on acme's session is refused.
    bob_on_alice_session = issue_access_token(
        settings,
        audience=Audience.STAFF,
        subject=bob.id,
        tenant_id=globex.id,
        session_id=uuid.UUID(token_claims(alice_token)["sid"]),
    )
    assert await viewer_status(client, STAFF, bob_on_alice_session) == 401
    assert await viewer_status(client, STAFF, alice_token) == 200
    assert await viewer_status(client, STAFF, carol_token) == 200
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(StaffUser).where(col(StaffUser.id) == alice.id).values(is_active=False)
        )
        await session.execute(sa.delete(StaffUser).where(col(StaffUser.id) == carol.id))
    assert await viewer_status(client, STAFF, alice_token) == 401
    assert await viewer_status(client, STAFF, carol_token) == 401


# Row 18: refresh rotation and reuse.


async def test_p5_refresh_rotates_and_a_replayed_refresh_token_revokes_the_whole_session(
    client: httpx.AsyncClient, side: Side
) -> None:
    _, r1 = await mobile(client, side)
    rotated = (await refresh(client, side.path, r1))["data"]["refreshSession"]
    a2, r2 = rotated["accessToken"], rotated["refreshToken"]
    assert r2 != r1
    assert await viewer_email(client, side.path, token=a2) == side.email
    replay = await refresh(client, side.path, r1)
    assert replay["data"] is None
    assert error_codes(replay) == ["UNAUTHENTICATED"]
    assert error_codes(await refresh(client, side.path, r2)) == ["UNAUTHENTICATED"]
    assert await viewer_status(client, side.path, a2) == 401


async def test_p5_a_refresh_token_past_the_session_absolute_expiry_is_refused(
    client: httpx.AsyncClient, db: Database, side: Side
) -> None:
    access, refresh_token = await mobile(client, side)
    session_id = uuid.UUID(token_claims(access)["sid"])
    await update_session(db, session_id, expires_at=utcnow() - timedelta(seconds=1))
    assert error_codes(await refresh(client, side.path, refresh_token)) == ["UNAUTHENTICATED"]
    assert await viewer_status(client, side.path, access) == 401


# P5 password change.


async def test_p5_password_change_needs_the_current_password_and_a_strong_new_one(
    client: httpx.AsyncClient, side: Side
) -> None:
    access, _ = await mobile(client, side)
    attempts = {
        ("not my password", NEW_PASSWORD): "INVALID_CREDENTIALS",
        (PASSWORD, "short7!"): "PASSWORD_TOO_WEAK",
        (PASSWORD, "password1"): "PASSWORD_TOO_WEAK",
    }
    for (current, new), code in attempts.items():
        body = await gql(
            client, CHANGE_PASSWORD, {"current": current, "new": new}, path=side.path, token=access
        )
        assert error_codes(body) == [code], (current, new)
    assert await viewer_email(client, side.path, token=access) == side.email
    assert await sign_in_codes(client, side) == []


async def test_p5_password_change_ends_every_other_session_and_hands_over_fresh_credentials(
    client: httpx.AsyncClient, side: Side
) -> None:
    mine, my_refresh = await mobile(client, side)
    other, other_refresh = await mobile(client, side)
    body = await gql(
        client,
        CHANGE_PASSWORD,
        {"current": PASSWORD, "new": NEW_PASSWORD},
        path=side.path,
        token=mine,
    )
    fresh = body["data"]["changePassword"]
    assert await viewer_status(client, side.path, other) == 401
    assert await viewer_email(client, side.path, token=fresh["accessToken"]) == side.email
    assert error_codes(await refresh(client, side.path, other_refresh)) == ["UNAUTHENTICATED"]
    assert error_codes(await refresh(client, side.path, my_refresh)) == ["UNAUTHENTICATED"]
    assert error_codes(await refresh(client, side.path, fresh["refreshToken"])) == []
    assert await sign_in_codes(client, side) == ["INVALID_CREDENTIALS"]
    assert await sign_in_codes(client, side, password=NEW_PASSWORD) == []


async def test_p5_password_change_in_a_browser_swaps_the_cookie_and_ends_other_sessions(
    client: httpx.AsyncClient, side: Side
) -> None:
    cookie = await browser(client, side)
    other, _ = await mobile(client, side)
    response = await post(
        client,
        side.path,
        CHANGE_PASSWORD,
        {"current": PASSWORD, "new": NEW_PASSWORD},
        cookie=cookie,
    )
    assert response.json() == {"data": {"changePassword": None}}
    fresh = set_cookies(response)[COOKIE_NAMES[side.path]].value
    assert fresh and fresh != cookie
    assert await viewer_email(client, side.path, cookie=fresh) == side.email
    assert await viewer_email(client, side.path, cookie=cookie) is None
    assert await viewer_status(client, side.path, other) == 401


# Row 6: alias brute force; each refused document counts against its address (row 31).


def _aliased(field: str, count: int) -> str:
    return "mutation {" + " ".join(f"a{n}: {field}" for n in range(count)) + "}"


REJECTED_DOCUMENTS = {
    "staff, 100 aliased signIn": (STAFF, _aliased(GUESS[STAFF], 100)),
    "portal, 100 aliased signIn": (PORTAL, _aliased(GUESS[PORTAL], 100)),
    "portal, 2 aliased signIn": (PORTAL, _aliased(GUESS[PORTAL], 2)),
    "portal, a fragment spread twice": (
        PORTAL,
        f"mutation {{ ...Guess ...Guess }} fragment Guess on Mutation {{ {GUESS[PORTAL]} }}",
    ),
    "portal, aliases in two inline fragments": (
        PORTAL,
        f"mutation {{ ... on Mutation {{ a: {GUESS[PORTAL]} }} "
        f"... on Mutation {{ b: {GUESS[PORTAL]} }} }}",
    ),
    "portal, 2 aliased requestPasswordReset": (
        PORTAL,
        _aliased('requestPasswordReset(email: "jo@customer.example")', 2),
    ),
}


@pytest.mark.parametrize("document", REJECTED_DOCUMENTS.values(), ids=REJECTED_DOCUMENTS.keys())
async def test_p2_repeated_credential_fields_are_rejected_and_count_once_against_the_address(
    client: httpx.AsyncClient, db: Database, document: tuple[str, str]
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    await make_portal_user(db, tenant)
    path, query = document
    body = await gql(client, query, path=path)
    assert body["data"] is None
    assert ONE_FIELD in [error["message"] for error in body["errors"]]
    # Nothing ran, and no account's counter moved: the sender's address paid for a request.
    assert await counters(db) == {f"sign-in:address:{CLIENT_ADDRESS}": 1}
    assert await outbox_size(db) == 0


async def counters(db: Database) -> dict[str, int]:
    async with db.session(SYSTEM) as session:
        rows = await session.execute(
            sa.select(col(RateLimitCounter.key), col(RateLimitCounter.hits))
        )
        return {key: hits for key, hits in rows}


async def test_p2_an_alias_flood_spends_its_address_but_the_account_signs_in_elsewhere(
    client: httpx.AsyncClient, app: Starlette, db: Database, side: Side
) -> None:
    for _ in range(50):
        body = await gql(client, _aliased(GUESS[side.path], 100), path=side.path)
        assert body["data"] is None and body["errors"]
    assert await sign_in_codes(client, side) == ["RATE_LIMITED"]
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 50000)),
        base_url="http://testserver",
    )
    async with elsewhere:
        assert await sign_in_codes(elsewhere, side) == []


async def test_p2_after_ten_wrong_passwords_even_the_right_one_is_rate_limited(
    client: httpx.AsyncClient, side: Side
) -> None:
    for _ in range(10):
        assert await sign_in_codes(client, side, password="wrong guess") == ["INVALID_CREDENTIALS"]
    assert await sign_in_codes(client, side) == ["RATE_LIMITED"]


async def test_p2_the_per_account_limit_ignores_spaces_around_the_tenant_slug(
    client: httpx.AsyncClient, db: Database
) -> None:
    _, user = await make_tenant(db, slug="acme")
    side = await staff_side(db, user)
    for _ in range(10):
        assert await sign_in_codes(client, side, password="wrong guess") == ["INVALID_CREDENTIALS"]
    # The slug is trimmed to find the tenant, so " acme " is the same account.
    assert await sign_in_codes(client, side, tenant=" acme ") == ["RATE_LIMITED"]


async def test_p2_the_per_account_limit_counts_email_and_username_together(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    jo = portal_side(await make_portal_user(db, tenant))
    for login in ["jo"] * 5 + ["jo@customer.example"] * 5:
        assert await sign_in_codes(client, jo, login=login, password="wrong guess") == [
            "INVALID_CREDENTIALS"
        ]
    assert await sign_in_codes(client, jo) == ["RATE_LIMITED"]


async def test_p2_one_address_gets_50_attempts_across_every_login(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    jo = portal_side(await make_portal_user(db, tenant))
    kim = portal_side(
        await make_portal_user(db, tenant, email="kim@customer.example", username="kim")
    )
    for _ in range(10):
        assert await sign_in_codes(client, jo, password="wrong guess") == ["INVALID_CREDENTIALS"]
    assert await sign_in_codes(client, jo) == ["RATE_LIMITED"]
    # Attempt 12 from this address, the first for kim: the per-account limit is jo's alone.
    assert await sign_in_codes(client, kim) == []
    # Attempts 13 to 50, no login more than once, so only the address limit can bite.
    for n in range(38):
        assert await sign_in_codes(client, kim, login=f"nobody{n}", password="wrong guess") == [
            "INVALID_CREDENTIALS"
        ], n
    assert await sign_in_codes(client, kim) == ["RATE_LIMITED"]


# Row 7: batching.


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_p2_a_batch_of_50_sign_ins_gets_400_before_any_attempt_counts(
    client: httpx.AsyncClient, db: Database, path: str
) -> None:
    response = await client.post(path, json=[{"query": f"mutation {{ {GUESS[path]} }}"}] * 50)
    assert response.status_code == 400, response.text
    assert await counted_attempts(db) == []


# Row 14: CSRF by GET.


async def test_p5_a_mutation_over_get_is_refused_and_a_query_over_get_works(
    client: httpx.AsyncClient, side: Side
) -> None:
    cookie = await browser(client, side)
    cookie_header = credentials_headers(side.path, cookie=cookie)
    client.cookies.clear()
    refused = await client.get(side.path, params={"query": SIGN_OUT}, headers=cookie_header)
    assert refused.status_code == 400, refused.text
    assert "data" not in refused.json()
    assert await viewer_email(client, side.path, cookie=cookie) == side.email
    query = await client.get(side.path, params={"query": VIEWER}, headers=cookie_header)
    assert query.status_code == 200, query.text
    assert query.json() == {"data": {"viewer": {"email": side.email}}}


# Row 15: CSRF by simple POST, and the Origin checks on JSON.

SIMPLE_POSTS: dict[str, dict[str, Any]] = {
    "text/plain": {
        "content": json.dumps({"query": SIGN_OUT}),
        "headers": {"content-type": "text/plain"},
    },
    "form-encoded": {"data": {"query": SIGN_OUT}},
    "multipart": {
        "files": {"operations": (None, json.dumps({"query": SIGN_OUT})), "map": (None, "{}")}
    },
}


@pytest.mark.parametrize("origin", [None, EVIL], ids=["no-origin", "foreign-origin"])
@pytest.mark.parametrize("kind", SIMPLE_POSTS.keys())
async def test_p5_simple_posts_carrying_a_mutation_are_refused(
    client: httpx.AsyncClient, side: Side, kind: str, origin: str | None
) -> None:
    cookie = await browser(client, side)
    request = SIMPLE_POSTS[kind]
    headers = {**request.get("headers", {}), **credentials_headers(side.path, cookie=cookie)}
    if origin is not None:
        headers["origin"] = origin
    client.cookies.clear()
    response = await client.post(side.path, **{**request, "headers": headers})
    assert response.status_code in (400, 403), response.text
    assert "data" not in response.json()
    assert await viewer_email(client, side.path, cookie=cookie) == side.email


async def test_p5_json_posts_from_another_site_get_403_and_our_origin_works(
    client: httpx.AsyncClient, side: Side
) -> None:
    cookie = await browser(client, side)
    for cross_site in ({"origin": EVIL}, {"sec-fetch-site": "cross-site"}):
        refused = await post(client, side.path, SIGN_OUT, cookie=cookie, headers=cross_site)
        assert refused.status_code == 403, cross_site
        assert await viewer_email(client, side.path, cookie=cookie) == side.email
    ours = await post(
        client, side.path, SIGN_OUT, cookie=cookie, headers={"origin": "http://127.0.0.1:8000"}
    )
    assert ours.status_code == 200, ours.text
    assert ours.json() == {"data": {"signOut": True}}
    assert await viewer_email(client, side.path, cookie=cookie) is None


# Every request re-checks the account.


async def test_p5_a_deactivated_account_loses_its_token_and_cookie_on_the_next_request(
    client: httpx.AsyncClient, db: Database, side: Side
) -> None:
    cookie = await browser(client, side)
    access, _ = await mobile(client, side)
    assert await viewer_email(client, side.path, cookie=cookie) == side.email
    assert await viewer_status(client, side.path, access) == 200
    await deactivate(db, side)
    assert await viewer_status(client, side.path, access) == 401
    assert await viewer_email(client, side.path, cookie=cookie) is None


# Signing in costs one statement: the session and its user, and in the portal every
# membership with what decides it, so the grants and the refusal come from the same rows.


async def test_p5_a_bearer_token_or_a_cookie_signs_in_with_one_statement(
    client: httpx.AsyncClient, db: Database, side: Side
) -> None:
    access, _ = await mobile(client, side)
    cookie = await browser(client, side)
    with count_statements(db) as by_token:
        assert await viewer_email(client, side.path, token=access) == side.email
    with count_statements(db) as by_cookie:
        assert await viewer_email(client, side.path, cookie=cookie) == side.email
    assert by_token.count == 1, by_token.statements
    assert by_cookie.count == 1, by_cookie.statements


async def test_p5_a_portal_sign_in_reads_every_grant_and_the_refusal_in_one_statement(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    acme, _ = await make_tenant(db, slug="acme")
    starter, _ = await make_tenant(db, slug="starter", plan=Plan.STARTER)
    jo = await make_portal_user(db, acme)
    # The same account at a second business, whose plan has no portal: no grant there.
    await make_portal_user(db, starter)
    token = await portal_token(db, settings, jo.account)
    contractors = "{ contractors { name } }"
    assert await gql(client, contractors, path=PORTAL, token=token) == {
        "data": {"contractors": [{"name": "Acme"}]}
    }
    with count_statements(db) as granted:
        assert await viewer_email(client, PORTAL, token=token) == jo.account.email
    assert granted.count == 1, granted.statements

    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.id) == acme.id).values(portal_enabled=False)
        )
    with count_statements(db) as refused:
        body = await gql(client, contractors, path=PORTAL, token=token)
    # One membership is on a plan without the portal, the other switched off: switched off.
    assert error_codes(body) == ["PORTAL_DISABLED"]
    assert refused.count == 1, refused.statements


def test_p5_a_token_whose_signature_was_checked_once_is_still_refused_once_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(secret_key="s" * 48)
    token = issue_access_token(
        settings, audience=Audience.PORTAL, subject=uuid.uuid4(), session_id=uuid.uuid4()
    )
    assert read_access_token(settings, token, audience=Audience.PORTAL) is not None
    # Read again from what the first check kept: the same claims, for the same audience only.
    assert read_access_token(settings, token, audience=Audience.PORTAL) is not None
    assert read_access_token(settings, token, audience=Audience.STAFF) is None
    rotated = Settings(secret_key="r" * 48)
    assert read_access_token(rotated, token, audience=Audience.PORTAL) is None
    expired = time.time() + settings.access_token_seconds + 1
    monkeypatch.setattr(time, "time", lambda: expired)
    assert read_access_token(settings, token, audience=Audience.PORTAL) is None
