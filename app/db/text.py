"""Case-insensitive text search that gives the same answers on SQLite and PostgreSQL.

SQLite's own `lower()` and `LIKE` fold ASCII letters only, PostgreSQL's fold every
letter; so SQLite gets Python's `str.lower` as `portal_fold`, and both sides of a match are
folded the same way on both databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FOLD = "portal_fold"


class fold(FunctionElement[str]):
    type = sa.String()
    inherit_cache = True


@compiles(fold)
def _fold_default(element: fold, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(fold, "sqlite")
def _fold_sqlite(element: fold, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"


def sqlite_fold(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def folded_contains(column: Any, term: str) -> sa.ColumnElement[bool]:
    """`column` contains `term`, ignoring case; `%` and `_` in the term are plain text."""
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return fold(column).like(f"%{escaped}%", escape="\\")
