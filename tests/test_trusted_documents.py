"""H2: trusted documents. The portal runs the operations of `frontend-contract/` by
`documentId`, by Apollo's persisted-query hash or by their exact text; in production it
refuses every other document before parsing it. Each is parsed, validated and costed once,
when the app is built."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import ValidationContext
from graphql.language.parser import Parser
from strawberry.extensions import ParserCache

import app.schema.limits
from app.db.session import Database
from app.main import create_app
from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from app.schema.trusted import (
    MANIFEST,
    OPERATIONS,
    TrustedDocuments,
    UntrustworthyDocument,
    document_id,
    manifest,
    read_operations,
)
from app.settings import Settings
from tests.conftest import http_client, make_settings
from tests.support import (
    PORTAL,
    STAFF,
    emailed_token,
    make_portal_user,
    make_tenant,
    portal_token,
    staff_token,
)

# Production refuses to start without a real secret and an SMTP server.
PRODUCTION = {"env": "production", "secret_key": "t" * 40, "smtp_url": "smtp://127.0.0.1:1"}
TEXTS = {Path(name).stem: text for name, text in read_operations().items()}


def _id(name: str) -> str:
    return document_id(TEXTS[name])


@dataclass
class Service:
    client: httpx.AsyncClient
    settings: Settings


async def _service(db: Database, settings: Settings) -> AsyncIterator[Service]:
    async with http_client(create_app(settings, db=db)) as client:
        yield Service(client, settings)


@pytest.fixture
async def production(db: Database, database_url: str) -> AsyncIterator[Service]:
    async for service in _service(db, make_settings(database_url, **PRODUCTION)):
        yield service


@pytest.fixture
async def development(db: Database, database_url: str) -> AsyncIterator[Service]:
    async for service in _service(db, make_settings(database_url, env="development")):
        yield service


async def _post(
    service: Service, body: dict[str, Any], *, path: str = PORTAL, token: str | None = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await service.client.post(path, json=body, headers=headers)


def _refusal(response: httpx.Response) -> str:
    """The code of a refusal answered before any GraphQL ran: 400, one error, no data."""
    assert response.status_code == 400, response.text
    body = response.json()
    [error] = body["errors"]
    assert set(body) == {"errors"} and set(error) == {"message", "extensions"}, body
    code: str = error["extensions"]["code"]
    return code


@dataclass
class GraphQLWork:
    parses: int = 0
    validations: int = 0
    costings: int = 0


def _count_graphql_work(monkeypatch: pytest.MonkeyPatch) -> GraphQLWork:
    """Counts from here on every parse and every validation graphql-core runs, and every
    cost reckoning of the cost limit; each still does its work."""
    work = GraphQLWork()
    parse_document = Parser.parse_document
    start_validation = ValidationContext.__init__
    operation_cost = app.schema.limits.operation_cost

    def parse(parser: Parser) -> Any:
        work.parses += 1
        return parse_document(parser)

    def validate(context: ValidationContext, *args: Any, **kwargs: Any) -> None:
        work.validations += 1
        start_validation(context, *args, **kwargs)

    def cost(*args: Any) -> int:
        work.costings += 1
        return operation_cost(*args)

    monkeypatch.setattr(Parser, "parse_document", parse)
    monkeypatch.setattr(ValidationContext, "__init__", validate)
    monkeypatch.setattr(app.schema.limits, "operation_cost", cost)
    return work


def _strawberry_parse_cache() -> Any:
    # The LRU of parsed texts Strawberry shares across every schema in the process: a text
    # it has seen is not parsed again, so the parse count alone could not tell.
    return ParserCache().cached_parse_document


async def _branding_tenant(db: Database) -> None:
    await make_tenant(db, slug="acme")


def _ways_to_send(name: str, variables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "documentId": {"documentId": _id(name), "operationName": name, "variables": variables},
        "Apollo hash": {
            "extensions": {
                "persistedQuery": {"version": 1, "sha256Hash": _id(name).split(":", 1)[1]}
            },
            "variables": variables,
        },
        "exact text": {"query": TEXTS[name], "operationName": name, "variables": variables},
    }


@pytest.mark.parametrize(
    "query",
    [
        "{ viewer { id }",  # broken: a parser would say so
        "{ " + " ".join(f"a{n}: __typename" for n in range(700)) + " }",  # 2,100 tokens
        "{ __typename }",
    ],
    ids=["broken", "2100-tokens", "valid"],
)
async def test_h2_production_portal_refuses_an_untrusted_document_before_parsing_it(
    production: Service, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    work = _count_graphql_work(monkeypatch)
    response = await _post(production, {"query": query})
    assert _refusal(response) == "DOCUMENT_NOT_TRUSTED"
    assert (work.parses, work.validations) == (0, 0)


async def test_h2_branding_runs_alike_by_document_id_apollo_hash_and_exact_text(
    db: Database, production: Service
) -> None:
    await _branding_tenant(db)
    answers = {}
    for way, body in _ways_to_send("Branding", {"business": "acme"}).items():
        response = await _post(production, body)
        assert response.status_code == 200, (way, response.text)
        answers[way] = response.json()
    assert answers["exact text"]["data"]["branding"]["name"] == "Acme"
    assert answers["documentId"] == answers["Apollo hash"] == answers["exact text"]


async def test_h2_viewer_runs_alike_by_document_id_apollo_hash_and_exact_text(
    db: Database, production: Service
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    token = await portal_token(db, production.settings, user.account)
    answers = {}
    for way, body in _ways_to_send("Viewer", {}).items():
        response = await _post(production, body, token=token)
        assert response.status_code == 200, (way, response.text)
        answers[way] = response.json()
    assert answers["exact text"]["data"]["viewer"]["email"] == user.account.email
    assert answers["documentId"] == answers["Apollo hash"] == answers["exact text"]


@pytest.mark.parametrize("env", ["production", "development"])
async def test_h2_an_unknown_document_id_or_hash_is_not_found(
    db: Database, database_url: str, env: str
) -> None:
    settings = make_settings(database_url, **(PRODUCTION if env == "production" else {"env": env}))
    async for service in _service(db, settings):
        made_up = document_id("query Made { up }")
        for body in (
            {"documentId": made_up},
            {"documentId": "Branding"},
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": made_up[7:]}}},
        ):
            assert _refusal(await _post(service, body)) == "PERSISTED_DOCUMENT_NOT_FOUND", body
        got = await service.client.get(PORTAL, params={"documentId": made_up})
        assert _refusal(got) == "PERSISTED_DOCUMENT_NOT_FOUND"
        for malformed in (
            {"documentId": 7},
            {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": made_up[7:]}}},
        ):
            assert _refusal(await _post(service, malformed)) == "BAD_REQUEST", malformed


@pytest.mark.parametrize(
    "query", ["{ __schema { types { name } } }", '{ __type(name: "Query") { name } }']
)
async def test_h2_introspection_is_refused_on_the_production_portal_as_untrusted(
    production: Service, query: str
) -> None:
    assert _refusal(await _post(production, {"query": query})) == "DOCUMENT_NOT_TRUSTED"


@pytest.mark.parametrize("env", ["development", "test"])
async def test_h2_development_and_test_run_any_text_and_resolve_ids(
    db: Database, database_url: str, env: str
) -> None:
    await _branding_tenant(db)
    async for service in _service(db, make_settings(database_url, env=env)):
        any_text = await _post(service, {"query": '{ branding(business: "acme") { name } }'})
        assert any_text.json() == {"data": {"branding": {"name": "Acme"}}}
        by_id = await _post(
            service, {"documentId": _id("Branding"), "variables": {"business": "acme"}}
        )
        assert by_id.status_code == 200, by_id.text
        assert by_id.json()["data"]["branding"]["name"] == "Acme"


async def test_h2_the_production_staff_schema_runs_what_the_portal_refuses(
    db: Database, production: Service
) -> None:
    _, user = await make_tenant(db, slug="acme")
    token = await staff_token(db, production.settings, user)
    document = {"query": "{ viewer { __typename } }"}
    staff = await _post(production, document, path=STAFF, token=token)
    assert staff.json() == {"data": {"viewer": {"__typename": "StaffUser"}}}
    assert _refusal(await _post(production, document)) == "DOCUMENT_NOT_TRUSTED"


@pytest.mark.parametrize("env", ["production", "development"])
async def test_h2_get_with_a_document_id_runs_queries_and_refuses_mutations(
    db: Database, database_url: str, env: str
) -> None:
    await _branding_tenant(db)
    settings = make_settings(database_url, **(PRODUCTION if env == "production" else {"env": env}))
    async for service in _service(db, settings):
        query = await service.client.get(
            PORTAL,
            params={"documentId": _id("Branding"), "variables": json.dumps({"business": "acme"})},
        )
        assert query.status_code == 200, query.text
        assert query.json()["data"]["branding"]["name"] == "Acme"
        for mutation in ("SignOut", "RequestMagicLink"):
            refused = await service.client.get(PORTAL, params={"documentId": _id(mutation)})
            assert _refusal(refused) == "BAD_REQUEST"
            assert "mutations are not allowed" in refused.text


def test_h2_the_manifest_is_current_and_keyed_by_each_files_hash() -> None:
    assert MANIFEST.read_text(encoding="utf-8") == manifest(TEXTS.values()), (
        f"{MANIFEST} differs from {OPERATIONS}: run `make schema` and commit the result"
    )
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert list(entries) == sorted(entries)
    assert sorted(entries.values()) == sorted(TEXTS.values())
    assert all(key == document_id(text) for key, text in entries.items())
    # The proposal's own example: the id of a document with no trailing newline.
    example = "query ($id: ID!) {\n  user(id: $id) {\n    name\n  }\n}"
    assert document_id(example) == (
        "sha256:7dba4bd717b41f10434822356a93c32b1fb4907b983e854300ad839f84cdcd6e"
    )


async def test_h2_trusted_documents_are_not_parsed_validated_or_costed_per_request(
    db: Database, production: Service, development: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _branding_tenant(db)
    cache = _strawberry_parse_cache()
    before = cache.cache_info()
    work = _count_graphql_work(monkeypatch)
    for service in (production, development):
        for body in [*_ways_to_send("Branding", {"business": "acme"}).values()] * 2:
            response = await _post(service, body)
            assert response.json()["data"]["branding"]["name"] == "Acme", response.text
    after = cache.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert (work.parses, work.validations, work.costings) == (0, 0, 0)
    # The counting sees the work an untrusted text (in development) still takes; a text of
    # its own, which Strawberry's cache has not met in an earlier test of the process.
    text = f'{{ branding(business: "acme") {{ logoUrl }} }} # {uuid.uuid4().hex}'
    untrusted = await _post(development, {"query": text})
    assert untrusted.status_code == 200
    assert (work.parses, work.validations, work.costings) == (1, 1, 1)


def test_h2_every_trusted_document_is_costed_at_start_up_within_the_limit() -> None:
    documents = TrustedDocuments.load(portal_schema(production=True))
    assert len(documents) == len(TEXTS)
    assert all(document.fits for document in documents)
    invoices = documents.by_id(_id("Invoices"))
    assert invoices is not None and invoices.operation_name == "Invoices"
    # With every `first` at the page cap: more than the default pages the request would ask.
    assert invoices.worst_case_cost > 1_000


@pytest.mark.parametrize(
    "text",
    [
        "query Unknown { noSuchField }",
        "query Peek { __schema { queryType { name } } }",
        "query Broken { viewer { id }",
        "query One { viewer { id } } query Two { viewer { id } }",
        "{ viewer { id } }",
    ],
    ids=["invalid", "introspection", "broken", "two-operations", "anonymous"],
)
def test_h2_a_contract_document_that_cannot_run_stops_the_start(tmp_path: Path, text: str) -> None:
    (tmp_path / "Viewer.graphql").write_text(TEXTS["Viewer"], encoding="utf-8")
    (tmp_path / "Bad.graphql").write_text(text, encoding="utf-8")
    with pytest.raises(UntrustworthyDocument, match=r"Bad\.graphql"):
        TrustedDocuments.load(portal_schema(production=True), tmp_path)
    with pytest.raises(UntrustworthyDocument, match="no operations"):
        TrustedDocuments.load(staff_schema(production=True), tmp_path / "empty")


async def test_h2_magic_links_still_sign_in_on_the_production_portal(
    db: Database, production: Service
) -> None:
    tenant, _ = await make_tenant(db, slug="acme")
    user = await make_portal_user(db, tenant)
    for redeem in ("page", "RedeemMagicLink"):
        asked = await _post(
            production,
            {"documentId": _id("RequestMagicLink"), "variables": {"email": user.account.email}},
        )
        assert asked.json() == {"data": {"requestMagicLink": True}}, asked.text
        token = await emailed_token(db, user.account.email)
        if redeem == "page":
            page = await production.client.post("/portal/magic-link", data={"token": token})
            assert page.status_code == 303 and "__Host-portal_session" in page.headers["set-cookie"]
        else:
            redeemed = await _post(
                production, {"documentId": _id(redeem), "variables": {"token": token}}
            )
            assert redeemed.json()["data"]["redeemMagicLink"]["viewer"]["email"] == (
                user.account.email
            ), redeemed.text
