"""Trusted documents (H2): the operations of `frontend-contract/operations/`, each parsed,
validated against the portal schema and costed once, when the app is built.

A request names one by its id, `sha256:<hex>` of the file's exact text (the
GraphQL-over-HTTP persisted-documents proposal's `documentId`, and Apollo's
`extensions.persistedQuery.sha256Hash` without the prefix), or sends its exact text. In
production the portal runs nothing else (`app/main.py` refuses the rest before parsing).

Per request a trusted document is not parsed, validated or costed again: the schema
extensions below hand Strawberry the document parsed here and no validation errors, and
skip the cost limit for a document whose worst case fits. Any other text goes through
Strawberry's caches and the cost limit exactly as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    Source,
    parse,
)
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from app.resolvers.pagination import MAX_PAGE_SIZE
from app.schema.limits import MAX_COST, MAX_TOKENS, CostLimit, operation_cost

if TYPE_CHECKING:
    from app.schema.build import GatewaySchema

# The contract lives in the repository beside the package, not inside it (the wheel holds
# only `app/`): the service runs from a checkout, and without the folder the portal does
# not start.
CONTRACT = Path(__file__).resolve().parents[2] / "frontend-contract"
OPERATIONS = CONTRACT / "operations"
MANIFEST = CONTRACT / "persisted-documents.json"

ID_PREFIX = "sha256:"


def document_id(text: str) -> str:
    """`sha256:` and the lower-case hex SHA-256 of the text's UTF-8 bytes."""
    return ID_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_operations(folder: Path = OPERATIONS) -> dict[str, str]:
    """Each operation file's exact text by file name. Read as bytes: no newline is
    translated, so a document's id is the hash of the file as the apps bundle it."""
    return {
        path.name: path.read_bytes().decode("utf-8") for path in sorted(folder.glob("*.graphql"))
    }


def manifest(texts: Iterable[str]) -> str:
    """`{"sha256:<hex>": "<text>"}` sorted by id: what `make schema` writes, for the apps'
    build and any gateway in front of the service."""
    entries = sorted((document_id(text), text) for text in texts)
    return json.dumps(dict(entries), indent=2, ensure_ascii=False) + "\n"


class UntrustworthyDocument(Exception):
    """An operation of the contract that the schema cannot run: the app must not start."""


@dataclass(frozen=True, eq=False)
class TrustedDocument:
    """One operation of the contract, as parsed, validated and costed at start-up."""

    id: str
    text: str
    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: Mapping[str, FragmentDefinitionNode]
    operation_name: str
    operation_type: OperationType
    # With every `first` at the page cap: a document that fits is never costed again.
    worst_case_cost: int

    @property
    def sha256_hash(self) -> str:
        """The id without its prefix: Apollo's `persistedQuery.sha256Hash`."""
        return self.id.removeprefix(ID_PREFIX)

    @property
    def fits(self) -> bool:
        return self.worst_case_cost <= MAX_COST


def prepare(schema: GatewaySchema, text: str, name: str) -> TrustedDocument:
    """Parses, validates (with every rule a request meets) and costs one document."""
    try:
        document = parse(Source(text, name), max_tokens=MAX_TOKENS)
    except GraphQLError as error:
        raise UntrustworthyDocument(f"{name} does not parse: {error.message}") from error
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None:
        raise UntrustworthyDocument(f"{name} must hold exactly one named operation")
    [operation] = operations
    assert operation.name is not None
    errors = validate_document(schema._schema, document, schema.validation_rules)
    if errors:
        reasons = "; ".join(error.message for error in errors)
        raise UntrustworthyDocument(f"{name} is not valid against the schema: {reasons}")
    worst_case = {
        definition.variable.name.value: MAX_PAGE_SIZE
        for definition in operation.variable_definitions or ()
    }
    return TrustedDocument(
        id=document_id(text),
        text=text,
        document=document,
        operation=operation,
        fragments={
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        },
        operation_name=operation.name.value,
        operation_type=operation.operation,
        worst_case_cost=operation_cost(schema._schema, document, operation, worst_case),
    )


class TrustedDocuments:
    """Every trusted document of one schema, by id, by Apollo's hash and by exact text."""

    def __init__(self, documents: Iterable[TrustedDocument]) -> None:
        self._by_id = {document.id: document for document in documents}
        self._by_text = {document.text: document for document in self._by_id.values()}

    @classmethod
    def load(cls, schema: GatewaySchema, folder: Path = OPERATIONS) -> TrustedDocuments:
        """Every operation file of `folder`, prepared against `schema`; raises
        `UntrustworthyDocument` for the first that cannot run, or when there is none."""
        texts = read_operations(folder)
        if not texts:
            raise UntrustworthyDocument(f"no operations in {folder}")
        return cls(prepare(schema, text, name) for name, text in texts.items())

    def by_id(self, document_id: str) -> TrustedDocument | None:
        return self._by_id.get(document_id)

    def by_hash(self, sha256_hash: str) -> TrustedDocument | None:
        return self._by_id.get(ID_PREFIX + sha256_hash)

    def by_text(self, text: str) -> TrustedDocument | None:
        return self._by_text.get(text)

    def __iter__(self) -> Iterator[TrustedDocument]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def trusted_document(context: ExecutionContext) -> TrustedDocument | None:
    """The trusted document a request runs, if it runs one. The endpoint hands the
    registry's own string over, so the look-up is by identity and a cached hash."""
    documents: TrustedDocuments | None = getattr(context.schema, "trusted_documents", None)
    if documents is None or context.query is None:
        return None
    return documents.by_text(context.query)


class TrustedParserCache(ParserCache):
    """A trusted document is the one parsed at start-up; other text is parsed (and cached)
    by Strawberry as before."""

    def on_parse(self) -> Iterator[None]:
        trusted = trusted_document(self.execution_context)
        if trusted is None:
            yield from super().on_parse()
            return
        self.execution_context.graphql_document = trusted.document
        yield


class TrustedValidationCache(ValidationCache):
    """A trusted document was validated at start-up, with the same rules: no errors. A
    document an earlier extension has answered already (too large to validate) is left as
    it is, as Strawberry's own validation leaves it."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors is not None:
            yield
            return
        if trusted_document(self.execution_context) is None:
            yield from super().on_validate()
            return
        self.execution_context.pre_execution_errors = []
        yield


class TrustedCostLimit(CostLimit):
    """A trusted document whose worst case fits needs no costing; others are costed with
    the variables sent, as before."""

    def on_execute(self) -> Iterator[None]:
        trusted = trusted_document(self.execution_context)
        if trusted is not None and trusted.fits:
            yield
            return
        yield from super().on_execute()
