"""The error contract of both schemas.

Every expected failure carries a code from `ErrorCode` in the GraphQL error's
`extensions.code` (and, for input errors, `extensions.field`). Anything else is masked as
INTERNAL_ERROR with the request id, and logged with that id.
"""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types.graphql import OperationType

from app.db.session import connection_dropped
from app.errors import AppError, DatabaseUnavailable
from app.errors import ErrorCode as ErrorCodeValues

logger = logging.getLogger("app.errors")

ErrorCode = strawberry.enum(
    ErrorCodeValues,
    name="ErrorCode",
    description="Stable codes of expected errors, found in `extensions.code` of each error.",
)


def is_unexpected(error: GraphQLError) -> bool:
    """An error raised by our code that is not one of our own expected errors."""
    original = error.original_error
    return original is not None and not isinstance(original, AppError | GraphQLError)


def log_unexpected(errors: list[GraphQLError], request_id: str | None) -> None:
    for error in errors:
        if connection_dropped(error.original_error):
            # Expected of a pool that does not ping; a query runs again (`app.main`).
            logger.warning(
                "the database dropped the connection at %s (request %s): %s",
                ".".join(str(part) for part in error.path or []),
                request_id,
                error.original_error,
            )
        elif is_unexpected(error):
            logger.error(
                "unexpected error at %s (request %s)",
                ".".join(str(part) for part in error.path or []),
                request_id,
                exc_info=error.original_error,
            )


class MaskUnexpectedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        extensions: dict[str, Any] = {"code": ErrorCodeValues.INTERNAL_ERROR.value}
        if connection_dropped(error.original_error):
            # Told apart from other failures, and kept for the endpoint: a query is run again.
            unavailable = DatabaseUnavailable(
                retry_safe=self.execution_context.operation_type is OperationType.QUERY
            )
            masked.message = unavailable.message
            masked.original_error = unavailable
            extensions["code"] = unavailable.code.value
        request_id = getattr(self.execution_context.context, "request_id", None)
        if request_id:
            extensions["requestId"] = request_id
        masked.extensions = extensions
        return masked
