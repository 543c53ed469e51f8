"""H1: the committed SDL is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLSchema, build_schema

from app.sdl import PORTAL_SDL, STAFF_SDL, rendered
from tests.support import root_fields


def _committed(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def test_h1_committed_sdl_matches_the_code() -> None:
    stale = [str(path) for path, sdl in rendered().items() if _committed(path) != sdl]
    assert not stale, (
        f"{', '.join(stale)} differ from the code: run `make schema` and commit the result"
    )


def test_h1_the_staff_and_portal_sdl_are_separate_files() -> None:
    assert STAFF_SDL.name == "schema.graphql"
    assert PORTAL_SDL.relative_to(STAFF_SDL.parent) == Path("frontend-contract/portal.graphql")
    staff, portal = (build_schema(rendered()[sdl]) for sdl in (STAFF_SDL, PORTAL_SDL))
    # What only the office may see is served by the staff schema alone.
    office_only = {"auditTrail", "portalSettings", "serviceRequests", "unreadServiceRequestCount"}
    assert office_only <= _query_fields(staff)
    assert office_only.isdisjoint(_query_fields(portal))
    assert "StaffUser" in staff.type_map and "StaffUser" not in portal.type_map
    assert (
        "portalEnabled" in rendered()[STAFF_SDL] and "portalEnabled" not in rendered()[PORTAL_SDL]
    )


def _query_fields(schema: GraphQLSchema) -> set[str]:
    return {name for kind, name, _ in root_fields(schema) if kind == "query"}
