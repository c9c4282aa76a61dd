"""Completing values breadth-first: each field's values, for all the objects of a level, made
the response's plain dicts and lists.

A value is completed as the specification's "Value Completion" says, with the plan's
decisions already taken (``schema.engine.executor.plan``): a leaf is coerced (strings and
booleans that are already what they serialise to pass as they are), a list item by item, and
an object queued, with its (still empty) response dict, for its selection: at the next level,
or within this one when that selection has no batch field (``Selection.inline``). A
connection's ``edges`` read only for their nodes are completed from its ``nodes``
(``batch_fields.batch_field``'s ``edges_over``), one dict per edge and no edge object. A
value that cannot complete is a field error at its position (``nulls``).

Source: GraphQL specification, "Value Completion"
(https://spec.graphql.org/October2021/#sec-Value-Completion).
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from schema.engine.executor.nulls import NullPropagation, Position
from schema.engine.executor.plan import (
    BOOLEAN,
    STRING,
    TYPENAME,
    Abstract,
    FieldPlan,
    Leaf,
    ListOf,
    Object,
    Selection,
)

#: A selection applied to objects at one level: (selection, sources, result dicts, positions).
Work = tuple[Selection, list[Any], list[dict[str, Any]], list[Position]]


class _Null(Exception):
    """A non-null value position completed to null; carries the located error."""

    def __init__(self, error: GraphQLError) -> None:
        self.error = error


def _enqueue(work: Work, value: Any, position: Position) -> dict[str, Any]:
    """Queue object ``value`` at ``position`` for ``work``'s selection at the next level;
    returns its (still empty) response dict, keys in response order."""
    result = work[0].empty.copy()
    work[1].append(value)
    work[2].append(result)
    work[3].append(position)
    return result


class Completer(NullPropagation):
    """Completes field values into the response, queuing the objects reached for their
    selections (``_work``); the breadth-first run (``run.BreadthFirst``) drives it level by
    level."""

    #: The next level's work, one item per selection (a selection sits at one place in
    #: the plan, so all its objects of a level gather in one batch).
    _next: dict[int, Work]
    #: Work for inline selections (no batch field): done before the level ends.
    _now: dict[int, Work]

    def _complete_column(self, field: FieldPlan, work: Work, values: list[Any]) -> None:
        """Complete ``field``'s value on every object of ``work`` (values in source order)."""
        _selection, _sources, dicts, positions = work
        key = field.key
        completion = field.completion
        assert completion is not None
        typename = field.parent_type.name
        leaf = completion if type(completion) is Leaf else None
        strings = leaf is not None and leaf.fast == STRING
        # Other scalars (ids, numbers, dates): coerced here; a value the scalar refuses (or
        # coerces to null) takes the general path, which reports it.
        coerce = leaf.coerce if leaf is not None and not strings else None
        nullable = completion.nullable
        child = self._work(completion.selection) if type(completion) is Object else None
        for result, position, value in zip(dicts, positions, values, strict=True):
            # The common cases inline: a string, a null where null is allowed (the dict
            # already holds it), a scalar, an object queued for its selection.
            if strings and type(value) is str:
                result[key] = value
            elif value is None:
                if not nullable:
                    self._complete_field_at(field, position, result, key, typename, value)
            elif isinstance(value, Exception):
                self._complete_field_at(field, position, result, key, typename, value)
            elif coerce is not None:
                try:
                    coerced = coerce(value)
                except Exception:
                    coerced = None
                if coerced is None:
                    self._complete_field_at(field, position, result, key, typename, value)
                else:
                    result[key] = coerced
            elif child is not None:
                result[key] = _enqueue(child, value, (position, key, typename, result, nullable))
            else:
                self._complete_field_at(field, position, result, key, typename, value)

    def _complete_field_at(
        self,
        field: FieldPlan,
        parent: Position | None,
        result: dict[str, Any],
        key: str,
        typename: str,
        value: Any,
    ) -> None:
        completion = field.completion
        assert completion is not None
        position: Position = (parent, key, typename, result, completion.nullable)
        try:
            result[key] = self._complete(field, completion, position, value)
        except _Null as null:
            self._null(position, null.error)
        except Exception as error:
            self._null(position, self._locate(error, field, position))

    def _complete(self, field: FieldPlan, completion: Any, position: Position, value: Any) -> Any:
        """The completed form of ``value`` at ``position``. Raises ``_Null`` when a non-null
        position gets null (or an error), other exceptions for a field error there."""
        if isinstance(value, Exception):
            raise value
        if value is None:
            if completion.nullable:
                return None
            raise _Null(
                self._locate(
                    TypeError(
                        "Cannot return null for non-nullable field"
                        f" {field.parent_type.name}.{field.name}."
                    ),
                    field,
                    position,
                )
            )
        kind = type(completion)
        if kind is Leaf:
            fast = completion.fast
            if (fast == STRING and type(value) is str) or (fast == BOOLEAN and type(value) is bool):
                return value
            coerced = completion.coerce(value)
            if coerced is None:
                raise TypeError(
                    f"Expected `{completion}.coerce_output_value({value!r})` to return "
                    "non-nullable value, returned: None"
                )
            return coerced
        if kind is Object:
            return _enqueue(self._work(completion.selection), value, position)
        if kind is ListOf:
            return self._list(field, completion, value, position)
        if kind is Abstract:
            selection = completion.by_class.get(type(value))
            if selection is None:
                raise TypeError(
                    f"Abstract type '{completion.name}' must resolve to an Object type at "
                    f"runtime for field '{field.parent_type.name}.{field.name}'."
                )
            return _enqueue(self._work(selection), value, position)
        raise TypeError(f"unexpected completion {completion!r}")  # pragma: no cover

    def _work(self, selection: Selection) -> Work:
        """The work item for ``selection``: this level's for an inline selection, else the
        next level's."""
        queue = self._now if selection.inline else self._next
        work = queue.get(id(selection))
        if work is None:
            work = queue[id(selection)] = (selection, [], [], [])
        return work

    def _list(
        self, field: FieldPlan, completion: ListOf, value: Any, position: Position
    ) -> list[Any]:
        item = completion.item
        nullable = item.nullable
        out: list[Any] = []
        if type(item) is Leaf and item.fast == STRING and all(type(v) is str for v in value):
            return list(value)
        work = self._work(item.selection) if type(item) is Object else None
        for index, entry in enumerate(value):
            item_position: Position = (position, index, None, out, nullable)
            if work is not None and entry is not None and not isinstance(entry, Exception):
                # An object item (the common case): queued for its selection.
                out.append(_enqueue(work, entry, item_position))
                continue
            out.append(None)
            try:
                out[index] = self._complete(field, item, item_position, entry)
            except _Null as null:
                if not nullable:
                    raise
                self._null(item_position, null.error)
            except Exception as error:
                located = self._locate(error, field, item_position)
                if not nullable:
                    raise _Null(located) from None
                self._null(item_position, located)
        return out

    def _complete_edges(self, field: FieldPlan, work: Work) -> None:
        """Complete an ``EDGES`` field on every object of ``work``: each object's list of
        nodes (``field.attribute``) becomes its list of edges, each edge's node fields the
        node itself, as if the edges had been made and read (``batch_field``'s ``edges_over``)."""
        _selection, sources, dicts, positions = work
        key = field.key
        typename = field.parent_type.name
        completion = field.completion
        assert type(completion) is ListOf and type(completion.item) is Object
        nullable = completion.nullable
        edge_nullable = completion.item.nullable
        edge = completion.item.selection
        edge_type = edge.type_name
        node_fields = [f for f in edge.fields if f.how != TYPENAME]
        names = [f.key for f in edge.fields if f.how == TYPENAME]
        # The common shape, `edges { node { ... } }`, on its own path: one dict per edge,
        # its one key the node's, queued for the node's selection.
        only: tuple[str, Work, bool] | None = None
        if not names and len(node_fields) == 1:
            node_completion = node_fields[0].completion
            if type(node_completion) is Object:
                only_work = self._work(node_completion.selection)
                only = (node_fields[0].key, only_work, node_completion.nullable)
        for result, position, source in zip(dicts, positions, sources, strict=True):
            nodes = getattr(source, field.attribute)
            out: list[Any] = []
            result[key] = out
            at: Position = (position, key, typename, result, nullable)
            for index, node in enumerate(nodes):
                edge_dict: dict[str, Any] = {} if only is not None else edge.empty.copy()
                out.append(edge_dict)
                item: Position = (at, index, None, out, edge_nullable)
                if only is not None and node is not None:
                    node_key, node_work, node_nullable = only
                    edge_dict[node_key] = _enqueue(
                        node_work, node, (item, node_key, edge_type, edge_dict, node_nullable)
                    )
                    continue
                for name in names:
                    edge_dict[name] = edge_type
                for node_field in node_fields:
                    self._complete_field_at(
                        node_field, item, edge_dict, node_field.key, edge_type, node
                    )
