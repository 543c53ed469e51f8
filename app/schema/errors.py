"""The error contract of both schemas.

Every expected failure carries a code from `ErrorCode` in the GraphQL error's
`extensions.code` (and, for input errors, `extensions.field`). So does every request GraphQL
cannot run: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, or BAD_USER_INPUT for variables
that do not fit their types, worded in GraphQL's terms (null, not Python's None). Anything
else is masked as INTERNAL_ERROR with the request id, and logged with that id. In production
no error suggests a name the client did not send (SECURITY row 32).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext
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


def is_unexpected_exception(error: GraphQLError) -> bool:
    """An error raised by our code that is not one of our own expected errors."""
    original = error.original_error
    return original is not None and not isinstance(original, AppError | GraphQLError)


def is_unexpected(error: GraphQLError) -> bool:
    """An unexpected exception, or an error graphql-core raised about a field's value (a null
    where the schema promises one): what is masked and logged."""
    if is_unexpected_exception(error):
        return True
    return error.path is not None and "code" not in (error.extensions or {})


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
                "unexpected error at %s (request %s): %s",
                ".".join(str(part) for part in error.path or []),
                request_id,
                error.message,
                exc_info=error.original_error,
            )


# graphql-core writes values into its messages with Python's words for them.
_PYTHON_WORDS = re.compile(r"'[^']*'|\b(None|True|False)\b")
_GRAPHQL_WORDS = {"None": "null", "True": "true", "False": "false"}
_SUGGESTION = " Did you mean "


def in_graphql_words(message: str) -> str:
    """`None`, `True` and `False` as GraphQL writes them; quoted names and values untouched."""
    return _PYTHON_WORDS.sub(lambda match: _GRAPHQL_WORDS.get(match[0], match[0]), message)


def without_suggestion(message: str) -> str:
    """graphql-core ends a message with its suggestion, when it makes one."""
    return message.split(_SUGGESTION, 1)[0]


def code_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Gives each error of a request GraphQL could not run its code, in GraphQL's words, and
    in production takes out any suggestion. Runs on every list of errors a schema reports:
    parse errors (also those a parser cache raises), validation errors, and what execution
    found, before unexpected errors are masked."""
    quiet = execution_context is None or execution_context.schema.config.disable_field_suggestions
    for error in errors:
        if quiet:
            error.message = without_suggestion(error.message)
        if "code" in (error.extensions or {}) or error.path is not None:
            continue
        if is_unexpected_exception(error):
            # Raised by an extension before execution: nothing after this masks it.
            error.message = "Unexpected error."
            code = ErrorCodeValues.INTERNAL_ERROR
        elif execution_context is None or execution_context.graphql_document is None:
            code = ErrorCodeValues.GRAPHQL_PARSE_FAILED
        elif execution_context.result is None:
            # Reported before execution began (Strawberry sets the result only after it).
            code = ErrorCodeValues.GRAPHQL_VALIDATION_FAILED
        else:
            # Execution reports no error without a path but the variables' coercion.
            code = ErrorCodeValues.BAD_USER_INPUT
        error.message = in_graphql_words(error.message)
        extensions: dict[str, Any] = {**(error.extensions or {}), "code": code.value}
        context = execution_context.context if execution_context else None
        request_id = getattr(context, "request_id", None)
        if code is ErrorCodeValues.INTERNAL_ERROR and request_id:
            extensions["requestId"] = request_id
        error.extensions = extensions


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
