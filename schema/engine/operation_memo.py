"""Values remembered per operation and per the values of the variables they depend on.

Clients send the same few documents again and again, and the parse cache
(``ParsedDocuments``) hands a repeated document back as the same nodes, so what is derived
from an operation alone (an execution plan, a cost measure) can be kept with its node. Some
of it also depends on a few variables (``@skip``/``@include`` conditions, page sizes): those
variables' names are found once per operation, and their values become part of the key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from graphql import OperationDefinitionNode

T = TypeVar("T")


class OperationMemo(Generic[T]):
    """An LRU of at most ``size`` values keyed by operation node, ``extra`` and
    ``value_of`` of each variable ``variables_of(operation, fragments)`` names.

    Nodes are kept alive with their values, so a node's ``id`` is never reused for another
    while its entry exists.
    """

    def __init__(
        self,
        size: int,
        variables_of: Callable[[OperationDefinitionNode, Any], tuple[str, ...]],
        value_of: Callable[[Any], Hashable],
    ) -> None:
        self._size = size
        self._variables_of = variables_of
        self._value_of = value_of
        self._names: dict[int, tuple[OperationDefinitionNode, tuple[str, ...]]] = {}
        self._values: OrderedDict[Hashable, tuple[OperationDefinitionNode, T]] = OrderedDict()

    def variables(self, operation: OperationDefinitionNode, fragments: Any) -> tuple[str, ...]:
        """The names of the variables the values for ``operation`` depend on (found once per
        operation): with none, ``get`` needs no variables at all."""
        names = self._names.get(id(operation))
        if names is None or names[0] is not operation:
            if len(self._names) >= self._size:
                self._names.clear()
            names = (operation, self._variables_of(operation, fragments))
            self._names[id(operation)] = names
        return names[1]

    def get(
        self,
        operation: OperationDefinitionNode,
        fragments: Any,
        variables: Mapping[str, Any],
        build: Callable[[], T],
        *extra: Hashable,
    ) -> T:
        """The value for ``operation`` with ``variables`` (coerced) and ``extra``, made by
        ``build`` on first use (whatever it returns, ``None`` included, is remembered)."""
        names = self.variables(operation, fragments)
        key = (id(operation), extra, tuple(self._value_of(variables.get(n)) for n in names))
        entry = self._values.get(key)
        if entry is not None and entry[0] is operation:
            self._values.move_to_end(key)
            return entry[1]
        value = build()
        self._values[key] = (operation, value)
        if len(self._values) > self._size:
            self._values.popitem(last=False)
        return value
