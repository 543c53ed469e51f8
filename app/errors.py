"""Errors that are part of the API: each has a stable code clients can branch on."""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    """Every code the two schemas can answer with. Codes are never renamed or reused."""

    BAD_REQUEST = "BAD_REQUEST"
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_CURSOR = "INVALID_CURSOR"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    ROLE_FORBIDDEN = "ROLE_FORBIDDEN"
    MODULE_FORBIDDEN = "MODULE_FORBIDDEN"
    CONTACT_FORBIDDEN = "CONTACT_FORBIDDEN"
    QUOTE_NOT_OPEN = "QUOTE_NOT_OPEN"
    PORTAL_NOT_IN_PLAN = "PORTAL_NOT_IN_PLAN"
    PORTAL_DISABLED = "PORTAL_DISABLED"
    EMAIL_REQUIRED = "EMAIL_REQUIRED"
    PASSWORD_TOO_WEAK = "PASSWORD_TOO_WEAK"  # noqa: S105  (a code, not a secret)
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105  (a code, not a secret)
    USERNAME_TAKEN = "USERNAME_TAKEN"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    CSRF_FAILED = "CSRF_FAILED"
    RATE_LIMITED = "RATE_LIMITED"
    PAYMENTS_NOT_CONFIGURED = "PAYMENTS_NOT_CONFIGURED"
    INVOICE_NOT_PAYABLE = "INVOICE_NOT_PAYABLE"
    AMOUNT_OUT_OF_RANGE = "AMOUNT_OUT_OF_RANGE"
    PAYMENT_PROVIDER_ERROR = "PAYMENT_PROVIDER_ERROR"
    PAYMENT_SUPERSEDED = "PAYMENT_SUPERSEDED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    PORTAL_IDENTIFIER_TAKEN = "PORTAL_IDENTIFIER_TAKEN"
    REQUEST_DECLINED = "REQUEST_DECLINED"
    REQUEST_ALREADY_DECIDED = "REQUEST_ALREADY_DECIDED"
    REQUEST_CANCELLED = "REQUEST_CANCELLED"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    FILE_TYPE_NOT_ALLOWED = "FILE_TYPE_NOT_ALLOWED"
    SELF_CHANGE_FORBIDDEN = "SELF_CHANGE_FORBIDDEN"
    MODULES_TOO_WIDE = "MODULES_TOO_WIDE"
    ALREADY_A_USER = "ALREADY_A_USER"
    USER_ALREADY_ACTIVE = "USER_ALREADY_ACTIVE"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    TIMEOUT = "TIMEOUT"
    # A request GraphQL could not run: not a document, not valid against the schema, or
    # variables that do not fit their types; and refusals of the HTTP request itself.
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    # The production portal runs only the documents of its frontend contract (H2).
    DOCUMENT_NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"
    PERSISTED_DOCUMENT_NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"


class AppError(Exception):
    """An expected failure: shown to the client with its code, never masked."""

    code: ErrorCode = ErrorCode.INVALID_INPUT

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field

    @property
    def extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code.value}
        if self.field is not None:
            extensions["field"] = self.field
        return extensions


class NotFound(AppError):
    code = ErrorCode.NOT_FOUND


class Unauthenticated(AppError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(AppError):
    code = ErrorCode.FORBIDDEN


class InvalidCursor(AppError):
    code = ErrorCode.INVALID_CURSOR


class DatabaseUnavailable(AppError):
    """The database dropped the connection a request was using. `retry_safe` when nothing
    can have been written (a query, or before any operation ran), so the request may run
    again from the start; a mutation's is answered as it is."""

    code = ErrorCode.DATABASE_UNAVAILABLE

    def __init__(self, *, retry_safe: bool) -> None:
        super().__init__(
            "The database could not be reached. Try again."
            if retry_safe
            else "The connection to the database was lost: the change may not have been made."
            " Check before trying again."
        )
        self.retry_safe = retry_safe
