"""Limits on what one document may ask, built once at import so the validation cache holds.

- Depth 12: the deepest screen of either app nests three connections (each adds
  `edges { node }`) under a root and a leaf object; twelve leaves room for that and no more.
- Aliases 30: a dashboard document aliases a handful of lists; 100 aliased sign-in attempts
  in one document are refused before any of them runs. Aliases inside a fragment count
  once per spread.
- Tokens 2,500: the largest operation in `frontend-contract/` is a few hundred tokens; a
  document ten times larger is an attack on the parser, not a screen.
- Page size: see `app.resolvers.pagination.MAX_PAGE_SIZE`.
"""

from __future__ import annotations

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 2500

# Fields that check a secret: one per document, so aliases cannot multiply the guesses a
# request makes (each attempt also counts against the rate limits on its own).
CREDENTIAL_FIELDS = frozenset(
    {
        "signIn",
        "acceptInvitation",
        "resetPassword",
        "requestPasswordReset",
        "requestMagicLink",
        "redeemMagicLink",
        "refreshSession",
        "changePassword",
    }
)


class OneCredentialFieldPerDocument(ValidationRule):
    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        fragments = {
            definition.name.value: definition
            for definition in context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        found = sum(
            _count_credential_fields(definition.selection_set, fragments, frozenset())
            for definition in context.document.definitions
            if isinstance(definition, OperationDefinitionNode)
        )
        if found > 1:
            context.report_error(GraphQLError("Send one sign-in or token field per request."))


def _count_credential_fields(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> int:
    if selection_set is None:
        return 0
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += selection.name.value in CREDENTIAL_FIELDS
        elif isinstance(selection, InlineFragmentNode):
            count += _count_credential_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                count += _count_credential_fields(
                    fragments[name].selection_set, fragments, seen | {name}
                )
    return count


_DEPTH_RULE = depth_validator(MAX_DEPTH, None, None)
_ALIAS_RULE = alias_validator(MAX_ALIASES)
_LIMIT_RULES: list[type[ASTValidationRule]] = [
    _DEPTH_RULE,
    _ALIAS_RULE,
    OneCredentialFieldPerDocument,
]
_LIMIT_RULES_WITHOUT_INTROSPECTION: list[type[ASTValidationRule]] = [
    *_LIMIT_RULES,
    NoSchemaIntrospectionCustomRule,
]


class DocumentLimits(AddValidationRules):
    def __init__(self) -> None:
        super().__init__(_LIMIT_RULES)


class DocumentLimitsWithoutIntrospection(AddValidationRules):
    def __init__(self) -> None:
        super().__init__(_LIMIT_RULES_WITHOUT_INTROSPECTION)


class TokenLimit(MaxTokensLimiter):
    def __init__(self) -> None:
        super().__init__(max_token_count=MAX_TOKENS)
