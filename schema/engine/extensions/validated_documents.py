"""Validation once per document text.

Strawberry validates a document in its validation phase unless an extension has set
``pre_execution_errors`` already (what its own ``ValidationCache`` does). Its
``ValidationCache`` keys its LRU by the parsed document itself: graphql-core's AST nodes are
frozen dataclasses, whose hash is computed over every field, recursively, on every lookup, so
each request would re-hash its whole document. The text the document was parsed from
identifies it as well (the parse cache, ``ParserCache``, is keyed by it), and a string's hash
is computed once and kept with the string, so this cache keys by text and the validation rules
in force, and lets Strawberry validate a text it has not seen.
Source: Strawberry ``extensions/validation_cache.py``, ``schema/schema.py``
(``_run_validation``); graphql-core ``language/ast.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

#: ``extensions.code`` of a validation error (Apollo Server's name for it).
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class ValidatedDocuments(SchemaExtension):
    """Sets ``pre_execution_errors`` from ``results`` (an LRU of at most ``size`` entries,
    shared by every operation of one schema) for a text seen before with the same rules;
    otherwise Strawberry validates, and the errors it found are kept. A document given
    without its text is validated every time, as without a cache."""

    def __init__(self, results: OrderedDict[Hashable, list[Any]], size: int) -> None:
        self.results = results
        self.size = size

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        key = (context.query, context.validation_rules)
        errors = self.results.get(key) if context.query is not None else None
        if errors is not None:
            self.results.move_to_end(key)
            context.pre_execution_errors = errors  # Strawberry then skips its validation
            yield
            return
        yield  # Strawberry validates here
        errors = context.pre_execution_errors
        if errors is None:
            return  # no validation rules: nothing was validated
        for error in errors:
            # Apollo's name for it; a limit's own rule may have set a code already.
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}
        if context.query is not None:
            self.results[key] = errors
            if len(self.results) > self.size:
                self.results.popitem(last=False)
