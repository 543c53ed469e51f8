"""One way to build either schema, with the same limits, masking and error logging."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.schema.errors import ErrorCode, MaskUnexpectedErrors, log_unexpected
from app.schema.limits import (
    CostLimit,
    CountRefusedAttempts,
    DocumentLimits,
    DocumentLimitsWithoutIntrospection,
    TokenLimit,
)


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business; only our own failures are logged.
        context = execution_context.context if execution_context else None
        log_unexpected(errors, getattr(context, "request_id", None))


def build_schema(
    *,
    query: type,
    mutation: type | None = None,
    types: list[Any] | None = None,
    production: bool,
    introspection: bool,
) -> GatewaySchema:
    extensions: list[type[SchemaExtension]] = [
        TokenLimit,
        DocumentLimits if introspection else DocumentLimitsWithoutIntrospection,
        ParserCache,
        ValidationCache,
        CountRefusedAttempts,
        CostLimit,
        MaskUnexpectedErrors,
    ]
    return GatewaySchema(
        query=query,
        mutation=mutation,
        types=[ErrorCode, *(types or [])],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )
