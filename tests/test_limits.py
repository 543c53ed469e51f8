"""H1, H3, H4, P5: what one request may ask or send, what an error may say, and which
credentials and request ids the service takes, on both endpoints."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse, validate
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlmodel import col

from app.auth.resolve import COOKIE_NAMES
from app.auth.sessions import start_session
from app.auth.tokens import Audience, issue_access_token
from app.db.models import Customer, SessionAudience, SessionClient, Site, StaffUser
from app.db.scope import SYSTEM
from app.db.session import Database
from app.main import create_app
from app.resolvers.pagination import MAX_PAGE_SIZE
from app.schema.limits import (
    _DEPTH_RULE,
    MAX_ALIASES,
    MAX_COST,
    MAX_DEPTH,
    MAX_TOKENS,
    _Reckoning,
)
from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from app.sdl import PORTAL_SDL
from app.settings import Settings
from tests.conftest import http_client, make_settings
from tests.support import (
    PORTAL,
    STAFF,
    count_statements,
    gid,
    gql,
    make_customers,
    make_tenant,
    rows,
    staff_token,
)

# Production refuses to start without a real secret and an SMTP server.
PRODUCTION = {"env": "production", "secret_key": "x" * 40, "smtp_url": "smtp://127.0.0.1:1"}
EVIL_ORIGIN = "https://evil.example"


@pytest.fixture
async def production(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(create_app(make_settings(database_url, **PRODUCTION), db=db)) as http:
        yield http


@pytest.fixture
async def development(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, env="development"), db=db)
    async with http_client(app) as http:
        yield http


@pytest.fixture
async def staff(db: Database) -> StaffUser:
    tenant, user = await make_tenant(db, slug="acme")
    await make_customers(db, tenant, 1)
    return user


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def refused(
    client: httpx.AsyncClient, query: str, *, path: str = STAFF, token: str | None = None
) -> str:
    """Posts a document that must be refused: errors and no data. Returns the errors' text."""
    body = await gql(client, query, path=path, token=token)
    assert body.get("data") is None and body["errors"], body
    return json.dumps(body["errors"])


def nested(depth: int, *, operation: str = "") -> str:
    """A staff query whose leaf sits `depth` levels down, reached through a fragment:
    customers > edges > node > contacts > site > contacts > site > ..."""
    inner = "id"
    for level in reversed(range(depth - 3)):
        inner = f"{'contacts' if level % 2 == 0 else 'site'} {{ {inner} }}"
    return (
        f"query {operation} {{ customers {{ edges {{ ...Deep }} }} }} "
        f"fragment Deep on CustomerEdge {{ node {{ {inner} }} }}"
    )


def aliased(count: int, field: str = "viewer { id }") -> str:
    return "{ " + " ".join(f"a{n}: {field}" for n in range(count)) + " }"


async def browser_cookie(db: Database, settings: Settings, user: StaffUser) -> dict[str, str]:
    """The headers a browser app sends with a real staff session: its cookie, and the CSRF
    header a page of another site cannot add."""
    async with db.transaction(SYSTEM) as session:
        credentials = await start_session(
            session,
            settings,
            audience=SessionAudience.STAFF,
            client=SessionClient.BROWSER,
            tenant_id=user.tenant_id,
            staff_user_id=user.id,
        )
    return {
        "cookie": f"{COOKIE_NAMES[Audience.STAFF]}={credentials.cookie}",
        "x-csrf-protection": "1",
    }


async def signed_in_as(client: httpx.AsyncClient, headers: dict[str, str]) -> str | None:
    response = await client.post(STAFF, json={"query": "{ viewer { email } }"}, headers=headers)
    assert response.status_code == 200, response.text
    viewer = response.json()["data"]["viewer"]
    return viewer["email"] if viewer else None


# H3: depth, aliases, tokens, size, batching


@pytest.mark.parametrize("operation", ["", "__schema"])
async def test_h3_depth_past_the_limit_is_rejected_before_execution(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser, operation: str
) -> None:
    token = await staff_token(db, settings, staff)
    errors = await refused(client, nested(MAX_DEPTH + 1, operation=operation), token=token)
    assert "exceeds maximum operation depth" in errors


def test_h3_depth_at_the_limit_passes_the_depth_rule() -> None:
    # Run in full, this document's five nested lists would cost too much (below).
    schema = staff_schema(production=False)._schema
    assert validate(schema, parse(nested(MAX_DEPTH)), [_DEPTH_RULE]) == []
    assert validate(schema, parse(nested(MAX_DEPTH + 1)), [_DEPTH_RULE]) != []


async def test_h3_nested_edges_within_both_limits_run(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    # customers > edges > node > contacts > site: deeper, a site's contacts would be read
    # again for each of its contacts (SECURITY row 27).
    body = await gql(client, nested(5), token=await staff_token(db, settings, staff))
    assert "errors" not in body
    [edge] = body["data"]["customers"]["edges"]
    # The customer's two company contacts have no site; each of its two sites has a contact.
    sites = [contact["site"] for contact in edge["node"]["contacts"]]
    assert sites.count(None) == 2
    assert sorted(site["id"] for site in sites if site) == sorted(
        gid("Site", site.id) for site in await rows(db, Site)
    )


@pytest.mark.parametrize("path", [STAFF, PORTAL])
@pytest.mark.parametrize("count", [MAX_ALIASES + 1, 100])
async def test_h3_aliases_past_the_limit_are_rejected(
    client: httpx.AsyncClient, path: str, count: int
) -> None:
    errors = await refused(client, aliased(count), path=path)
    assert f"{count} aliases found" in errors


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_aliases_at_the_limit_run(client: httpx.AsyncClient, path: str) -> None:
    body = await gql(client, aliased(MAX_ALIASES), path=path)
    assert body == {"data": {f"a{n}": None for n in range(MAX_ALIASES)}}


async def test_h3_aliases_in_a_fragment_count_once_per_spread(client: httpx.AsyncClient) -> None:
    fragment = "fragment Ten on Query " + aliased(10)
    errors = await refused(client, "{ " + "...Ten " * 10 + "} " + fragment)
    assert "100 aliases found" in errors


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_a_document_past_the_token_limit_is_rejected(
    client: httpx.AsyncClient, path: str
) -> None:
    # `{`, the fields and `}`: one token each.
    errors = await refused(client, "{ " + "__typename " * (MAX_TOKENS - 1) + "}", path=path)
    assert f"more than {MAX_TOKENS} tokens" in errors


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_a_document_of_exactly_the_token_limit_runs(
    client: httpx.AsyncClient, path: str
) -> None:
    # Each `__typename @skip(if: false)` is 8 tokens; 3 more for the braces and one field.
    fields = "__typename @skip(if: false) " * ((MAX_TOKENS - 3) // 8)
    padding = "__typename " * ((MAX_TOKENS - 3) % 8)
    body = await gql(client, "{ " + fields + padding + "__typename }", path=path)
    assert body == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_a_1_mb_document_gets_413(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={"query": "{ __typename }" + " " * 1_000_000})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_huge_variables_get_413(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(
        path, json={"query": "{ __typename }", "variables": {"x": "y" * 200_000}}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h3_a_streamed_body_without_a_length_gets_413(
    client: httpx.AsyncClient, path: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"x": "'
        for _ in range(100):
            yield b"y" * 10_000
        yield b'"}}'

    response = await client.post(
        path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_h3_a_batch_of_50_operations_gets_400_and_nothing_runs(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    headers = bearer(await staff_token(db, settings, staff))
    batch = [{"query": "mutation { signOut }"}] * 50
    response = await client.post(STAFF, json=batch, headers=headers)
    assert response.status_code == 400
    assert "data" not in response.json()
    assert await signed_in_as(client, headers) == staff.email


# H3: unexpected errors are masked and logged


async def test_h3_an_unexpected_error_is_masked_with_the_request_id_and_logged(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    staff: StaffUser,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = bearer(await staff_token(db, settings, staff))
    cascade = " CASCADE" if database_url.startswith("postgresql") else ""
    async with db.engine.begin() as connection:
        # The table goes from under a running service: a real unexpected failure.
        await connection.exec_driver_sql(f"DROP TABLE contacts{cascade}")
    caplog.set_level(logging.ERROR, logger="app.errors")
    # The alias keeps the table's name out of the answer's path and data.
    query = "{ customers { edges { node { people: contacts { id } } } } }"
    response = await client.post(STAFF, json={"query": query}, headers=headers)

    request_id = response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_ERROR", "requestId": request_id}
    leaks = ("Traceback", "Error", "Exception", "sqlite", "psycopg", "asyncpg", "contacts")
    assert [leak for leak in leaks if leak in response.text] == []
    logged = [r for r in caplog.records if r.name == "app.errors" and request_id in r.getMessage()]
    assert logged and all(record.exc_info for record in logged)


# H4: field suggestions, introspection and playgrounds


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h4_no_field_suggestions_in_production(
    production: httpx.AsyncClient, development: httpx.AsyncClient, path: str
) -> None:
    # The production portal refuses the text as untrusted (H2), before it could suggest.
    hidden = await production.post(path, json={"query": "{ viewr { id } }"})
    assert hidden.json()["errors"] and "Did you mean" not in hidden.text
    assert "Did you mean 'viewer'" in await refused(development, "{ viewr { id } }", path=path)


@pytest.mark.parametrize(
    "query", ["{ __schema { types { name } } }", '{ __type(name: "Query") { name } }']
)
async def test_h4_portal_introspection_is_refused_in_production(
    production: httpx.AsyncClient, development: httpx.AsyncClient, query: str
) -> None:
    # Refused as untrusted before it is parsed (H2); behind that, the schema refuses it too.
    response = await production.post(PORTAL, json={"query": query})
    assert response.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
    result = await portal_schema(production=True).execute(query)
    assert result.errors and "introspection" in str(result.errors).lower()
    assert (await gql(development, query, path=PORTAL))["data"]


async def test_h4_staff_introspection_stays_on_in_production(
    production: httpx.AsyncClient,
) -> None:
    body = await gql(production, '{ __type(name: "Query") { name } }')
    assert body == {"data": {"__type": {"name": "Query"}}}


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h4_no_playground_page_in_production(
    production: httpx.AsyncClient, development: httpx.AsyncClient, path: str
) -> None:
    page = await production.get(path, headers={"accept": "text/html"})
    assert page.status_code != 200 or "<html" not in page.text.lower()
    shown = await development.get(path, headers={"accept": "text/html"})
    assert shown.status_code == 200 and "<html" in shown.text.lower()


# P5: cross-site requests riding on the session cookie


async def test_p5_a_mutation_by_get_is_refused_and_changes_nothing(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    cookie = await browser_cookie(db, settings, staff)
    for mutation in ("mutation { __typename }", "mutation { signOut }"):
        response = await client.get(STAFF, params={"query": mutation}, headers=cookie)
        assert response.status_code != 200 and "data" not in response.text, mutation
    assert await signed_in_as(client, cookie) == staff.email
    query = await client.get(STAFF, params={"query": "{ __typename }"})
    assert query.status_code == 200 and query.json() == {"data": {"__typename": "Query"}}


_SIMPLE_BODIES: dict[str, dict[str, Any]] = {
    "text/plain": {
        "content": json.dumps({"query": "mutation { signOut }"}),
        "headers": {"content-type": "text/plain"},
    },
    "form-urlencoded": {"data": {"query": "mutation { signOut }"}},
    "multipart": {
        "data": {"operations": json.dumps({"query": "mutation { signOut }"}), "map": "{}"},
        "files": {"0": ("a.txt", b"a", "text/plain")},
    },
}


@pytest.mark.parametrize("origin", [None, EVIL_ORIGIN])
@pytest.mark.parametrize("kind", list(_SIMPLE_BODIES))
async def test_p5_a_simple_post_is_refused_and_changes_nothing(
    db: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    staff: StaffUser,
    kind: str,
    origin: str | None,
) -> None:
    cookie = await browser_cookie(db, settings, staff)
    body = _SIMPLE_BODIES[kind]
    headers = {**cookie, **body.get("headers", {}), **({"origin": origin} if origin else {})}
    response = await client.post(
        STAFF, **{k: v for k, v in body.items() if k != "headers"}, headers=headers
    )
    assert response.status_code != 200 and "data" not in response.text
    assert await signed_in_as(client, cookie) == staff.email


async def test_p5_a_json_post_from_a_foreign_origin_is_refused(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    cookie = await browser_cookie(db, settings, staff)
    response = await client.post(
        STAFF, json={"query": "mutation { signOut }"}, headers={**cookie, "origin": EVIL_ORIGIN}
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_FAILED"
    assert await signed_in_as(client, cookie) == staff.email


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
async def test_p5_a_cookie_post_without_the_csrf_header_is_refused_and_changes_nothing(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser, content_type: str
) -> None:
    headers = await browser_cookie(db, settings, staff)
    bare = {"cookie": headers["cookie"], "content-type": content_type}
    response = await client.post(
        STAFF, content=json.dumps({"query": "mutation { signOut }"}), headers=bare
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_FAILED"
    assert await signed_in_as(client, headers) == staff.email
    # The same request as the app sends it goes through.
    signed_out = await client.post(STAFF, json={"query": "mutation { signOut }"}, headers=headers)
    assert signed_out.json() == {"data": {"signOut": True}}
    assert await signed_in_as(client, headers) is None


# P5: abused bearer tokens


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


Forger = Callable[[Settings, str], str]


def _reissue(
    settings: Settings,
    good: str,
    *,
    audience: Audience = Audience.STAFF,
    now: float | None = None,
    **setting_changes: str,
) -> str:
    """The good token's subject, session and tenant, issued again with the changes."""
    claims = _claims(good)
    return issue_access_token(
        settings.model_copy(update=setting_changes),
        audience=audience,
        subject=claims["sub"],
        session_id=claims["sid"],
        tenant_id=claims["tid"],
        now=now,
    )


FORGERIES: dict[str, Forger] = {
    "expired": lambda s, good: _reissue(s, good, now=time.time() - 3600),
    "portal audience": lambda s, good: _reissue(s, good, audience=Audience.PORTAL),
    "other issuer": lambda s, good: _reissue(s, good, public_url=EVIL_ORIGIN),
    "other secret": lambda s, good: _reissue(s, good, secret_key="y" * 48),
    # The secret itself never signs tokens; only a key derived from it does.
    "raw secret": lambda s, good: jwt.encode(
        {"alg": "HS256"}, _claims(good), OctKey.import_key(s.secret_key.encode())
    ),
    "alg none": lambda _, good: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{good.split('.')[1]}.",
    "garbage": lambda _, good: "garbage",
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_p5_an_abused_staff_token_gets_401(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser, forgery: str
) -> None:
    good = await staff_token(db, settings, staff)
    response = await client.post(
        STAFF,
        json={"query": "{ viewer { email } }"},
        headers=bearer(FORGERIES[forgery](settings, good)),
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_p5_a_good_staff_token_signs_in(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    body = await gql(
        client, "{ viewer { email role } }", token=await staff_token(db, settings, staff)
    )
    assert body == {"data": {"viewer": {"email": staff.email, "role": staff.role.value}}}


async def test_p5_a_deactivated_staff_users_token_gets_401_at_once(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    headers = bearer(await staff_token(db, settings, staff))
    assert await signed_in_as(client, headers) == staff.email
    async with db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(StaffUser).where(col(StaffUser.id) == staff.id).values(is_active=False)
        )
    response = await client.post(STAFF, json={"query": "{ viewer { email } }"}, headers=headers)
    assert response.status_code == 401


# H1: request ids on every answer of the service


async def test_h1_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    answers = [
        await client.post(STAFF, json={"query": "{ __typename }"}),
        await client.post(PORTAL, json={"query": "{ __typename }"}),
        await client.post(STAFF, json={"query": "{ __typename }" + " " * 100_000}),
        await client.get("/no-such-page"),
    ]
    ids = [answer.headers.get("x-request-id") for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids)


async def test_h1_a_sane_caller_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        STAFF, json={"query": "{ __typename }"}, headers={"x-request-id": "abcdef123456"}
    )
    assert response.headers["x-request-id"] == "abcdef123456"


@pytest.mark.parametrize("unsafe", ["<script>", "a" * 200])
async def test_h1_an_unsafe_caller_request_id_is_replaced(
    client: httpx.AsyncClient, unsafe: str
) -> None:
    response = await client.post(
        STAFF, json={"query": "{ __typename }"}, headers={"x-request-id": unsafe}
    )
    assert response.headers["x-request-id"] not in ("", unsafe)


# H3: what an operation may cost, and how long it may take (SECURITY row 10)

NESTED_LISTS = (
    "query ($first: Int) { customers(first: $first) { edges { node { name sites {"
    " name contacts { name } } } } } }"
)


async def test_h3_three_nested_lists_past_the_cost_limit_are_refused_before_running(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    token = await staff_token(db, settings, staff)
    with count_statements(db) as counter:
        body = await gql(client, NESTED_LISTS, {"first": 100}, token=token)
    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["QUERY_TOO_COSTLY"]
    # Only signing the viewer in ran; no customer was read.
    assert counter.count > 0
    assert not any("FROM customers" in statement for statement in counter.statements)


async def test_h3_the_same_lists_in_small_pages_run(
    db: Database, client: httpx.AsyncClient, settings: Settings, staff: StaffUser
) -> None:
    token = await staff_token(db, settings, staff)
    body = await gql(client, NESTED_LISTS, {"first": 5}, token=token)
    assert "errors" not in body
    assert len(body["data"]["customers"]["edges"]) == 1


async def test_h3_a_literal_page_past_the_cap_is_reckoned_at_the_cap() -> None:
    schema = staff_schema(production=False)
    document = "{ customers(first: 1000000) { edges { node { name } } } }"
    assert reckoned(schema, document) == reckoned(schema, document.replace("1000000", "100"))


def reckoned(schema: Any, document: str, variables: dict[str, Any] | None = None) -> int:
    parsed = parse(document)
    [operation] = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = schema._schema.get_root_type(operation.operation)
    return _Reckoning(schema._schema, fragments, variables or {}).cost(
        operation.selection_set, root
    )


def test_h3_every_portal_operation_is_well_within_the_cost_limit() -> None:
    schema = portal_schema(production=False)
    costs = {
        path.stem: reckoned(schema, path.read_text(), {"first": MAX_PAGE_SIZE})
        for path in (PORTAL_SDL.parent / "operations").glob("*.graphql")
    }
    assert max(costs.values()) * 2 <= MAX_COST, costs


async def test_h3_a_request_past_the_time_limit_is_stopped_and_writes_nothing(
    db: Database, database_url: str, staff: StaffUser
) -> None:
    app = create_app(make_settings(database_url, request_time_limit=0), db=db)
    token = await staff_token(db, make_settings(database_url), staff)
    async with http_client(app) as http:
        response = await http.post(
            STAFF,
            json={"query": 'mutation { createCustomer(input: {name: "Late Ltd"}) { id } }'},
            headers=bearer(token),
        )
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    async with db.session(SYSTEM) as session:
        late = await session.scalar(
            sa.select(sa.func.count()).select_from(Customer).where(col(Customer.name) == "Late Ltd")
        )
    assert late == 0
