"""Which tables a GraphQL object type's values are read from: what a cached response that
selects the type depends on (``schema.engine.response_cache``).

Each node type is registered by the domain defining it, through ``register_node``
(``schema.relay.node``): its model's table and the tables its visibility is decided by
(``schema.reads.visibility.decided_by``). A field that reads further tables (a count of
another table's rows, say: ``User.postCount``) names them with ``register_tables`` under its
schema coordinate, ``"Type.field"``, which ``schema.engine.selected_types`` reports for each
field a document selects: a response without that field does not depend on them. A type
registered nowhere is read from no table (connections, edges, ``PageInfo``, payloads): a
response selecting only such types depends on no commit.
"""

from __future__ import annotations

from typing import Any

#: GraphQL object type name, or a field's schema coordinate (``"User.postCount"``) -> the
#: names of the tables its values are read from.
TABLES: dict[str, frozenset[str]] = {}


def register_tables(type_name: str, *tables: Any) -> None:
    """Record that values of ``type_name`` (an object type's name, or a field's schema
    coordinate, ``"Type.field"``) are read from ``tables`` (SQLAlchemy ``Table`` objects, or
    mapped classes), besides those registered already."""
    names = {str(getattr(table, "__table__", table).name) for table in tables}
    TABLES[type_name] = TABLES.get(type_name, frozenset()) | names


def tables_of(type_names: Any) -> frozenset[str]:
    """The tables the values of every type in ``type_names`` (GraphQL type names and
    fields' schema coordinates) are read from."""
    found: set[str] = set()
    for name in type_names:
        found |= TABLES.get(name, frozenset())
    return frozenset(found)
