"""The GraphQL object types a document selects: what its response is made of.

Walked once per document (``schema.engine.response_cache`` keeps the result) with
graphql-core's ``TypeInfo``, which follows fragments' and inline fragments' type conditions:
every field's type, unwrapped from lists and non-nulls. An interface or a union stands for
every type implementing it (``node(id:)`` may answer any node type), and a Relay connection
or edge for its nodes' type, selected or not: a connection's ``totalCount`` alone counts
rows of the nodes' table. Each field selected is named too, by its schema coordinate
(``User.postCount``): a field may read tables its type's values are not read from (a count
of another table's rows; ``schema.reads.tables_read.register_tables``).
Source: graphql-core docs, "Utilities" (``TypeInfo``, ``TypeInfoVisitor``) and "Language"
(``visit``); GraphQL Cursor Connections Specification (``edges``, ``node``); GraphQL
specification, "Schema Coordinates" (``Type.field``).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLNamedType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_abstract_type,
    is_object_type,
    visit,
)

#: The fields through which a connection (``edges``, ``nodes``) or an edge (``node``) reaches
#: the type of its rows.
ROW_FIELDS = ("edges", "nodes", "node")


class _FieldTypes(Visitor):
    """Collects the named type and the schema coordinate of every field the visit enters."""

    def __init__(
        self, type_info: TypeInfo, found: set[GraphQLNamedType], coordinates: set[str]
    ) -> None:
        super().__init__()
        self.type_info = type_info
        self.found = found
        self.coordinates = coordinates

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        field_type = self.type_info.get_type()
        if field_type is not None:
            self.found.add(get_named_type(field_type))
        parent = self.type_info.get_parent_type()
        if parent is not None:
            self.coordinates.add(f"{parent.name}.{node.name.value}")


def selected_types(schema: GraphQLSchema, document: DocumentNode) -> frozenset[str]:
    """The names of the object types (and interfaces and unions) a response to ``document``
    (validated against ``schema``) may hold values of, over all its operations and
    fragments, and the schema coordinates (``"Type.field"``) of the fields it selects."""
    found: set[GraphQLNamedType] = set()
    names: set[str] = set()
    type_info = TypeInfo(schema)
    visit(document, TypeInfoVisitor(type_info, _FieldTypes(type_info, found, names)))
    for named in found:
        _expand(schema, named, names)
    return frozenset(names)


def _expand(schema: GraphQLSchema, named: GraphQLNamedType, names: set[str]) -> None:
    if named.name in names:
        return
    if is_abstract_type(named):
        names.add(named.name)
        for possible in schema.get_possible_types(named):
            _expand(schema, possible, names)
    elif is_object_type(named):
        names.add(named.name)
        fields = named.fields
        for name in ROW_FIELDS:
            if name in fields:
                _expand(schema, get_named_type(fields[name].type), names)
