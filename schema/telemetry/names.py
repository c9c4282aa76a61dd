"""Operation names as metric labels, from a bounded set.

A label value makes a time series per combination of labels, in every worker, kept until
the process ends: a client writing a new operation name per request (a generated one, a
random ``operationName``) would grow the metrics without bound. So a name becomes a label
only when it is known: named in the operation manifest (``OPERATION_MANIFEST``), or among
the first ``METRICS_OPERATION_NAMES`` distinct names of operations this process executed.
Any other is ``other``; an operation without a name is ``anonymous``; a request whose
document was never read (a syntax error, a persisted query not found) is ``unknown``.
Source: Prometheus docs, "Instrumentation: Use labels" (cardinality) and "Naming".
"""

from __future__ import annotations

from collections.abc import Iterable

from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse

ANONYMOUS, OTHER, UNKNOWN = "anonymous", "other", "unknown"


class OperationNames:
    """The process's operation-name labels: the manifest's names, then up to ``budget``
    names learnt from operations that ran."""

    __slots__ = ("_budget", "_known")

    def __init__(self, manifest_names: Iterable[str] = (), budget: int = 100) -> None:
        self._known = set(manifest_names)
        self._budget = budget

    def label(self, name: str | None, *, executed: bool) -> str:
        """The label of an operation named ``name`` (``None``: unnamed); ``executed`` when
        its document was valid and it ran, which is what lets a new name in."""
        if name is None:
            return ANONYMOUS
        if name in self._known:
            return name
        if executed and self._budget > 0:
            self._budget -= 1
            self._known.add(name)
            return name
        return OTHER


def manifest_names(bodies: Iterable[str]) -> set[str]:
    """The names of the operations in ``bodies`` (GraphQL documents, e.g. a persisted query
    manifest's); documents that do not parse are skipped (the manifest's loader has checked
    them already)."""
    names: set[str] = set()
    for body in bodies:
        try:
            document = parse(body)
        except GraphQLSyntaxError:
            continue
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name is not None:
                names.add(definition.name.value)
    return names
