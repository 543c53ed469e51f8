"""Limits on what one document may ask, built once at import so the validation cache holds.

- Depth 12: the deepest screen of either app nests three connections (each adds
  `edges { node }`) under a root and a leaf object; twelve leaves room for that and no more.
- Aliases 30: a dashboard document aliases a handful of lists; 100 aliased sign-in attempts
  in one document are refused before any of them runs. Aliases inside a fragment count
  once per spread.
- Tokens 2,500: the largest operation in `frontend-contract/` is a few hundred tokens; a
  document ten times larger is an attack on the parser, not a screen.
- Page size: see `app.resolvers.pagination.MAX_PAGE_SIZE`.
- Selections 1,000 and merges 2,000, counted over the parsed document before any
  validation rule runs (`BoundedValidation`). Selections: the fields and fragment spreads
  of every operation and fragment, each fragment spread where it is used; each fragment is
  counted once, so sixteen fragments spreading the next twice (a kilobyte; the alias rule
  spread them for 0.6 s) are sixteen steps to count. Merges: the comparisons graphql-core's
  OverlappingFieldsCanBeMerged makes pair by pair between fields under one response name
  (450 `viewer { id }` held a loop 3 s), each pair counted with half the fields beneath the
  two; leaves without arguments, which it passes at a glance, count nothing. A unit is a
  few microseconds of validation. The ordinary introspection query is about 500
  selections and no merge; no operation in `frontend-contract/` comes near either. A
  document past them gets QUERY_TOO_COSTLY and no validation rule ever sees it.
- Cost 10,000: every field costs one, times the rows it may be asked for: a connection's
  `first` (its default when left out, never past the page cap) and 10 for a plain list,
  with the variables as execution will see them (sent, or their defaults). The costliest
  operation in `frontend-contract/` with full pages of 100 (a customer's sites with their
  rentals, for the new-request form) is about 3,500; a page of 100 customers with every
  site's contacts, three nested lists, is over 13,000 and refused before any of it runs.
  The portal's trusted documents are costed once at start-up with every `first` at the
  cap (`app/schema/trusted.py`); one whose worst case fits is not costed per request.
- Lists a portal user can grow (`GROWN_LISTS`: a customer's sites and contacts, a site's
  contacts) have no size to reckon them at: a user may add sites without end. Read going
  down from where they belong (customers, their sites, each site's contacts), each row is
  read once: the pass is as long as the data. Read again beneath a field that leads back
  up (`sites { customer { sites`, `contacts { site { contacts`), they would be read once for
  every row above, and so would any list beneath such a field under them: there is no
  bound to that, and the operation is refused before it runs.
- Introspection is bounded in `app.schema.introspection`: the ordinary query is answered
  from the schema's description built once, and any other asks at most one description's
  worth. It is off on the portal in production.
- Time 15 s (`PORTAL_REQUEST_TIME_LIMIT`): no screen waits that long; past it the request is
  cancelled, its transaction rolled back, and the client told `TIMEOUT`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.values import get_variable_values
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from app.auth.ratelimit import SIGN_IN_PER_ADDRESS, client_address
from app.errors import ErrorCode
from app.resolvers.jobs import MAX_UPCOMING
from app.resolvers.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 2500
MAX_COST = 10_000
MAX_SELECTIONS = 1_000
MAX_MERGES = 2_000
# What a plain list the office keeps (an invoice's lines, a job's visits) is reckoned to hold.
LIST_COST = 10
# Lists a portal user adds to without limit (addProperty, addContact), by type and field.
GROWN_LISTS = frozenset({"Customer.sites", "Customer.contacts", "Site.contacts"})
# Lists read with a cap of their own, reckoned at it.
LIST_SIZES = {"Query.upcomingVisits": MAX_UPCOMING}

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
        "requestEmailChange",
        "confirmEmailChange",
    }
)


class OneCredentialFieldPerDocument(ValidationRule):
    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        if credential_fields(context.document) > 1:
            context.report_error(GraphQLError(ONE_CREDENTIAL_FIELD))


def credential_fields(document: DocumentNode) -> int:
    """How many sign-in or token fields the document's operations hold, fragments spread."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    return sum(
        _count_credential_fields(definition.selection_set, fragments, frozenset())
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    )


ONE_CREDENTIAL_FIELD = "Send one sign-in or token field per request."


class CountRefusedAttempts(SchemaExtension):
    """A document refused for holding several sign-in or token fields counts once against
    the sender's address: none of its fields ran, and counting each would let one request
    spend the attempts of everyone behind a shared address. Not the account's either: a
    stranger's flood must not lock its owner out."""

    async def on_validate(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context
        errors = context.pre_execution_errors or []
        if context.graphql_document is None or not any(
            error.message == ONE_CREDENTIAL_FIELD for error in errors
        ):
            return
        address = client_address(context.context.request)
        await context.context.rate_limiter.hit(SIGN_IN_PER_ADDRESS, address)


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


def spread_selections(document: DocumentNode) -> int:
    """How many fields and fragment spreads the document's operations and fragments hold,
    each fragment spread where it is used. Each fragment is counted once, after the ones it
    spreads, without recursion: fragments that spread each other twice over, ten deep, are
    ten steps to count (and a thousand selections to hold). A spread of a fragment already
    being counted (a cycle, which validation refuses) counts one and nothing inside."""
    fragments = _fragments(document)
    direct = {name: _direct(fragment.selection_set) for name, fragment in fragments.items()}
    counted: dict[str, int] = {}
    entered: set[str] = set()
    for start in fragments:
        pending = [start]
        while pending:
            name = pending[-1]
            if name not in entered:
                entered.add(name)
                pending.extend(s for s in direct[name][1] if s in fragments and s not in entered)
                continue
            pending.pop()
            if name not in counted:
                selections, spreads = direct[name]
                counted[name] = selections + sum(counted.get(s, 0) for s in spreads)
    total = sum(counted.values())
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            selections, spreads = _direct(definition.selection_set)
            total += selections + sum(counted.get(s, 0) for s in spreads)
    return total


def _direct(selection_set: SelectionSetNode) -> tuple[int, list[str]]:
    """The fields and spreads a selection set holds at any depth, and what it spreads."""
    selections, spreads, pending = 0, [], [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                selections += 1
                if selection.selection_set is not None:
                    pending.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                selections += 1
                spreads.append(selection.name.value)
    return selections, spreads


_Group = list[tuple[FieldNode, frozenset[str]]]


def field_merges(document: DocumentNode) -> int:
    """The work of comparing fields under one response name, which validation does pair by
    pair: in each selection set, with its fragments and inline fragments spread into it, each
    pair counts one and half the fields directly beneath the two (which it compares in turn,
    counted again where they merge). A pair of leaves without arguments counts nothing:
    graphql-core passes it at a glance. Walks what `spread_selections` counts, twice."""
    fragments = _fragments(document)
    groups: list[list[tuple[SelectionSetNode, frozenset[str]]]] = [
        [(definition.selection_set, frozenset())]
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    groups.extend(
        [(fragment.selection_set, frozenset({name}))] for name, fragment in fragments.items()
    )
    merges = 0
    while groups:
        for merged in _by_response_name(groups.pop(), fragments).values():
            plain = sum(1 for field, _ in merged if _plain_leaf(field))
            beneath = [(field.selection_set, seen) for field, seen in merged if field.selection_set]
            pairs = len(merged) * (len(merged) - 1) // 2 - plain * (plain - 1) // 2
            if pairs:
                fields = sum(len(group) for group in _by_response_name(beneath, fragments).values())
                merges += pairs + (len(merged) - 1) * fields // 2
            if beneath:
                groups.append(beneath)
    return merges


def _by_response_name(
    selection_sets: list[tuple[SelectionSetNode, frozenset[str]]],
    fragments: Mapping[str, FragmentDefinitionNode],
) -> dict[str, _Group]:
    """The fields of these selection sets, fragments spread, by response name, each with
    the fragments spread on the way to it (a fragment is not spread inside itself)."""
    by_name: dict[str, _Group] = {}
    pending = list(selection_sets)
    while pending:
        selection_set, seen = pending.pop()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                by_name.setdefault(name, []).append((selection, seen))
            elif isinstance(selection, InlineFragmentNode):
                pending.append((selection.selection_set, seen))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    pending.append((fragments[name].selection_set, seen | {name}))
    return by_name


def _plain_leaf(field: FieldNode) -> bool:
    return not field.arguments and field.selection_set is None


def unbounded_validation(document: DocumentNode) -> str | None:
    """Why validating `document` could hold the loop too long, or None when it cannot."""
    selections = spread_selections(document)
    if selections > MAX_SELECTIONS:
        return (
            f"This document holds {selections} selections with its fragments spread, over"
            f" the limit of {MAX_SELECTIONS}; ask for fewer fields."
        )
    merges = field_merges(document)
    if merges > MAX_MERGES:
        return (
            f"This document repeats fields under one name so often that validating it takes"
            f" {merges} comparisons, over the limit of {MAX_MERGES}; ask for each field once."
        )
    return None


class BoundedValidation(SchemaExtension):
    """Counts the document's fields and merges before it is validated (placed before the
    validation cache), and refuses it there when they are too many: no validation rule,
    cached or not, ever sees it."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            reason = unbounded_validation(context.graphql_document)
            if reason is not None:
                context.pre_execution_errors = [_too_costly_error(reason)]
        yield


class BoundedDocument(ValidationRule):
    """The same bound as a rule, so that documents validated ahead (the contract's, at
    start-up) meet it too."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        reason = unbounded_validation(context.document)
        if reason is not None:
            context.report_error(_too_costly_error(reason))


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _too_costly_error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": ErrorCode.QUERY_TOO_COSTLY.value})


_DEPTH_RULE = depth_validator(MAX_DEPTH, None, None)
_ALIAS_RULE = alias_validator(MAX_ALIASES)
_LIMIT_RULES: list[type[ASTValidationRule]] = [
    BoundedDocument,
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


class CostLimit(SchemaExtension):
    """Refuses an operation whose worst case is too large before it runs. Runs after
    validation, on the operation chosen, with its variables as execution will see them:
    `first: $first` counts as what was sent, or as `$first`'s default when nothing was."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operation = chosen_operation(document, context.operation_name)
        # Answered already (introspection), or refused: nothing to reckon.
        if document is not None and operation is not None and context.result is None:
            schema: GraphQLSchema = context.schema._schema
            variables = coerced_variables(schema, operation, context.variables)
            # Variables that do not fit their types are execution's to report; nothing runs.
            if variables is not None:
                cost = operation_cost(schema, document, operation, variables)
                if cost >= UNBOUNDED:
                    again = reckon_operation(schema, document, operation, variables).unbounded
                    context.result = too_costly(
                        f"This operation reads `{again}` again beneath a field that leads back"
                        " up, once for every row above it: there is no bound to that. Ask for"
                        " the list once, from where it belongs."
                    )
                elif cost > MAX_COST:
                    context.result = too_costly(
                        f"This operation could cost {cost}, over the limit of {MAX_COST}; ask"
                        " for smaller pages or fewer nested lists."
                    )
        yield


def chosen_operation(
    document: DocumentNode | None, operation_name: str | None
) -> OperationDefinitionNode | None:
    """The operation a request runs: the one named, or the only one; None when the request
    names none of several (execution reports that)."""
    chosen = [
        definition
        for definition in (document.definitions if document else ())
        if isinstance(definition, OperationDefinitionNode)
        and (
            operation_name is None or (definition.name and definition.name.value == operation_name)
        )
    ]
    return chosen[0] if len(chosen) == 1 else None


def coerced_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, sent: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The operation's variables as execution sees them: those sent, coerced to their types,
    and the defaults of those not sent. None when they do not fit their types."""
    values = get_variable_values(schema, operation.variable_definitions or (), dict(sent or {}))
    return None if isinstance(values, list) else values.coerced


def too_costly(message: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[_too_costly_error(message)])


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
) -> int:
    """What `operation` of `document` may cost with these variables (see the module's top);
    an operation that reads a grown list again costs more than any limit."""
    return reckon_operation(schema, document, operation, variables).cost


class Reckoned(NamedTuple):
    cost: int
    # The first list read again beneath a field that leads back up, by its path.
    unbounded: str | None = None


# What an operation costs that has no bound: more than any limit.
UNBOUNDED = 10**12


def reckon_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
) -> Reckoned:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return Reckoned(0)
    try:
        return Reckoned(
            _Reckoning(schema, _fragments(document), variables).cost(operation.selection_set, root)
        )
    except _Unbounded as unbounded:
        return Reckoned(UNBOUNDED, str(unbounded))


class _Unbounded(Exception):
    """A list read once for every row above it."""


@dataclass(frozen=True, slots=True)
class _Path:
    """What lies above a field, as far as the rows it may be read for go."""

    # A list (or a page) above: its rows are many.
    listed: bool = False
    # A field leading back up (a site's customer) beneath a list: the rows it leads to may
    # be the same for many rows above, so a list beneath it is read again for each.
    repeats: bool = False
    # A list a portal user can grow above: the rows above are as many as they make.
    grown: bool = False
    # Where this is, for the message.
    at: str = ""


_TOP = _Path()


class _Reckoning:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def cost(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        page: int = 1,
        seen: frozenset[str] = frozenset(),
        path: _Path = _TOP,
    ) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, page, seen, path)
            elif isinstance(selection, InlineFragmentNode):
                kind = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                total += self.cost(selection.selection_set, kind, page, seen, path)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    kind = self.schema.get_type(fragment.type_condition.name.value)
                    total += self.cost(fragment.selection_set, kind, page, seen | {name}, path)
        return total

    def _field(
        self, node: FieldNode, parent: Any, page: int, seen: frozenset[str], path: _Path
    ) -> int:
        name = node.name.value
        fields = getattr(parent, "fields", {})
        if name.startswith("__") or name not in fields:
            return 0
        field = fields[name]
        named: GraphQLNamedType = get_named_type(field.type)
        if is_leaf_type(named):
            return 1
        inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        list_name = f"{parent.name}.{name}"
        grown = list_name in GROWN_LISTS
        at = f"{path.at}.{name}" if path.at else name
        connection = named.name.endswith("Connection")
        if (
            (connection or isinstance(inner, GraphQLList))
            and path.repeats
            and (path.grown or grown)
        ):
            raise _Unbounded(at)
        if connection:
            # The page's rows are counted at its `edges`.
            return 1 + self.cost(
                node.selection_set, named, self._first(node, field), seen, replace(path, at=at)
            )
        if isinstance(inner, GraphQLList):
            if parent.name.endswith("Connection") and name == "edges":
                times = page
            else:
                times = LIST_SIZES.get(list_name, LIST_COST)
            below = replace(path, listed=True, grown=path.grown or grown, at=at)
            return 1 + times * self.cost(node.selection_set, named, 1, seen, below)
        # An edge's node is its own row; any other object a row leads to may be shared.
        own = parent.name.endswith("Edge") and name == "node"
        below = replace(path, repeats=path.repeats or (path.listed and not own), at=at)
        return 1 + self.cost(node.selection_set, named, 1, seen, below)

    def _first(self, node: FieldNode, field: Any) -> int:
        asked: Any = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                asked = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                asked = self.variables.get(argument.value.name.value)
        if not isinstance(asked, int) or asked < 0:
            return DEFAULT_PAGE_SIZE
        return min(asked, MAX_PAGE_SIZE)
