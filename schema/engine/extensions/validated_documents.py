"""Validation once per document text, stopping at the first few errors, without hints of
the schema when introspection is off.

Strawberry validates a document in its validation phase unless an extension has set
``pre_execution_errors`` already (what its own ``ValidationCache`` does). Its
``ValidationCache`` keys its LRU by the parsed document itself: graphql-core's AST nodes are
frozen dataclasses, whose hash is computed over every field, recursively, on every lookup, so
each request would re-hash its whole document. The text the document was parsed from
identifies it as well (the parse cache, ``ParsedDocuments``, is keyed by it), and a string's
hash is computed once and kept with the string, so this cache keys by text and the validation
rules in force.

It validates itself (the rules in force plus the two Strawberry adds), because Strawberry's
validation passes graphql-core's ``validate`` none of its options: ``max_errors`` (a document
full of mistakes is not worth more than ``MAX_ERRORS`` of them) and ``hide_suggestions``
("Did you mean 'posts'?" names fields, arguments, types and enum values: with introspection
off, the schema is not to be learned from error messages either).
Source: Strawberry ``extensions/validation_cache.py``, ``schema/schema.py``
(``_run_validation``, ``validate_document``); graphql-core ``validation/validate.py``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

from graphql import validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from schema.engine.extensions.parsed_documents import TextCache

#: ``extensions.code`` of a validation error (Apollo Server's name for it).
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
#: Errors after which validation stops (graphql-core then adds "Too many validation errors").
MAX_ERRORS = 10
#: The rules Strawberry adds to the ones in force (``validate_document``).
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


class ValidatedDocuments(SchemaExtension):
    """Sets ``pre_execution_errors`` from ``results`` (shared by every operation of one
    schema) for a text seen before with the same rules; otherwise validates the document
    (at most ``MAX_ERRORS`` errors, suggestions left out when ``hide_suggestions``) and keeps
    the errors found. A document given without its text is validated every time."""

    def __init__(self, results: TextCache[list[Any]], *, hide_suggestions: bool = False) -> None:
        self.results = results
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        rules = context.validation_rules
        if not rules or context.pre_execution_errors is not None:
            yield  # nothing to validate, or already refused
            return
        key: Hashable = (context.query, rules)
        errors = self.results.get(key) if context.query is not None else None
        if errors is None:
            document = context.graphql_document
            assert document is not None  # Strawberry parses before validating
            errors = validate(
                context.schema._schema,
                document,
                (*rules, *_STRAWBERRY_RULES),
                max_errors=MAX_ERRORS,
                hide_suggestions=self.hide_suggestions,
            )
            for error in errors:
                # Apollo's name for it; a limit's own rule may have set a code already.
                if not (error.extensions or {}).get("code"):
                    error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}
            if context.query is not None:
                self.results.put(key, errors, len(context.query))
        context.pre_execution_errors = errors  # Strawberry then skips its validation
        yield
