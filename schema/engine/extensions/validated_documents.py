"""Validation once per document text.

Strawberry's ``ValidationCache`` keys its LRU by the parsed document itself. graphql-core's
AST nodes are frozen dataclasses, whose hash is computed over every field, recursively, on
every lookup: each request re-hashes its whole document, a cost that grows with the
document. The text the document was parsed from identifies it as well (the parse cache,
``ParserCache``, is keyed by it), and a string's hash is computed once and kept with the
string, so this cache keys by text and the validation rules in force.
Source: Strawberry ``extensions/validation_cache.py``; graphql-core ``language/ast.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

#: ``extensions.code`` of a validation error (Apollo Server's name for it).
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class ValidatedDocuments(SchemaExtension):
    """Sets ``pre_execution_errors`` from ``results`` (an LRU of at most ``size`` entries,
    shared by every operation of one schema), validating a document only the first time its
    text is seen with the same rules. A document given without its text is validated every
    time, as without a cache."""

    def __init__(self, results: OrderedDict[Hashable, list[Any]], size: int) -> None:
        self.results = results
        self.size = size

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        key = (context.query, context.validation_rules)
        errors = self.results.get(key) if context.query is not None else None
        if errors is None:
            assert context.graphql_document is not None  # validation follows a parse
            errors = validate_document(
                context.schema._schema, context.graphql_document, context.validation_rules
            )
            for error in errors:
                # Apollo's name for it; a limit's own rule may have set a code already.
                if not (error.extensions or {}).get("code"):
                    error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}
            if context.query is not None:
                self.results[key] = errors
                if len(self.results) > self.size:
                    self.results.popitem(last=False)
        else:
            self.results.move_to_end(key)
        context.pre_execution_errors = errors
        yield
