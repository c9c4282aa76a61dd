"""What a withdrawn mutation field reads as: its selection of ``RolledBack``.

A mutation field that succeeded before another field of its operation failed has already been
completed by graphql-core when the operation is rolled back, so its payload is replaced
afterwards by the value the field would have had, had it returned ``RolledBack``: the client's
own selection (``__typename``, ``... on RolledBack``, ``... on MutationError``), honouring
``@skip``/``@include``. Reporting it in ``data`` rather than as an entry in ``errors`` keeps a
typed error in another field readable by clients that reject any result with ``errors``
(Apollo Client's default ``errorPolicy: "none"``).
Source: GraphQL spec, "CollectFields" (the selection rules followed here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    VariableNode,
)

#: Type conditions a fragment may have and still apply to a ``RolledBack`` value.
ROLLED_BACK_TYPES = frozenset({"RolledBack", "MutationError"})


def rolled_back_value(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    response_key: str,
    message: str,
) -> dict[str, Any]:
    """The completed value of the root mutation field at ``response_key`` had it resolved to
    ``RolledBack(message=message)``: a dict of the selected ``__typename`` and ``message``
    entries, under their aliases, in selection order (``{}`` when the client selected
    neither). ``document`` must hold the (validated) operation that ran."""
    operation = _operation(document, operation_name)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Walk(fragments, variables or {}, operation)
    value: dict[str, Any] = {}
    for field in walk.fields(operation.selection_set.selections, None):
        if _key(field) != response_key or field.selection_set is None:
            continue
        for child in walk.fields(field.selection_set.selections, ROLLED_BACK_TYPES):
            name = child.name.value
            if name == "__typename":
                value[_key(child)] = "RolledBack"
            elif name == "message":
                value[_key(child)] = message
    return value


class _Walk:
    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        operation: OperationDefinitionNode,
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }

    def fields(
        self, selections: Iterable[SelectionNode], types: frozenset[str] | None
    ) -> Iterable[FieldNode]:
        """The field nodes of ``selections`` that apply to an object of one of ``types``
        (``None``: every fragment applies, as at the root)."""
        for selection in selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if types is None or condition is None or condition.name.value in types:
                    yield from self.fields(selection.selection_set.selections, types)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None and (
                    types is None or fragment.type_condition.name.value in types
                ):
                    yield from self.fields(fragment.selection_set.selections, types)

    def _included(self, selection: SelectionNode) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            argument = next((a for a in directive.arguments or () if a.name.value == "if"), None)
            condition = self._boolean(argument.value) if argument is not None else False
            if (name == "skip") == condition:
                return False
        return True

    def _boolean(self, node: Any) -> bool:
        if isinstance(node, BooleanValueNode):
            return node.value
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self.variables:
                return bool(self.variables[name])
            default = self.defaults.get(name)
            return isinstance(default, BooleanValueNode) and default.value
        return False


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0]
    return next(o for o in operations if o.name is not None and o.name.value == name)


def _key(field: FieldNode) -> str:
    return field.alias.value if field.alias else field.name.value
