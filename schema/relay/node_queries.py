"""The Relay root fields ``node(id:)`` and ``nodes(ids:)``."""

from __future__ import annotations

import asyncio

import strawberry

from schema.context import Info
from schema.errors import BadUserInput
from schema.reads import loaders
from schema.reads.batch import load_one
from schema.relay.node import NODE_KINDS, Node, NodeKind, from_global_id
from schema.validation import echo


def _parse(global_id: str, argument: str) -> tuple[NodeKind, int]:
    type_name, pk = from_global_id(global_id, argument)
    kind = NODE_KINDS.get(type_name)
    if kind is None:
        raise BadUserInput(
            f"`{argument}` names an unknown type {echo(type_name)}.", argument=argument
        )
    return kind, pk


async def _load(info: Info, kind: NodeKind, pk: int, *, alone: bool = False) -> Node | None:
    # ``alone``: the resolver's only lookup (``load_one``); else one of many that must
    # share the DataLoader's batch.
    loader = loaders.by_id(info.context, kind.model)
    row = await (load_one(loader, pk) if alone else loader.load(pk))
    return kind.from_row(row) if row is not None else None


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global ID; null if it does not exist.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await _load(info, *_parse(id, "id"), alone=True)

    @strawberry.field(
        description="Objects by global ID, in the order given (null for each missing one); "
        "one statement per type."
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        limit = info.context.settings.max_page_size
        if len(ids) > limit:
            raise BadUserInput(f"`ids` holds {len(ids)} IDs, above the limit of {limit}.")
        # Every ID is checked before any load starts: a bad one fails the field at once,
        # leaving no load behind to run after the operation has ended.
        parsed = [_parse(i, "ids") for i in ids]
        return list(await asyncio.gather(*(_load(info, kind, pk) for kind, pk in parsed)))
