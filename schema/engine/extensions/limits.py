"""Refuses operations too big to serve, before any resolver (or database) sees them."""

from __future__ import annotations

import json
import weakref
from collections.abc import Hashable, Iterator
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension

from schema.context import Context
from schema.engine.limits import Measure, measure, sizing_variables
from schema.engine.operation_memo import OperationMemo
from schema.engine.shape import Shape, shape
from settings import Settings

#: graphql-core's parser error when a document has more than ``max_tokens`` tokens.
_TOO_MANY_TOKENS = "Document contains more than"


def limit_error(code: str, message: str, limit: int, actual: int | None = None) -> GraphQLError:
    """The error of an exceeded limit: ``extensions = {code, limit[, actual]}``."""
    details: dict[str, object] = {"code": code, "limit": limit}
    if actual is not None:
        details["actual"] = actual
    return GraphQLError(message, extensions=details)


def _json_size(value: object) -> int:
    """Bytes of ``value`` as UTF-8 JSON (text a database cannot store, such as a lone
    surrogate, is measured too: it is refused later, with a field error)."""
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


#: Measures kept per process, by operation, page sizes and the values of its sizing variables.
MEASURES = 1024


def _measured(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    settings: Settings,
) -> Measure:
    """``measure``, remembered per operation and values of the variables it depends on
    (``sizing_variables``): a client repeats the same document."""
    return _measures.get(
        operation,
        fragments,
        variables,
        lambda: measure(
            schema,
            operation,
            fragments,
            variables,
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
        ),
        settings.default_page_size,
        settings.max_page_size,
    )


def _sizing_value(value: Any) -> Hashable:
    """What the measure can read of a sizing variable's value (``rows_per_parent``): a page
    size, a list's length, or its kind. Never the value itself: a list of ids may be half a
    megabyte, and each distinct one would be kept."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return ("list", len(value))
    return type(value).__name__


_measures: OperationMemo[Measure] = OperationMemo(MEASURES, sizing_variables, _sizing_value)

#: A document's operations, and its fragments by name.
Definitions = tuple[list[OperationDefinitionNode], dict[str, FragmentDefinitionNode]]
#: Per document (by id, while the document lives): its ``Definitions`` and ``Shape``.
_documents: dict[int, tuple[Definitions, Shape]] = {}


def examined(document: DocumentNode) -> tuple[Definitions, Shape]:
    """``document``'s operations, its fragments by name, and its ``Shape``, found once per
    document (the parse cache hands a repeated document back as the same node). The entry
    goes when the document does (``weakref.finalize``): it never keeps a document alive,
    so an attacker's unique documents are not held here after their requests end. Safe to
    call from the parsing thread (``ParsedDocuments``' ``keep``): one dictionary store."""
    entry = _documents.get(id(document))
    if entry is None:
        definitions = document.definitions
        operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
        fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
        entry = _documents[id(document)] = ((operations, fragments), shape(document))
        weakref.finalize(document, _documents.pop, id(document), None)
    return entry


def shape_refusal(settings: Settings, document: DocumentNode) -> GraphQLError | None:
    """The error refusing ``document`` for its shape (``schema.engine.shape``: a fragment
    cycle, ``MAX_SELECTIONS``, ``MAX_QUERY_DEPTH``, ``MAX_ALIASES``), or ``None``; measured
    once per document (``examined``)."""
    found = examined(document)[1]
    if found.cycle is not None:
        # NoFragmentCyclesRule's words, without following the cycle's path.
        return GraphQLError(
            f"Cannot spread fragment '{found.cycle}' within itself.",
            extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
        )
    limits = (
        ("TOO_MANY_SELECTIONS", found.selections, settings.max_selections,
         "The document selects {actual:,} fields and fragments once its fragments are "
         "expanded; at most {limit:,}."),
        ("QUERY_TOO_DEEP", found.depth, settings.max_query_depth,
         "The operation nests fields {actual} deep; at most {limit}."),
        ("TOO_MANY_ALIASES", found.aliases, settings.max_aliases,
         "The operation uses {actual} aliases; at most {limit}."),
    )  # fmt: skip
    for code, actual, limit, message in limits:
        if actual > limit:
            return limit_error(code, message.format(actual=actual, limit=limit), limit, actual)
    return None


class QueryLimits(SchemaExtension):
    """Enforces the configured limits on each operation, each with its own error code:

    - ``DOCUMENT_TOO_LARGE``: more than ``MAX_TOKENS`` tokens (graphql-core's parser stops
      counting there, so a huge document costs little to refuse);
    - ``TOO_MANY_SELECTIONS``: more than ``MAX_SELECTIONS`` selections once fragments are
      expanded (``schema.engine.shape``: counted, never expanded);
    - ``QUERY_TOO_DEEP``: fields nested deeper than ``MAX_QUERY_DEPTH``;
    - ``TOO_MANY_ALIASES``: more than ``MAX_ALIASES`` aliased fields;
    - ``GRAPHQL_VALIDATION_FAILED``: a fragment that spreads itself;
    - ``VARIABLES_TOO_LARGE``: variables over ``MAX_VARIABLES_BYTES`` as JSON;
    - ``QUERY_TOO_COSTLY``: more than ``MAX_QUERY_COST`` estimated rows (``schema.engine.limits``);
    - ``BAD_REQUEST``: several operations and no ``operationName`` to choose one.

    The document's shape (selections, depth, aliases, cycles) is checked right after parsing,
    before validation, in time linear in its text: validation costs more than that on some
    documents (a fragment fan-out, the same field thousands of times), and a document refused
    there never reaches it. Depth and aliases are the largest of any operation in the
    document. The cost needs the schema and the variables' values, so it is checked after
    validation. Both refuse the operation by raising, before execution (over HTTP and
    WebSocket alike).
    Source: Strawberry docs, "MaxTokensLimiter" (``parse_options["max_tokens"]``).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.settings.max_tokens
        # The name the request gave: before the document is parsed, Strawberry's
        # ``operation_name`` is that (afterwards it falls back to the first operation's).
        self.requested_name = self.execution_context.operation_name
        # The parser's own error gets its code here: ParsedDocuments parses in its hook, so the
        # error comes out of the operation as an exception (or, parsed by Strawberry itself,
        # in the result).
        try:
            yield
        except GraphQLError as raised:
            self._tag(raised)
            raise
        result = self.execution_context.result
        for error in (result.errors if result is not None else None) or ():
            self._tag(error)

    def _tag(self, error: GraphQLError) -> None:
        if _TOO_MANY_TOKENS in error.message:
            error.extensions = {"code": "DOCUMENT_TOO_LARGE", "limit": self.settings.max_tokens}

    def on_parse(self) -> Iterator[None]:
        yield  # ParsedDocuments parses (or finds the document) on entry
        document = self.execution_context.graphql_document
        if document is not None and (error := shape_refusal(self.settings, document)) is not None:
            raise error  # before validation: it comes out like a syntax error

    def on_execute(self) -> Iterator[None]:
        # Raised, not set as the result: Strawberry's subscription path ignores a preset
        # result, but turns an error raised here into the stream's one error result.
        if (error := self._refusal()) is not None:
            raise error
        yield

    def _refusal(self) -> GraphQLError | None:
        settings, context = self.settings, self.execution_context
        variables = context.variables or {}
        size = _json_size(variables)
        if size > settings.max_variables_bytes:
            return limit_error(
                "VARIABLES_TOO_LARGE",
                f"The variables are {size:,} bytes; at most {settings.max_variables_bytes:,}.",
                settings.max_variables_bytes,
                size,
            )
        document = context.graphql_document
        if document is None:
            return None
        operations, fragments = examined(document)[0]
        wanted = context.operation_name
        if self.requested_name is None and len(operations) > 1:
            # Never "the first one": that could run a mutation the client did not mean.
            # Source: GraphQL spec, "GetOperation" (a request error).
            return GraphQLError(
                "The document has several operations: say which to run with operationName.",
                extensions={"code": "BAD_REQUEST"},
            )
        chosen = [o for o in operations if wanted is None or (o.name and o.name.value == wanted)]
        if not chosen:
            return None  # graphql-core reports the unknown operation
        schema = context.schema._schema
        coerced: dict[str, Any] = {}
        if _measures.variables(chosen[0], fragments):
            # Only an operation whose measure depends on variables (page sizes) needs them
            # coerced here; graphql-core coerces them again to execute.
            found_values = get_variable_values(
                schema, chosen[0].variable_definitions or (), variables
            )
            if isinstance(found_values, list):
                return None  # graphql-core reports the variables that do not coerce
            coerced = found_values.coerced
        found = _measured(schema, chosen[0], fragments, coerced, settings)
        if isinstance(operation_context := context.context, Context):
            operation_context.cost = found.cost  # what its rate limit charges
        if found.truncated:
            return limit_error(
                "QUERY_TOO_COSTLY",
                "The operation's fragments expand into too many fields to serve.",
                settings.max_query_cost,
            )
        if found.cost > settings.max_query_cost:
            return limit_error(
                "QUERY_TOO_COSTLY",
                f"The operation may read about {found.cost:,} rows; at most "
                f"{settings.max_query_cost:,}: ask for smaller pages or less nesting.",
                settings.max_query_cost,
                found.cost,
            )
        return None
