"""SECURITY rows 32 and 33, H4: every malformed input gets a JSON error with a stable code,
never a 500 or INTERNAL_ERROR, and nothing in production suggests a name.

What the HTTP layer refuses (a body that is not JSON, a nonsense link) is a 4xx whatever the
client accepts. What GraphQL refuses (a document that does not parse or validate, variables
that do not fit) follows GraphQL over HTTP: a 4xx without `data` for a client that accepts
`application/graphql-response+json`, and 200 under `application/json`, as that spec asks."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.db.models import Customer
from app.db.scope import SYSTEM
from app.db.session import Database
from app.files.certificates import CERTIFICATE_PATH
from app.http import RequestIdMiddleware
from app.main import create_app
from app.schema.trusted import OPERATIONS, document_id
from app.settings import Settings
from tests.conftest import http_client, make_settings
from tests.support import PORTAL, STAFF, error_codes, make_tenant, staff_token

GRAPHQL_RESPONSE = "application/graphql-response+json"
SPEC = {"accept": GRAPHQL_RESPONSE}
PRODUCTION = {"env": "production", "secret_key": "k" * 40, "smtp_url": "smtp://127.0.0.1:1"}
JSON_BODY = {"content-type": "application/json"}


@pytest.fixture
async def production(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(create_app(make_settings(database_url, **PRODUCTION), db=db)) as client:
        yield client


@pytest.fixture
async def staff_headers(db: Database, settings: Settings) -> dict[str, str]:
    _, user = await make_tenant(db, slug="acme")
    return {"authorization": f"Bearer {await staff_token(db, settings, user)}"}


def refused_with(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A JSON error answer: the status, one code, the request id, no stack and no data."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] in ("application/json", GRAPHQL_RESPONSE)
    assert response.headers["x-request-id"]
    body: dict[str, Any] = response.json()
    assert "data" not in body and error_codes(body) == [code], body
    assert "Traceback" not in response.text and "Internal Server Error" not in response.text
    return body


# Row 33: what the HTTP layer cannot read


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_sec33_a_body_that_is_not_utf8_gets_400(client: httpx.AsyncClient, path: str) -> None:
    for body in (b'{"query": "{ __typename }", "x": "\xff"}', b"\xff\xfe{}", b'{"query": "\xc3"}'):
        response = await client.post(path, content=body, headers=JSON_BODY)
        refused_with(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_sec33_json_nested_thousands_deep_gets_400(
    client: httpx.AsyncClient, path: str
) -> None:
    deep = b"[" * 5_000 + b"]" * 5_000
    for body in (deep, b'{"query": "{ __typename }", "variables": {"a": ' + deep + b"}}"):
        response = await client.post(path, content=body, headers=JSON_BODY)
        refused_with(response, 400, "BAD_REQUEST")
    # Variables in a GET are read by the same strict parser.
    response = await client.get(path, params={"query": "{ __typename }", "variables": deep})
    refused_with(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_sec33_a_lone_surrogate_in_the_body_gets_400(
    client: httpx.AsyncClient, path: str
) -> None:
    body = b'{"query": "query($s: String) { __typename }", "variables": {"s": "a\\ud800b"}}'
    response = await client.post(path, content=body, headers=JSON_BODY)
    refused_with(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "expires", ["²", "9" * 5_000, "-1", "1e3", "", "١٢٣", " 1", "99999999999999999999"]
)
async def test_sec33_a_certificate_link_with_a_nonsense_expiry_gets_a_json_404(
    client: httpx.AsyncClient, expires: str
) -> None:
    nobody = "00000000-0000-0000-0000-000000000000"
    response = await client.get(
        f"{CERTIFICATE_PATH}/{nobody}",
        params={"account": nobody, "expires": expires, "signature": "0" * 64},
    )
    refused_with(response, 404, "NOT_FOUND")


async def test_sec33_a_content_length_of_thousands_of_digits_gets_413(app: Starlette) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": STAFF,
        "raw_path": STAFF.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"9" * 5_000)],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert b"PAYLOAD_TOO_LARGE" in sent[1]["body"]


async def test_sec33_a_failure_nothing_else_caught_is_a_json_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(_: Request) -> Response:
        raise RuntimeError("a bug with a secret in it")

    app = Starlette(routes=[Route("/broken", broken)], middleware=[Middleware(RequestIdMiddleware)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/broken")
    body = refused_with(response, 500, "INTERNAL_ERROR")
    request_id = response.headers["x-request-id"]
    assert body["errors"][0]["extensions"]["requestId"] == request_id
    assert "secret" not in response.text
    assert any(request_id in record.getMessage() for record in caplog.records)


async def test_sec33_unknown_paths_and_methods_get_json_errors(client: httpx.AsyncClient) -> None:
    refused_with(await client.get("/no/such/page"), 404, "NOT_FOUND")
    not_allowed = await client.delete(STAFF)
    refused_with(not_allowed, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in not_allowed.headers["allow"]


# Row 33: text no database can keep, and text longer than anything it is checked against


async def test_sec33_nul_in_variables_is_refused_before_anything_runs(
    client: httpx.AsyncClient, db: Database, staff_headers: dict[str, str]
) -> None:
    search = "query($s: String) { serviceRequests(search: $s) { edges { node { id } } } }"
    create = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { id } }"
    sign_in = 'mutation($l: String!) { signIn(login: $l, password: "x") { __typename } }'
    for path, query, variables in (
        (STAFF, search, {"s": "boiler\u0000"}),
        (STAFF, create, {"i": {"name": "Acme\u0000 Ltd"}}),
        (STAFF, create, {"i": {"name": "Acme", "\u0000": "x"}}),
        (PORTAL, sign_in, {"l": "jo\u0000@example.com"}),
    ):
        for accept in ({}, SPEC):
            response = await client.post(
                path,
                json={"query": query, "variables": variables},
                headers={**staff_headers, **accept} if path == STAFF else accept,
            )
            refused_with(response, 400, "BAD_USER_INPUT")
    async with db.session(SYSTEM) as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


async def test_sec33_nul_in_a_literal_is_refused_as_the_document_is_validated(
    client: httpx.AsyncClient, db: Database, staff_headers: dict[str, str]
) -> None:
    for literal in ('"Acme\\u0000 Ltd"', '"Acme\\u{0} Ltd"'):
        query = f"mutation {{ createCustomer(input: {{name: {literal}}}) {{ id }} }}"
        legacy = await client.post(STAFF, json={"query": query}, headers=staff_headers)
        assert legacy.status_code == 200
        assert legacy.json()["data"] is None and error_codes(legacy.json()) == ["BAD_USER_INPUT"]
        spec = await client.post(STAFF, json={"query": query}, headers={**staff_headers, **SPEC})
        refused_with(spec, 400, "BAD_USER_INPUT")
    # A lone surrogate cannot even be written in a document: it does not parse.
    lone = 'mutation { createCustomer(input: {name: "\\uD800"}) { id } }'
    spec = await client.post(STAFF, json={"query": lone}, headers={**staff_headers, **SPEC})
    refused_with(spec, 400, "GRAPHQL_PARSE_FAILED")
    async with db.session(SYSTEM) as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


@pytest.mark.parametrize(
    ("path", "query", "length", "field"),
    [
        (
            STAFF,
            'mutation($s: String!) { signIn(tenant: "acme", email: $s, password: "x") '
            "{ __typename } }",
            60_000,
            "email",
        ),
        (
            STAFF,
            'mutation($s: String!) { signIn(tenant: $s, email: "a@b.example", password: "x") '
            "{ __typename } }",
            60_000,
            "tenant",
        ),
        (
            PORTAL,
            'mutation($s: String!) { signIn(login: $s, password: "x") { __typename } }',
            60_000,
            "login",
        ),
        (PORTAL, "mutation($s: String!) { requestPasswordReset(email: $s) }", 10_000, "email"),
        (PORTAL, "mutation($s: String!) { requestMagicLink(email: $s) }", 10_000, "email"),
    ],
)
async def test_sec33_an_overlong_email_is_invalid_input_before_the_database(
    client: httpx.AsyncClient, path: str, query: str, length: int, field: str
) -> None:
    text = "a" * (length - len("@example.com")) + "@example.com"
    response = await client.post(path, json={"query": query, "variables": {"s": text}})
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INVALID_INPUT", "field": field}


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (
            STAFF,
            'mutation($s: String!) { signIn(tenant: "a", email: "a@b.c", password: $s) '
            "{ __typename } }",
        ),
        (STAFF, "mutation($s: String!) { refreshSession(refreshToken: $s) { __typename } }"),
        (STAFF, "query($s: ID!) { node(id: $s) { __typename } }"),
        (PORTAL, 'mutation($s: String!) { signIn(login: "a", password: $s) { __typename } }'),
        (PORTAL, "mutation($s: String!) { refreshSession(refreshToken: $s) { __typename } }"),
        (PORTAL, 'mutation($s: String!) { resetPassword(token: $s, newPassword: "x") }'),
        (PORTAL, 'mutation($s: String!) { resetPassword(token: "x", newPassword: $s) }'),
        (PORTAL, "mutation($s: String!) { redeemMagicLink(token: $s) { __typename } }"),
        (
            PORTAL,
            "mutation($s: String!) { acceptInvitation(input: {tenant: $s, token: $s, name: $s,"
            " username: $s, password: $s}) { __typename } }",
        ),
        (PORTAL, "query($s: String!) { branding(business: $s, customer: $s) { name } }"),
        (PORTAL, "query($s: ID!) { node(id: $s) { __typename } }"),
    ],
)
async def test_sec33_long_text_in_any_public_field_is_an_answer_not_a_failure(
    client: httpx.AsyncClient, path: str, query: str
) -> None:
    response = await client.post(path, json={"query": query, "variables": {"s": "a" * 60_000}})
    assert response.status_code == 200, response.text
    assert "INTERNAL_ERROR" not in error_codes(response.json())


# H4 and row 33: every GraphQL error has a code, in GraphQL's words


@pytest.mark.parametrize("path", [STAFF, PORTAL])
async def test_h4_parse_validation_and_variable_errors_carry_codes_in_graphql_words(
    client: httpx.AsyncClient, path: str
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query($id: ID!) { __typename }"}, "GRAPHQL_VALIDATION_FAILED"),
        (
            {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}},
            "BAD_USER_INPUT",
        ),
        (
            {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": True}},
            "BAD_USER_INPUT",
        ),
        (
            {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": {"a": 1}}},
            "BAD_USER_INPUT",
        ),
    ]
    for body, code in cases:
        legacy = await client.post(path, json=body)
        assert legacy.status_code == 200 and legacy.json()["data"] is None
        assert set(error_codes(legacy.json())) == {code}, legacy.text
        for python in ("None", "True", "False"):
            assert python not in legacy.text, legacy.text
        refused_with(await client.post(path, json=body, headers=SPEC), 400, code)


async def test_h4_a_field_error_keeps_its_data_and_200_under_the_spec_media_type(
    client: httpx.AsyncClient,
) -> None:
    query = 'mutation { signIn(login: "nobody@example.com", password: "wrong") { __typename } }'
    response = await client.post(PORTAL, json={"query": query}, headers=SPEC)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json()["data"] is None
    assert error_codes(response.json()) == ["INVALID_CREDENTIALS"]


async def test_h4_the_missing_playground_of_production_is_not_found(
    production: httpx.AsyncClient,
) -> None:
    for path in (STAFF, PORTAL):
        refused_with(await production.get(path, headers={"accept": "text/html"}), 404, "NOT_FOUND")


# Row 32: no suggestions in production


_MISSPELT = {
    "field": "{ viewr { id } }",
    "argument": 'mutation { signIn(tenant: "a", emial: "b", password: "c") { __typename } }',
    "type": "query($c: Custmer) { __typename }",
    "enum value": 'mutation { signIn(tenant: "a", email: "b", password: "c", client: MOBIL) '
    "{ __typename } }",
    "input field": 'mutation { createCustomer(input: {nmae: "x"}) { id } }',
}


@pytest.mark.parametrize("kind", list(_MISSPELT))
async def test_sec32_the_production_staff_schema_suggests_no_names(
    production: httpx.AsyncClient, client: httpx.AsyncClient, kind: str
) -> None:
    query = _MISSPELT[kind]
    hidden = await production.post(STAFF, json={"query": query})
    assert hidden.json()["errors"] and "Did you mean" not in hidden.text, hidden.text
    assert "GRAPHQL_VALIDATION_FAILED" in error_codes(hidden.json())
    # Development keeps them, for people writing queries.
    assert "Did you mean" in (await client.post(STAFF, json={"query": query})).text


async def test_sec32_the_production_portal_suggests_no_names(
    production: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for query in _MISSPELT.values():
        untrusted = await production.post(PORTAL, json={"query": query})
        assert "Did you mean" not in untrusted.text
        assert error_codes(untrusted.json()) == ["DOCUMENT_NOT_TRUSTED"]
    # A trusted document with a misspelt enum value in its variables, by text and by id.
    sign_in = (OPERATIONS / "SignIn.graphql").read_bytes().decode()
    variables = {"login": "jo", "password": "x", "client": "MOBIL"}
    for body in (
        {"query": sign_in, "variables": variables},
        {"documentId": document_id(sign_in), "variables": variables},
    ):
        hidden = await production.post(PORTAL, json=body)
        assert "Did you mean" not in hidden.text and "MOBILE" not in hidden.text, hidden.text
        assert error_codes(hidden.json()) == ["BAD_USER_INPUT"]
        spec = await production.post(PORTAL, json=body, headers=SPEC)
        refused_with(spec, 400, "BAD_USER_INPUT")
        assert "Did you mean" not in spec.text
    shown = await client.post(PORTAL, json={"query": sign_in, "variables": variables})
    assert "Did you mean the enum value 'MOBILE'?" in shown.text
