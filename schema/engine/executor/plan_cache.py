"""The plan cache: plans are kept per operation and per value of the variables that
``@skip``/``@include`` read (the only variables a plan depends on), so a repeated document is
planned once; an operation plans cannot express is remembered as such.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from graphql import GraphQLObjectType, OperationDefinitionNode, VariableNode
from graphql.language import Visitor, visit

from schema.engine.executor.plan import Selection, Unsupported
from schema.engine.executor.planning import plan_operation
from schema.engine.operation_memo import OperationMemo

if TYPE_CHECKING:
    from graphql.execution import Executor


def directive_variables(
    operation: OperationDefinitionNode, fragments: dict[str, Any]
) -> tuple[str, ...]:
    """The names of the variables that ``@skip``/``@include`` read in ``operation`` and the
    fragments: the plan depends on their values and on nothing else in the variables."""
    names: set[str] = set()

    class Finder(Visitor):
        def enter_directive(self, node: Any, *_: Any) -> None:
            if node.name.value in ("skip", "include"):
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)

    visit(operation, Finder())
    for fragment in fragments.values():
        visit(fragment.definition, Finder())
    return tuple(sorted(names))


class PlanCache:
    """Plans by operation (the parsed document's node, kept alive with its plan so its id is
    never reused) and by the values of its ``@skip``/``@include`` variables; LRU, at most
    ``size`` entries. Parsing is cached by document text (``ParsedDocuments``), so a
    repeated document arrives as the same node."""

    def __init__(self, size: int = 1024) -> None:
        self._plans: OperationMemo[Selection | None] = OperationMemo(
            size, directive_variables, _hashable
        )

    def get(self, executor: Executor, root_type: GraphQLObjectType) -> Selection | None:
        """The plan for ``executor``'s operation, built on first use; ``None`` when the
        operation is ``Unsupported`` (remembered too, so it is not re-planned)."""

        def build() -> Selection | None:
            try:
                return plan_operation(executor, root_type)
            except Unsupported:
                return None

        return self._plans.get(
            executor.operation, executor.fragments, executor.variable_values.coerced, build
        )


def _hashable(value: Any) -> Hashable:
    return value if isinstance(value, bool | None) else repr(value)
