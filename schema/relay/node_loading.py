"""Nodes of any registered type, from their rows or their primary keys.

A relationship field of one domain returns another domain's objects (``Post.author`` a
``User``, ``Comment.post`` a ``Post``, ``Post.tags`` its tags). Domains refer to each
other's types only through Strawberry's lazy types, so the objects are made here, by the
``from_row`` each domain registered for its model (``register_node``), never by importing the
other domain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from schema.reads import loaders
from schema.reads.batch import load_batch
from schema.relay.node import MODEL_KINDS

if TYPE_CHECKING:
    from schema.context import Context


def to_node(model: Any) -> Callable[[Any], Any]:
    """How a row of ``model`` becomes its GraphQL object: the ``from_row`` its domain
    registered. Raises ``LookupError`` when no domain registered ``model``."""
    kind = MODEL_KINDS.get(model)
    if kind is None:
        raise LookupError(f"no node type is registered for {model.__name__}")
    return kind.from_row


async def load_nodes(ctx: Context, model: Any, pks: Sequence[int]) -> list[Any]:
    """The objects of the ``model`` rows ``pks``, in order, through the operation's by-id
    DataLoader in one batch: ``None`` for a row that does not exist or that the viewer may
    not see. Duplicate keys share one object (a nested read makes thousands)."""
    rows = await load_batch(loaders.by_id(ctx, model), pks)
    from_row = to_node(model)
    made: dict[int, Any] = {}
    return [
        None if row is None else made.get(row.id) or made.setdefault(row.id, from_row(row))
        for row in rows
    ]
