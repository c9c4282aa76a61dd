"""How big an operation is: nesting depth, aliases, and the rows it may ask for.

The cost is an estimate of rows read, made from the document before anything runs: a field
with ``first``/``last`` reads that many rows for each row of its parent (the page size when
neither is given), a list without paging arguments a small fixed number, and the estimate
multiplies down the nesting. So ``users(first: 100) { posts(first: 100) { comments(first:
100) { body } } }`` costs 100 + 100 x 100 + 100 x 100 x 100 = 1,010,100 rows, however short
its text. Introspection fields (``__schema``, ``__type``, ``__typename``) are not measured.
Source: GitHub's GraphQL API, "Resource limitations" (node limits multiplied through
connections); graphql-cost-analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    is_list_type,
    value_from_ast,
    visit,
)

#: Rows assumed for a list without paging arguments (a post's tags: at most 10).
UNPAGED_LIST_ROWS = 10
#: Field selections (fragments expanded) after which measuring stops: a document whose
#: fragments spread into more fields than this is too big whatever the limits say.
MAX_FIELDS_MEASURED = 100_000


@dataclass
class Measure:
    """What ``measure`` found: the deepest field nesting, the aliases used, the estimated
    rows, and whether the fragments expanded past ``MAX_FIELDS_MEASURED`` (then the other
    numbers are partial)."""

    depth: int = 0
    aliases: int = 0
    cost: int = 0
    fields: int = 0
    truncated: bool = False


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    *,
    default_page_size: int,
    max_page_size: int,
) -> Measure:
    """Measure ``operation`` (of a validated document) with its raw ``variables``."""
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    found = Measure()
    walker = _Walker(found, schema, fragments, variables, default_page_size, max_page_size)
    if root is not None:
        walker.walk(operation.selection_set, root, rows=1, depth=1)
    return found


@dataclass
class _Walker:
    found: Measure
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    default_page_size: int
    max_page_size: int

    def walk(self, selections: SelectionSetNode, parent: Any, rows: int, depth: int) -> None:
        for node in selections.selections:
            if self.found.truncated:
                return
            if isinstance(node, FieldNode):
                self.field(node, parent, rows, depth)
            elif isinstance(node, InlineFragmentNode):
                self.walk(node.selection_set, self._narrowed(node, parent), rows, depth)
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None:
                    self.walk(fragment.selection_set, self._narrowed(fragment, parent), rows, depth)

    def _narrowed(self, fragment: InlineFragmentNode | FragmentDefinitionNode, parent: Any) -> Any:
        """The type a fragment's fields belong to: its type condition (``... on User`` under
        ``node`` or a payload union), else the parent's."""
        condition = fragment.type_condition
        if condition is None:
            return parent
        return self.schema.get_type(condition.name.value) or parent

    def field(self, node: FieldNode, parent: Any, rows: int, depth: int) -> None:
        name = node.name.value
        if name.startswith("__"):
            return
        self.found.fields += 1
        if self.found.fields > MAX_FIELDS_MEASURED:
            self.found.truncated = True
            return
        if node.alias is not None:
            self.found.aliases += 1
        self.found.depth = max(self.found.depth, depth)
        definition = self._definition(parent, name)
        if definition is None:
            return  # a union's members are reached through fragments
        per_parent = self.rows_per_parent(definition, node, parent)
        if per_parent is not None:
            rows *= per_parent
            self.found.cost += rows
        if node.selection_set is not None:
            child = get_named_type(definition.type)
            self.walk(node.selection_set, child, rows, depth + 1)

    @staticmethod
    def _definition(parent: Any, name: str) -> GraphQLField | None:
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return parent.fields.get(name)
        return None

    def rows_per_parent(self, definition: GraphQLField, node: FieldNode, parent: Any) -> int | None:
        """Rows the field reads for each parent row; ``None`` for a field that reads no rows
        of its own (a scalar, one object, or the edges of a page already counted)."""
        arguments = self._arguments(definition, node)
        if "first" in definition.args or "last" in definition.args:
            sizes = [arguments.get("first"), arguments.get("last")]
            given = [s for s in sizes if isinstance(s, int)]
            return max(given) if given else self.default_page_size
        if not is_list_type(get_nullable_type(definition.type)):
            return None
        if getattr(parent, "name", "").endswith("Connection"):
            return None  # edges / nodes: the connection field counted its page
        ids = arguments.get("ids")
        if isinstance(ids, list):
            return len(ids)
        return self.max_page_size if "ids" in definition.args else UNPAGED_LIST_ROWS

    def _arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for argument in node.arguments or ():
            arg = definition.args.get(argument.name.value)
            if arg is not None:
                value = value_from_ast(argument.value, arg.type, self.variables)
                values[argument.name.value] = value
        return values


#: The arguments whose values the measure reads (``rows_per_parent``).
SIZING_ARGUMENTS = frozenset({"first", "last", "ids"})


def sizing_variables(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[str, ...]:
    """The variables ``measure`` depends on: those inside a ``first``, ``last`` or ``ids``
    argument of ``operation`` or its fragments. Everything else it measures is the
    document's own shape, so measures of one operation with equal values of these agree."""
    names: set[str] = set()

    class Finder(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            if node.name.value in SIZING_ARGUMENTS:
                visit(node.value, Collector())

    class Collector(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            names.add(node.name.value)

    visit(operation, Finder())
    for fragment in fragments.values():
        visit(fragment, Finder())
    return tuple(sorted(names))
