"""GraphQL over HTTP, as the spec's own audit suite (graphql-http's `auditServer`) checks it,
against the real server: every audit passes on both endpoints in development and on the staff
endpoint in production. The production portal runs only its trusted documents, so it refuses
the audit's own; those refusals still use the spec's status codes and media types."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.served import PRODUCTION, Server, served
from tests.support import PORTAL, STAFF

AUDIT = Path(__file__).resolve().parent / "http_audit"
NODE = shutil.which("node")


@pytest.fixture(scope="session")
def audit_installed() -> Path:
    """The audit's npm packages, installed from the lock file when it changed."""
    npm = shutil.which("npm")
    if npm is None or NODE is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs the GraphQL-over-HTTP audit: install Node and npm")
        pytest.skip("the GraphQL-over-HTTP audit needs Node and npm")
    installed = AUDIT / "node_modules" / ".package-lock.json"
    lock = AUDIT / "package-lock.json"
    # Parallel test workers (and other checkouts' runs) install one at a time: `npm ci` first
    # deletes node_modules, which would pull it from under an audit already running.
    with (AUDIT / ".install.lock").open("w") as install_lock:
        fcntl.flock(install_lock, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            subprocess.run(  # noqa: S603  (npm from PATH, fixed arguments)
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=AUDIT,
                check=True,
                timeout=300,
            )
    return AUDIT


def audit(url: str) -> list[dict[str, Any]]:
    assert NODE is not None
    finished = subprocess.run(  # noqa: S603  (node from PATH, our own script)
        [NODE, "audit.mjs", url],
        cwd=AUDIT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(finished.stdout)
    assert len(results) >= 50, results
    return results


def misses(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [result for result in results if result["status"] != "ok"]


@pytest.fixture
def development(audit_installed: Path, database_url: str) -> Iterator[Server]:
    with served(database_url, {"PORTAL_ENV": "development"}) as server:
        yield server


@pytest.fixture
def production(audit_installed: Path, database_url: str) -> Iterator[Server]:
    with served(database_url, PRODUCTION) as server:
        yield server


def test_h4_every_audit_passes_on_both_endpoints_in_development(development: Server) -> None:
    for path in (STAFF, PORTAL):
        assert misses(audit(development.url + path)) == [], path


def test_h4_every_audit_passes_on_the_staff_endpoint_in_production(production: Server) -> None:
    assert misses(audit(production.url + STAFF)) == []


def test_h4_the_production_portal_refuses_the_audits_documents_as_the_spec_says(
    production: Server,
) -> None:
    for miss in misses(audit(production.url + PORTAL)):
        response = miss["response"]
        # A document refused before it is parsed: a 4xx and no data, in a JSON media type.
        assert 400 <= response["status"] < 500, miss
        assert response["contentType"].startswith("application/"), miss
        assert "json" in response["contentType"], miss
        if "accepting application/graphql-response+json" in miss["name"]:
            assert response["contentType"].startswith("application/graphql-response+json"), miss
        if response["body"] is not None:
            body = json.loads(response["body"])
            assert "data" not in body, miss
            assert body["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED", miss
    untrusted = {"query": "{ __typename }"}
    for accept, media_type in (
        ("application/graphql-response+json", "application/graphql-response+json"),
        ("application/json", "application/json"),
    ):
        refused = httpx.post(production.url + PORTAL, json=untrusted, headers={"accept": accept})
        assert refused.status_code == 400
        assert refused.headers["content-type"].split(";")[0] == media_type
        assert refused.json() == {
            "errors": [
                {
                    "message": refused.json()["errors"][0]["message"],
                    "extensions": {"code": "DOCUMENT_NOT_TRUSTED"},
                }
            ]
        }
