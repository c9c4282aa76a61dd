"""Running a plan breadth-first: one batch call per field per level, no awaitable per object.

The root fields are resolved as graphql-core resolves them (once each, concurrently). Then,
level by level, every selection set is applied to all the objects that reached it at once:
attributes are read in a loop, ``__typename`` is a constant, and a field with a batch
resolver is resolved for all its parents in one call (the batches of one level run
concurrently, and the session lock serialises their statements). Their values are completed
into plain dicts and lists, the response shape (``completion``); an object queues its
selection for the next level, unless that selection has no batch field (a connection's edges,
an edge's node field): then it is completed within the level, column by column all the same.
While a root or batch field resolves, ``schema.reads.pruning.SELECTED`` holds what its
selection reads, so its statements leave out the columns nothing reads. A level's field
errors are applied when it ends (``nulls``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from graphql import ListValueNode, ObjectValueNode, ValueNode, VariableNode
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path
from strawberry.types.arguments import convert_arguments

from schema.engine.executor.completion import Completer, Work
from schema.engine.executor.plan import ATTRIBUTE, BATCH, EDGES, TYPENAME, FieldPlan, Selection
from schema.reads.batch import ALONE
from schema.reads.pruning import SELECTED

if TYPE_CHECKING:
    from graphql.execution import Executor

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


class BreadthFirst(Completer):
    """One execution of a plan for a graphql-core ``Executor`` (its variables, context and
    error collection). ``run`` returns the response's ``data``."""

    def __init__(self, executor: Executor, plan: Selection) -> None:
        self.executor = executor
        self.plan = plan
        self.context = executor.context_value
        self.errors = executor.collected_errors
        self.data = plan.empty.copy()
        # Strawberry's schema: its scalar registry and config convert batch arguments.
        self._strawberry = executor.schema._strawberry_schema  # type: ignore[attr-defined]
        # The work queues (``Completer``) and the level's field errors (``NullPropagation``).
        self._next = {}
        self._now = {}
        self._nulls = []

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
