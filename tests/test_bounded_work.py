"""SECURITY rows 29 and 35: no single request holds a worker's event loop long. A document
too costly to validate is refused before any validation rule runs, with a typed error. Time
is never measured here: each test shows the refusal, its code, and that the expensive step
did not run (graphql-core's validation and execution are counted)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import strawberry.schema.schema
from graphql import ValidationContext, get_introspection_query, parse

from app.db.session import Database
from app.main import create_app
from app.schema.limits import MAX_MERGES, MAX_SELECTIONS, field_merges, spread_selections
from app.schema.portal import portal_schema
from app.schema.trusted import TrustedDocuments
from tests.conftest import http_client, make_settings
from tests.support import PORTAL, STAFF

PRODUCTION = {"env": "production", "secret_key": "p" * 40, "smtp_url": "smtp://127.0.0.1:1"}


def repeated(count: int, selection: str = "viewer { id }") -> str:
    return "{" + f" {selection}" * count + " }"


def doubling(levels: int) -> str:
    """Fragments each spreading the next twice: `levels` of them hold 2^levels selections."""
    chain = " ".join(f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels))
    return f"{{ ...F0 }} {chain} fragment F{levels} on Query {{ __typename }}"


@dataclass
class Work:
    """What graphql-core was asked to do: validations begun and operations executed."""

    validations: int = 0
    executions: int = 0


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    counted = Work()
    start_validation = ValidationContext.__init__
    execute = getattr(strawberry.schema.schema, "execute")  # noqa: B009  (not re-exported)

    def validating(context: ValidationContext, *args: Any, **kwargs: Any) -> None:
        counted.validations += 1
        start_validation(context, *args, **kwargs)

    def executing(*args: Any, **kwargs: Any) -> Any:
        counted.executions += 1
        return execute(*args, **kwargs)

    monkeypatch.setattr(ValidationContext, "__init__", validating)
    monkeypatch.setattr(strawberry.schema.schema, "execute", executing)
    return counted


@pytest.fixture
async def production(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(create_app(make_settings(database_url, **PRODUCTION), db=db)) as http:
        yield http


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    path: str = STAFF,
    token: str | None = None,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        path, json={"query": query, "variables": variables or {}}, headers=headers
    )


def refusal(response: httpx.Response) -> tuple[str, str]:
    """The code and message of a request refused whole: one error and no data."""
    body = response.json()
    assert body.get("data") is None, body
    [error] = body["errors"]
    return error["extensions"]["code"], error["message"]


def unique(query: str) -> str:
    """The same document in a text of its own: no cache of an earlier test answers for it."""
    return f"# {uuid.uuid4()}\n{query}"


# Row 29: expensive validation


@pytest.mark.parametrize("path", [STAFF, PORTAL])
@pytest.mark.parametrize(
    ("query", "counted"),
    [(repeated(450), "comparisons"), (doubling(30), "selections"), (doubling(200), "selections")],
    ids=["450 viewers", "30 fragments doubling", "200 fragments doubling"],
)
async def test_sec29_a_document_too_costly_to_validate_is_refused_before_validation(
    client: httpx.AsyncClient, work: Work, path: str, query: str, counted: str
) -> None:
    response = await post(client, unique(query), path=path)
    code, message = refusal(response)
    assert code == "QUERY_TOO_COSTLY" and counted in message
    assert len(response.content) < 1_000
    assert (work.validations, work.executions) == (0, 0)


async def test_sec29_the_production_portal_refuses_them_before_parsing(
    production: httpx.AsyncClient, work: Work
) -> None:
    code, _ = refusal(await post(production, repeated(450), path=PORTAL))
    assert code == "DOCUMENT_NOT_TRUSTED"
    assert (work.validations, work.executions) == (0, 0)


async def test_sec29_the_token_limit_refuses_before_any_rule(
    client: httpx.AsyncClient, work: Work
) -> None:
    response = await post(client, unique(repeated(1_000)))
    body = response.json()
    assert body.get("data") is None and "tokens" in body["errors"][0]["message"]
    assert work.validations == 0


async def test_sec29_a_document_within_the_counts_is_validated_and_runs(
    client: httpx.AsyncClient, work: Work
) -> None:
    response = await post(client, unique(repeated(20, "viewer { id } __typename")))
    assert response.json() == {"data": {"viewer": None, "__typename": "Query"}}
    assert (work.validations, work.executions) == (1, 1)


def test_sec29_the_contract_and_the_ordinary_introspection_are_far_within_the_counts() -> None:
    documents = [d.document for d in TrustedDocuments.load(portal_schema(production=False))]
    documents.append(parse(get_introspection_query()))
    assert max(spread_selections(d) for d in documents) <= MAX_SELECTIONS // 2
    assert max(field_merges(d) for d in documents) == 0
    assert spread_selections(parse(doubling(200))) > MAX_SELECTIONS
    assert field_merges(parse(repeated(64))) > MAX_MERGES
