"""Running a plan breadth-first: one batch call per field per level, no awaitable per object.

The root fields are resolved as graphql-core resolves them (once each, concurrently). Then,
level by level, every selection set is applied to all the objects that reached it at once:
attributes are read in a loop, ``__typename`` is a constant, and a field with a batch
resolver is resolved for all its parents in one call (the batches of one level run
concurrently, and the session lock serialises their statements). Values are completed into
plain dicts and lists, the response shape; an object queues its selection for the next level,
unless that selection has no batch field (a connection's edges, an edge's node field): then it
is completed within the level, column by column all the same. A connection's ``edges`` read
only for their nodes are completed from its ``nodes`` (``fields.batch_field``), one dict per
edge and no edge object. While a root or batch field resolves, ``schema.reads.pruning.SELECTED``
holds what its selection reads, so its statements leave out the columns nothing reads.

Errors follow the specification's "Handling Field Errors": a field error is located at the
field's path; when the field is non-null, null propagates to the nearest nullable ancestor
(list items included), and errors under a position that is already null are dropped, as
graphql-core's ``CollectedErrors`` does. Positions are linked tuples
``(parent, key, typename, container, nullable)``, so paths are built only for errors.

Source: GraphQL specification, "Value Completion" and "Handling Field Errors"
(https://spec.graphql.org/October2021/#sec-Handling-Field-Errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    ValueNode,
    VariableNode,
    located_error,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path
from strawberry.types.arguments import convert_arguments

from schema.engine.executor.batch import ALONE
from schema.engine.executor.plan import (
    ATTRIBUTE,
    BATCH,
    BOOLEAN,
    EDGES,
    STRING,
    TYPENAME,
    Abstract,
    FieldPlan,
    Leaf,
    ListOf,
    Object,
    Selection,
)
from schema.reads.pruning import SELECTED

if TYPE_CHECKING:
    from graphql.execution import Executor

#: A value's place in the response: (parent position, key, parent type name or None for a
#: list index, the dict or list holding it, whether it may be null).
Position = tuple[Any, str | int, str | None, Any, bool]

#: A selection applied to objects at one level: (selection, sources, result dicts, positions).
Work = tuple[Selection, list[Any], list[dict[str, Any]], list[Position]]


class _Null(Exception):
    """A non-null value position completed to null; carries the located error."""

    def __init__(self, error: GraphQLError) -> None:
        self.error = error


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


#: Types of argument values a plan may keep (immutable: shared by every operation).
_CONSTANTS = frozenset({int, float, str, bool, type(None)})


def _has_variables(value: ValueNode) -> bool:
    """True when the argument value ``value`` is, or holds, a variable."""
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_has_variables(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_has_variables(field.value) for field in value.fields)
    return False


async def _together(coroutines: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """``asyncio.gather`` of ``coroutines``, each started eagerly (it runs at once, up to its
    first wait): batches served from what is already loaded (a folded field's) finish with
    no task switch at all. Source: Python docs, ``asyncio.Task`` (``eager_start``, 3.12)."""
    loop = asyncio.get_running_loop()
    tasks = [asyncio.Task(coroutine, loop=loop, eager_start=True) for coroutine in coroutines]
    if all(task.done() for task in tasks):
        return [task.result() for task in tasks]
    return await asyncio.gather(*tasks)


def _enqueue(work: Work, value: Any, position: Position) -> dict[str, Any]:
    """Queue object ``value`` at ``position`` for ``work``'s selection at the next level;
    returns its (still empty) response dict, keys in response order."""
    result = work[0].empty.copy()
    work[1].append(value)
    work[2].append(result)
    work[3].append(position)
    return result


class BreadthFirst:
    """One execution of a plan for a graphql-core ``Executor`` (its variables, context and
    error collection). ``run`` returns the response's ``data``."""

    def __init__(self, executor: Executor, plan: Selection) -> None:
        self.executor = executor
        self.plan = plan
        self.context = executor.context_value
        self.errors = executor.collected_errors
        self.data: dict[str, Any] | None = plan.empty.copy()
        # Strawberry's schema: its scalar registry and config convert batch arguments.
        self._strawberry = executor.schema._strawberry_schema  # type: ignore[attr-defined]
        #: The next level's work, one item per selection (a selection sits at one place in
        #: the plan, so all its objects of a level gather in one batch).
        self._next: dict[int, Work] = {}
        #: Work for inline selections (no batch field): done before the level ends.
        self._now: dict[int, Work] = {}
        #: The level's field errors, with the positions they null (``_settle``).
        self._nulls: list[tuple[Position | None, GraphQLError]] = []

    async def run(self) -> dict[str, Any] | None:
        """Execute the plan. Never raises for a field error (they are collected)."""
        data = self.data
        assert data is not None
        roots = [f for f in self.plan.fields if f.how != TYPENAME]
        if len(roots) == 1:  # the common case: no task to run it in, no batch to wait for
            alone = ALONE.set(True)
            try:
                values = [await self._resolve_root(roots[0])]
            finally:
                ALONE.reset(alone)
        else:
            values = await _together([self._resolve_root(f) for f in roots])
        for field in self.plan.fields:
            if field.how == TYPENAME:
                data[field.key] = self.plan.type_name
        for field, value in zip(roots, values, strict=True):
            self._complete_field_at(field, None, data, field.key, self.plan.type_name, value)
        self._complete_inline()
        self._settle()
        level = self._take_next()
        while level and self.data is not None:
            await self._run_level(level)
            level = self._take_next()
        return self.data

    def _take_next(self) -> list[Work]:
        level, self._next = self._next, {}
        return list(level.values())

    async def _resolve_root(self, field: FieldPlan) -> Any:
        executor = self.executor
        path = Path(None, field.key, self.plan.type_name)
        info = executor.build_resolve_info(field.definition, field.nodes, field.parent_type, path)
        # What the field reads, while it resolves (in a task of its own, or inline).
        selected = SELECTED.set(field.reads)
        try:
            args = self._arguments(field)
            result = field.definition.resolve(executor.root_value, info, **args)  # type: ignore[misc]
            if executor.is_awaitable(result):
                result = await result
            return result
        except Exception as error:
            return error
        finally:
            SELECTED.reset(selected)

    def _arguments(self, field: FieldPlan) -> dict[str, Any]:
        """The field's argument values (graphql-core's ``get_argument_values``): kept in the
        plan when they can differ in no operation of it, for callers that only read them."""
        if not (field.definition.args or field.nodes[0].arguments):
            return {}
        if field.constant_arguments is not None:
            return field.constant_arguments
        first = field.details[0]
        values = get_argument_values(
            field.definition,
            first.node,
            self.executor.variable_values,
            first.fragment_variable_values,
            self.executor.hide_suggestions,
        )
        if (
            first.fragment_variable_values is None
            and not any(_has_variables(argument.value) for argument in first.node.arguments or ())
            and all(type(value) in _CONSTANTS for value in values.values())
        ):
            field.constant_arguments = values
        return values

    async def _run_level(self, level: list[Work]) -> None:
        pending: list[tuple[FieldPlan, Work, Any]] = []
        for work in level:
            for field in self._run_attributes(work):
                pending.append((field, work, self._batch(field, work[1])))
        self._complete_inline()
        if pending:
            if len(pending) == 1:
                outcomes = [await pending[0][2]]
            else:
                outcomes = await _together([p[2] for p in pending])
            for (field, work, _), values in zip(pending, outcomes, strict=True):
                self._complete_column(field, work, values)
            self._complete_inline()
        self._settle()

    def _run_attributes(self, work: Work) -> list[FieldPlan]:
        """Complete ``work``'s attribute and ``__typename`` fields; returns its batch fields."""
        selection, sources, dicts, _ = work
        batches: list[FieldPlan] = []
        for field in selection.fields:
            how = field.how
            if how == ATTRIBUTE:
                attribute = field.attribute
                self._complete_column(
                    field, work, [getattr(source, attribute) for source in sources]
                )
            elif how == TYPENAME:
                for result in dicts:
                    result[field.key] = selection.type_name
            elif how == BATCH:
                if field.batch_is_async:
                    batches.append(field)
                else:  # no I/O (cursors, global ids): at once, as an attribute
                    self._complete_column(field, work, self._batch_now(field, sources))
            elif how == EDGES:
                self._complete_edges(field, work)
        return batches

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

    def _complete_inline(self) -> None:
        """Complete the objects queued for inline selections, and those their attributes
        reach in turn, until only batch work (the next level's) is left."""
        while self._now:
            now, self._now = self._now, {}
            for work in now.values():
                self._run_attributes(work)

    async def _batch(self, field: FieldPlan, sources: list[Any]) -> list[Any]:
        """The field's values for all ``sources``; a failure of the whole batch becomes that
        error for every source."""
        # The statements the batch builds read only what its selection uses. The batch may
        # run in the caller's task (a level's only batch), so the value is set back after.
        selected = SELECTED.set(field.reads)
        try:
            return list(await self._call_batch(field, sources))
        except Exception as error:
            return [error] * len(sources)
        finally:
            SELECTED.reset(selected)

    def _batch_now(self, field: FieldPlan, sources: list[Any]) -> list[Any]:
        """``_batch`` for a synchronous batch resolver."""
        try:
            return list(self._call_batch(field, sources))
        except Exception as error:
            return [error] * len(sources)

    def _call_batch(self, field: FieldPlan, sources: list[Any]) -> Any:
        """The batch resolver's result for ``sources`` (an awaitable for an async one)."""
        raw = self._arguments(field)
        kwargs = (
            convert_arguments(
                raw,
                field.strawberry_field.arguments,
                scalar_registry=self._strawberry.schema_converter.scalar_registry,
                config=self._strawberry.config,
            )
            if raw
            else {}
        )
        assert field.batch is not None
        return field.batch(self.context, sources, **kwargs)

    # -- completion -------------------------------------------------------------------------

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

    # -- errors -----------------------------------------------------------------------------

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
