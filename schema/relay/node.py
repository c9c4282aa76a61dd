"""Relay global object identification: the ``Node`` interface and global IDs.

A global ID is base64 of ``"<TypeName>:<primary key>"`` (the convention of graphql-relay-js and
Strawberry), so ``node(id:)`` can find any object from its ID alone.
Source: GraphQL Global Object Identification Specification, https://relay.dev/graphql/objectidentification.htm
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NewType

import strawberry

from schema.errors import BadUserInput
from schema.reads.batch_fields import batch_field
from schema.reads.tables_read import register_tables
from schema.reads.visibility import decided_by
from schema.validation import MAX_PK, echo


def _parse_bigint(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("BigInt takes an integer or a string of digits")
    number = int(value)
    if not -(2**63) <= number <= MAX_PK:
        raise ValueError("BigInt is out of the 64-bit range")
    return number


BigInt = NewType("BigInt", int)

#: How ``BigInt`` crosses the wire; registered in the schema's ``StrawberryConfig.scalar_map``.
BIGINT_SCALAR = strawberry.scalar(
    name="BigInt",
    serialize=str,
    parse_value=_parse_bigint,
    description="A 64-bit integer, serialised as a string (JSON numbers lose precision "
    "past 2^53 in JavaScript).",
)

#: The ``databaseId`` field every node type has: the row's primary key.
DATABASE_ID = strawberry.field(
    description="The row's primary key in the database (the `id` is the global ID)."
)


@strawberry.interface(description="An object with a globally unique ID.")
class Node:
    """Every node type has ``database_id`` (its row's primary key); the global ID is made
    from it and the type's GraphQL name only when selected."""

    @batch_field(description="The object's global ID.")
    def id(_context: Any, nodes: list[Any]) -> list[strawberry.ID]:
        return [to_global_id(type(n).__strawberry_definition__.name, n.database_id) for n in nodes]


#: ``new_node(cls)``: an instance of the Strawberry type ``cls`` with no field set yet, for a
#: ``from_row`` that assigns every field itself. A nested read makes thousands of nodes, and
#: this costs half of calling the dataclass ``__init__`` with keywords (which only assigns
#: the fields too: node types have no ``__post_init__``). ``tests/test_nodes.py`` checks
#: that every ``from_row`` sets every field.
new_node = object.__new__


@dataclass(frozen=True, slots=True)
class NodeKind:
    """How to load a node type: its model and the function making a GraphQL object of a row."""

    model: Any
    from_row: Callable[[Any], Node]


#: Registered by each domain module at import: GraphQL type name -> NodeKind.
NODE_KINDS: dict[str, NodeKind] = {}
#: The same kinds by model: how a domain makes another domain's objects from their rows
#: (``schema.relay.node_loading``) without importing it.
MODEL_KINDS: dict[Any, NodeKind] = {}


def register_node(type_name: str, model: Any, from_row: Callable[[Any], Node]) -> None:
    """Make ``type_name`` loadable by ``node(id:)``: rows of ``model`` via ``from_row``.
    Its values are read from ``model``'s table and the tables deciding their visibility
    (``schema.reads.tables_read``: what a cached response selecting it depends on)."""
    NODE_KINDS[type_name] = MODEL_KINDS[model] = NodeKind(model, from_row)
    register_tables(type_name, model, *decided_by(model))


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    """The global ID of row ``pk`` of ``type_name``: base64 of ``"<type_name>:<pk>"``."""
    return strawberry.ID(base64.b64encode(f"{type_name}:{pk}".encode()).decode())


def from_global_id(value: str, argument: str = "id") -> tuple[str, int]:
    """Split a global ID into ``(type name, primary key)``.

    Raises ``BadUserInput`` when ``value`` is not base64 of ``"<Type>:<integer>"``.
    """
    try:
        type_name, _, pk = (
            base64.b64decode(value.encode("ascii"), validate=True).decode().partition(":")
        )
        if not type_name:
            raise ValueError(value)
        return type_name, _primary_key(pk)
    except (ValueError, UnicodeError, binascii.Error):
        raise BadUserInput(
            f"`{argument}` is not a valid global ID: {echo(value)}.", argument=argument
        ) from None


def parse_id(value: str, type_name: str, argument: str = "id") -> int:
    """The primary key in ``value``: a global ID of ``type_name``, or the row's numeric id.

    Raises ``BadUserInput`` for a malformed ID or a global ID of another type.
    """
    if value.isascii() and value.isdigit():
        try:
            return _primary_key(value)
        except ValueError:
            raise BadUserInput(
                f"`{argument}` is out of range: {echo(value)}.", argument=argument
            ) from None
    found, pk = from_global_id(value, argument)
    if found != type_name:
        raise BadUserInput(
            f"`{argument}` must be a {type_name} ID, but {echo(value)} is a {echo(found)} ID.",
            argument=argument,
        )
    return pk


def _primary_key(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_PK:
        raise ValueError(text)
    return int(text)
