"""Execution plans: what the breadth-first executor does for one (document, operation).

A plan is the operation's selection tree with every decision graphql-core would take per
object taken once: which fields each selection set collects (fragments, inline fragments and
type conditions merged, ``@skip``/``@include`` applied), how each field gets its value (an
attribute, ``__typename``, a root resolver, a batch resolver) and how its value is completed
(leaf coercion, lists, objects, abstract types, nullability). This module is the plan's
shape; ``planning`` builds one, ``plan_cache`` keeps them, ``run`` executes one.

Source: GraphQL specification, "Executing Selection Sets" and "Value Completion"
(https://spec.graphql.org/October2021/#sec-Executing-Selection-Sets); the plan idea follows
graphql-jit and Grafast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from graphql import GraphQLField, GraphQLObjectType
from graphql.execution.collect_fields import FieldDetails
from graphql.language import FieldNode

from schema.reads.batch_fields import BatchResolver
from schema.reads.pruning import Reads

DEFINITION = "strawberry-definition"  # Strawberry's back-reference on graphql-core types


class Unsupported(Exception):
    """The operation needs something plans do not express: run it on graphql-core."""


# How a field gets its value. EDGES: a batch field declared ``edges_over`` whose selection
# reads only each edge's node (and ``__typename``): completed from the parent's nodes.
ATTRIBUTE, TYPENAME, ROOT, BATCH, EDGES = range(5)
# Fast paths for leaf coercion: values that are already what the scalar serialises to.
STRING, BOOLEAN, OTHER = range(3)


@dataclass(slots=True)
class Leaf:
    """A scalar or enum: coerced with the type's ``coerce_output_value``."""

    nullable: bool
    coerce: Callable[[Any], Any]
    fast: int


@dataclass(slots=True)
class ListOf:
    nullable: bool
    item: Completion


@dataclass(slots=True)
class Object:
    nullable: bool
    selection: Selection


@dataclass(slots=True)
class Abstract:
    """An interface or union: the runtime type is the value's class (Strawberry types)."""

    nullable: bool
    name: str
    by_class: dict[type, Selection]


Completion = Leaf | ListOf | Object | Abstract


@dataclass(slots=True)
class FieldPlan:
    """One response key of a selection set."""

    key: str
    name: str
    parent_type: GraphQLObjectType
    definition: GraphQLField
    details: list[FieldDetails]
    nodes: list[FieldNode]
    how: int
    attribute: str = ""
    batch: BatchResolver | None = None
    batch_is_async: bool = False
    strawberry_field: Any = None
    completion: Completion | None = None
    #: For a root or batch field: what its selection reads on the entity types below it
    #: (``schema.reads.pruning``), set while it resolves so its statements read no more.
    reads: Reads | None = None
    #: The field's argument values, once known to be the same for every operation of this
    #: plan (literals only, each a scalar): ``executor.run`` fills it on first use.
    constant_arguments: dict[str, Any] | None = None


@dataclass(slots=True)
class Selection:
    """The fields collected for one object type at one place in the operation; ``keys`` in
    response order."""

    type_name: str
    fields: list[FieldPlan]
    keys: tuple[str, ...]
    #: No field needs an awaited batch call (attributes, ``__typename``, edges from nodes,
    #: synchronous batch resolvers such as cursors): an object reaching this selection is
    #: completed at once, in the level that reached it, as graphql-core would.
    inline: bool = False
    #: ``keys`` mapped to ``None``: an object's response dict starts as a copy of it (a
    #: small dict's ``copy`` is several times cheaper than ``dict.fromkeys``). Never mutated.
    empty: dict[str, None] = dataclass_field(default_factory=dict)
