"""Planning: building the plan of a query operation from its document, once.

The fields of each selection set are collected as graphql-core collects them, and each
field's way of getting and completing its value is decided from the schema: an attribute, a
batch resolver (``schema.reads.batch_fields``), edges completed from their connection's nodes;
what each root or batch field's selection reads is worked out for column pruning and folding
(``schema.reads.pruning``, ``schema.reads.folding``).

Anything a plan cannot express raises ``Unsupported`` while planning, and the operation runs
on graphql-core's own executor instead: introspection, fields whose resolvers have no batch
resolver, field extensions, fragment arguments.

Source: GraphQL specification, "Executing Selection Sets"
(https://spec.graphql.org/October2021/#sec-Executing-Selection-Sets).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    is_specified_scalar_type,
)
from graphql.execution.collect_fields import FieldDetails, collect_fields, collect_subfields

from schema.engine.executor.plan import (
    ATTRIBUTE,
    BATCH,
    BOOLEAN,
    DEFINITION,
    EDGES,
    OTHER,
    ROOT,
    STRING,
    TYPENAME,
    Abstract,
    Completion,
    FieldPlan,
    Leaf,
    ListOf,
    Object,
    Selection,
    Unsupported,
)
from schema.reads.batch_fields import batch_resolver_of, edges_of
from schema.reads.folding import is_foldable
from schema.reads.pruning import Reads, is_prunable_type

if TYPE_CHECKING:
    from graphql.execution import Executor


def plan_operation(executor: Executor, root_type: GraphQLObjectType) -> Selection:
    """The plan of ``executor``'s (query) operation, whose root type is ``root_type``.

    Raises ``Unsupported`` (see the module docstring).
    """
    collected = collect_fields(
        executor.schema,
        executor.fragments,
        executor.variable_values,
        root_type,
        executor.operation,
        executor.hide_suggestions,
    )
    return _selection(executor, root_type, collected.grouped_field_set, root=True)


def _selection(
    executor: Executor,
    parent_type: GraphQLObjectType,
    grouped: dict[str, list[FieldDetails]],
    *,
    root: bool = False,
) -> Selection:
    fields: list[FieldPlan] = []
    for key, details in grouped.items():
        node = details[0].node
        name = node.name.value
        if any(d.fragment_variable_values is not None or d.defer_usage for d in details):
            raise Unsupported("fragment arguments or @defer")
        nodes = [d.node for d in details]
        if name == "__typename":
            fields.append(
                FieldPlan(key, name, parent_type, _TYPENAME_FIELD, details, nodes, TYPENAME)
            )
            continue
        if name.startswith("__"):
            raise Unsupported("introspection")
        definition = parent_type.fields.get(name)
        if definition is None:  # graphql-core skips unknown fields (validation forbids them)
            continue
        plan = FieldPlan(key, name, parent_type, definition, details, nodes, ROOT)
        strawberry_field = definition.extensions.get(DEFINITION)
        plan.strawberry_field = strawberry_field
        if not root:
            _how_nested(plan, strawberry_field)
        plan.completion = _completion(executor, definition.type, details)
        if plan.how == BATCH:
            _edges_from_nodes(plan)
        if plan.how in (ROOT, BATCH):
            plan.reads = _reads(plan.completion)
        fields.append(plan)
    inline = not root and all(
        f.how in (ATTRIBUTE, TYPENAME, EDGES) or (f.how == BATCH and not f.batch_is_async)
        for f in fields
    )
    keys = tuple(f.key for f in fields)
    return Selection(parent_type.name, fields, keys, inline, dict.fromkeys(keys))


def _how_nested(plan: FieldPlan, strawberry_field: Any) -> None:
    if strawberry_field is None or strawberry_field.extensions:
        raise Unsupported(f"{plan.parent_type.name}.{plan.name} is not a plain Strawberry field")
    resolver = strawberry_field.base_resolver
    if resolver is None:
        plan.how = ATTRIBUTE
        plan.attribute = strawberry_field.python_name
        return
    batch = batch_resolver_of(resolver.wrapped_func)
    if batch is None:
        raise Unsupported(f"{plan.parent_type.name}.{plan.name} has no batch resolver")
    plan.how = BATCH
    plan.batch = batch
    plan.batch_is_async = inspect.iscoroutinefunction(batch)


def _edges_from_nodes(plan: FieldPlan) -> None:
    """Plan an ``edges_over`` field (``fields.batch_field``) as ``EDGES`` when its selection
    on the edge reads only the edge's node (under any aliases) and ``__typename``;
    ``attribute`` is then the parent's list of nodes."""
    assert plan.batch is not None
    declared = edges_of(plan.batch)
    completion = plan.completion
    if declared is None or type(completion) is not ListOf or type(completion.item) is not Object:
        return
    nodes, node = declared
    edge = completion.item.selection
    if all(f.how == TYPENAME or (f.how == ATTRIBUTE and f.attribute == node) for f in edge.fields):
        plan.how = EDGES
        plan.attribute = nodes


def _reads(completion: Completion) -> Reads:
    """The fields ``completion``'s selections read on each entity type with prunable columns
    (``schema.reads.pruning``): down through the types between (a connection, its edges), stopping
    at the entity (its own relationship fields are batch fields with reads of their own);
    and the foldable batch fields among those (``schema.reads.folding``), each with its own reads,
    unless it is selected twice with different ones."""
    found: dict[str, set[str]] = {}
    folded: dict[str, Reads | None] = {}

    def complete(value: Completion | None) -> None:
        kind = type(value)
        if kind is ListOf:
            complete(value.item)  # type: ignore[union-attr]
        elif kind is Object:
            select(value.selection)  # type: ignore[union-attr]
        elif kind is Abstract:
            for selection in value.by_class.values():  # type: ignore[union-attr]
                select(selection)

    def select(selection: Selection) -> None:
        if is_prunable_type(selection.type_name):
            names = found.setdefault(selection.type_name, set())
            for field in selection.fields:
                if field.strawberry_field is None:
                    continue
                name = field.strawberry_field.python_name
                names.add(name)
                reads = field.reads
                if (
                    field.how == BATCH
                    and reads is not None
                    and is_foldable(selection.type_name, name)
                ):
                    joined = f"{selection.type_name}.{name}"
                    seen = folded.setdefault(joined, reads)
                    if seen is not None and seen != reads:
                        folded[joined] = None  # two selections: one statement serves one
            return
        for field in selection.fields:
            complete(field.completion)

    complete(completion)
    return Reads(
        {name: frozenset(fields) for name, fields in found.items()},
        {name: reads for name, reads in folded.items() if reads is not None},
    )


def _completion(
    executor: Executor, graphql_type: GraphQLOutputType, details: list[FieldDetails]
) -> Completion:
    nullable = True
    if is_non_null_type(graphql_type):
        nullable = False
        graphql_type = graphql_type.of_type
    if is_list_type(graphql_type):
        return ListOf(nullable, _completion(executor, graphql_type.of_type, details))
    if is_leaf_type(graphql_type):
        # By name: Strawberry builds its own instances of the specified scalars.
        name = graphql_type.name
        specified = is_specified_scalar_type(graphql_type)
        fast = (
            STRING
            if specified and name in ("String", "ID")
            else BOOLEAN
            if specified and name == "Boolean"
            else OTHER
        )
        return Leaf(nullable, graphql_type.coerce_output_value, fast)
    if is_object_type(graphql_type):
        return Object(nullable, _subselection(executor, graphql_type, details))
    if is_abstract_type(graphql_type):
        by_class: dict[type, Selection] = {}
        for possible in executor.schema.get_possible_types(graphql_type):
            definition = possible.extensions.get(DEFINITION)
            if definition is None or getattr(definition, "is_graphql_generic", False):
                raise Unsupported(f"{possible.name} has no single Python class")
            by_class[definition.origin] = _subselection(executor, possible, details)
        return Abstract(nullable, graphql_type.name, by_class)
    raise Unsupported(f"unexpected output type {graphql_type}")


def _subselection(
    executor: Executor, object_type: GraphQLObjectType, details: list[FieldDetails]
) -> Selection:
    collected = collect_subfields(
        executor.schema,
        executor.fragments,
        executor.variable_values,
        executor.operation,
        object_type,
        details,
        executor.hide_suggestions,
    )
    return _selection(executor, object_type, collected.grouped_field_set)


_TYPENAME_FIELD = GraphQLField(GraphQLNonNull(GraphQLString))
