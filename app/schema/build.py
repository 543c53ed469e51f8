"""One way to build either schema, with the same limits, masking and error logging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError, specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from app.schema.errors import ErrorCode, MaskUnexpectedErrors, code_errors, log_unexpected
from app.schema.inputs import StorableLiterals, StorableText
from app.schema.introspection import IntrospectionLimit, SchemaIntrospection
from app.schema.limits import (
    BoundedValidation,
    CountRefusedAttempts,
    DocumentLimits,
    DocumentLimitsWithoutIntrospection,
    TokenLimit,
)
from app.schema.trusted import (
    TrustedCostLimit,
    TrustedDocuments,
    TrustedParserCache,
    TrustedValidationCache,
)


class GatewaySchema(strawberry.Schema):
    # Every rule a request's document is validated with, for documents validated ahead.
    validation_rules: tuple[type[ASTValidationRule], ...] = tuple(specified_rules)
    # Set by the endpoint serving the schema: the documents its extensions skip work for.
    trusted_documents: TrustedDocuments | None = None
    # The schema's description and introspection budget; None where introspection is off.
    introspection: SchemaIntrospection | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business; only our own failures are logged.
        context = execution_context.context if execution_context else None
        log_unexpected(errors, getattr(context, "request_id", None))
        code_errors(errors, execution_context)


class WritesCommitAlone(SchemaExtension):
    """A query reads over the request's one shared transaction; a mutation ends it before
    it runs, so its own transactions commit alone and what it reads back sees them."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.operation_type is not OperationType.QUERY:
            await context.context.db.stop_reading()
        yield


def build_schema(
    *,
    query: type,
    mutation: type | None = None,
    subscription: type | None = None,
    types: list[Any] | None = None,
    production: bool,
    introspection: bool,
) -> GatewaySchema:
    limits = DocumentLimits if introspection else DocumentLimitsWithoutIntrospection
    extensions: list[type[SchemaExtension]] = [
        TokenLimit,
        limits,
        StorableText,
        TrustedParserCache,
        # Before the validation cache: a document too large to validate never reaches it.
        BoundedValidation,
        TrustedValidationCache,
        CountRefusedAttempts,
        # Before the cost limit: introspection is answered or refused there first.
        *([IntrospectionLimit] if introspection else []),
        TrustedCostLimit,
        WritesCommitAlone,
        MaskUnexpectedErrors,
    ]
    schema = GatewaySchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        types=[ErrorCode, *(types or [])],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )
    schema.validation_rules = (
        *specified_rules,
        *limits().validation_rules,
        StorableLiterals,
    )
    if introspection:
        schema.introspection = SchemaIntrospection(schema._schema)
    return schema
