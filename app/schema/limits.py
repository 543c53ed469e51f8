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

from graphql import ASTValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 2500

_DEPTH_RULE = depth_validator(MAX_DEPTH, None, None)
_ALIAS_RULE = alias_validator(MAX_ALIASES)
_LIMIT_RULES: list[type[ASTValidationRule]] = [_DEPTH_RULE, _ALIAS_RULE]
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
