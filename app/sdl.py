"""The committed SDL of both schemas: what `make schema` writes and the snapshot test reads."""

from __future__ import annotations

from pathlib import Path

from app.schema.portal import portal_schema
from app.schema.staff import staff_schema

ROOT = Path(__file__).resolve().parent.parent
STAFF_SDL = ROOT / "schema.graphql"
PORTAL_SDL = ROOT / "frontend-contract" / "portal.graphql"


def rendered() -> dict[Path, str]:
    return {
        STAFF_SDL: staff_schema(production=False).as_str() + "\n",
        PORTAL_SDL: portal_schema(production=False).as_str() + "\n",
    }


def write() -> list[Path]:
    written = []
    for path, sdl in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sdl, encoding="utf-8")
        written.append(path)
    return written
