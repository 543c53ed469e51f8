"""What `make schema` writes and the snapshot tests read: the SDL of both schemas, and the
manifest of the portal's trusted documents."""

from __future__ import annotations

from pathlib import Path

from app.schema.portal import portal_schema
from app.schema.staff import staff_schema
from app.schema.trusted import MANIFEST, manifest, read_operations

ROOT = Path(__file__).resolve().parent.parent
STAFF_SDL = ROOT / "schema.graphql"
PORTAL_SDL = ROOT / "frontend-contract" / "portal.graphql"


def rendered() -> dict[Path, str]:
    return {
        STAFF_SDL: staff_schema(production=False).as_str() + "\n",
        PORTAL_SDL: portal_schema(production=False).as_str() + "\n",
        MANIFEST: manifest(read_operations().values()),
    }


def write() -> list[Path]:
    written = []
    for path, sdl in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sdl, encoding="utf-8")
        written.append(path)
    return written
