"""H1: the committed SDL is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from app.sdl import PORTAL_SDL, STAFF_SDL, rendered


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
    assert "staffUsers" not in rendered()[PORTAL_SDL]
    assert (
        "portalEnabled" in rendered()[STAFF_SDL] and "portalEnabled" not in rendered()[PORTAL_SDL]
    )
