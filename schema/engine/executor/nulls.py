"""Field errors in a breadth-first run: where a value sits in the response, and how null
propagates from a failed field.

Errors follow the specification's "Handling Field Errors": a field error is located at the
field's path; when the field is non-null, null propagates to the nearest nullable ancestor
(list items included), and errors under a position that is already null are dropped, as
graphql-core's ``CollectedErrors`` does. Positions are linked tuples
``(parent, key, typename, container, nullable)``, so paths are built only for errors.

Source: GraphQL specification, "Handling Field Errors"
(https://spec.graphql.org/October2021/#sec-Handling-Field-Errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, located_error
from graphql.pyutils import Path

if TYPE_CHECKING:
    from graphql.execution.executor import CollectedErrors

    from schema.engine.executor.plan import FieldPlan

#: A value's place in the response: (parent position, key, parent type name or None for a
#: list index, the dict or list holding it, whether it may be null).
Position = tuple[Any, str | int, str | None, Any, bool]


def path_of(position: Position | None) -> Path | None:
    """The graphql-core ``Path`` of ``position``."""
    if position is None:
        return None
    parent, key, typename, _container, _nullable = position
    return Path(path_of(parent), key, typename)


def _document_order(position: Position | None) -> tuple[int, ...]:
    """Where ``position`` comes in the response, depth first: each step's index among its
    container's keys (response dicts keep their selection's order) or in its list."""
    steps: list[int] = []
    while position is not None:
        parent, key, _typename, container, _nullable = position
        steps.append(key if type(key) is int else list(container).index(key))
        position = parent
    steps.reverse()
    return tuple(steps)


class NullPropagation:
    """The response's ``data`` and its field errors: errors are recorded as the level
    completes (``_null``) and applied, nulls propagating, when it is settled (``_settle``)."""

    data: dict[str, Any] | None
    errors: CollectedErrors
    #: The level's field errors, with the positions they null (``_settle``).
    _nulls: list[tuple[Position | None, GraphQLError]]

    def _locate(self, error: Exception, field: FieldPlan, position: Position) -> GraphQLError:
        path = path_of(position)
        return located_error(error, field.nodes, path.as_list() if path else None)

    def _null(self, position: Position | None, error: GraphQLError) -> None:
        """Record that ``error`` nulls ``position``: applied when the level is settled."""
        self._nulls.append((position, error))

    def _settle(self) -> None:
        """Apply the level's nulls in document order. Which error survives when several
        null the same ancestor is the first graphql-core meets, and it meets a level's
        fields depth first, in the order of the response."""
        if not self._nulls:
            return
        nulls, self._nulls = self._nulls, []
        nulls.sort(key=lambda entry: _document_order(entry[0]))
        for position, error in nulls:
            self._apply_null(position, error)

    def _apply_null(self, position: Position | None, error: GraphQLError) -> None:
        """Null the nearest nullable position at or above ``position`` (the whole ``data``
        if none is) and record ``error`` there, unless an ancestor is already null."""
        while position is not None and not position[4]:
            position = position[0]
        if position is None:
            self.errors.add(error, None)
            self.data = None
            return
        path = path_of(position)
        if self.errors.has_nulled_position(path):
            return
        position[3][position[1]] = None
        self.errors.add(error, path)
