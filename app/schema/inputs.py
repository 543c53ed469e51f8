"""What every string a request gives must be, and the bounds of the few that are used before
any resolver checks them.

Every string a request gives, a variable or a literal of the document, is text a database
can keep: PostgreSQL refuses the NUL character and no driver encodes an unpaired surrogate,
so both are refused before anything runs, as a typed error rather than a failed statement.
graphql-core reserves the `String` and `ID` scalars, so the check is made where the values
arrive: variables by the endpoint (`holds_unstorable_text`), literals by a validation rule,
which runs once per document text.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import AddValidationRules, FieldExtension
from strawberry.utils.str_converters import to_camel_case

from app.errors import AppError, ErrorCode

# Python strings hold any code point; a surrogate in one is never part of a pair.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

UNSTORABLE_TEXT = "Text may not hold the NUL character or an unpaired surrogate."


def unstorable(text: str) -> bool:
    return ("\x00" in text) if text.isascii() else _UNSTORABLE.search(text) is not None


def holds_unstorable_text(value: object) -> bool:
    """Whether any string in a JSON value (request variables) is one a database refuses."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if unstorable(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class StorableLiterals(ValidationRule):
    """A string literal (`"\\u0000"` parses) holds only text a database can keep."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if unstorable(node.value):
            self.report_error(
                GraphQLError(
                    UNSTORABLE_TEXT, node, extensions={"code": ErrorCode.BAD_USER_INPUT.value}
                )
            )


class StorableText(AddValidationRules):
    def __init__(self) -> None:
        super().__init__([StorableLiterals])


# RFC 5321 caps an address at 254 characters, and the columns that keep one at that.
EMAIL_MAX_LENGTH = 254
# A tenant's slug is a DNS label.
TENANT_MAX_LENGTH = 63


class MaxLength(FieldExtension):
    """Refuses a string argument longer than its bound before the resolver runs: a field that
    puts what it is given into a rate-limit key or a look-up never sends the database more
    than a column holds. Bounds are keyed by the resolver's argument names."""

    def __init__(self, **bounds: int) -> None:
        super().__init__()
        self.bounds = bounds

    def _check(self, arguments: dict[str, Any]) -> None:
        for name, bound in self.bounds.items():
            value = arguments.get(name)
            if isinstance(value, str) and len(value) > bound:
                raise AppError(
                    f"This is longer than {bound} characters.", field=to_camel_case(name)
                )

    def resolve(self, next_: Callable[..., Any], source: Any, info: Any, **kwargs: Any) -> Any:
        self._check(kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Any, **kwargs: Any
    ) -> Any:
        self._check(kwargs)
        return await next_(source, info, **kwargs)
