"""H2: every operation the portal apps send is valid against the portal schema and runs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from graphql import OperationDefinitionNode, build_schema, parse, validate

from app.sdl import PORTAL_SDL
from tests.support import PORTAL

OPERATIONS = sorted((PORTAL_SDL.parent / "operations").glob("*.graphql"))


def _operation_name(path: Path) -> str:
    [operation] = [
        d for d in parse(path.read_text()).definitions if isinstance(d, OperationDefinitionNode)
    ]
    assert operation.name is not None, f"{path.name} needs a named operation"
    return operation.name.value


def test_h2_the_contract_has_operations() -> None:
    assert [path.name for path in OPERATIONS if path.name == "Viewer.graphql"]


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda path: path.stem)
def test_h2_each_operation_is_valid_against_the_portal_schema(path: Path) -> None:
    schema = build_schema(PORTAL_SDL.read_text())
    assert validate(schema, parse(path.read_text())) == []
    assert _operation_name(path) == path.stem


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda path: path.stem)
async def test_h2_each_operation_runs_over_http(client: httpx.AsyncClient, path: Path) -> None:
    response = await client.post(
        PORTAL,
        json={"query": path.read_text(), "operationName": _operation_name(path), "variables": {}},
    )
    assert response.status_code == 200
    assert "errors" not in response.json()
