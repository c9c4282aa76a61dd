"""Batch resolvers: a field resolved for every parent object at one level, in one call.

graphql-core resolves a field once per parent object, each call an awaitable (for a list, an
asyncio task per item), and relies on DataLoaders to merge the calls back into one statement.
The breadth-first executor (``schema.engine.executor.run``) calls a field's batch resolver instead:
once per level, with all the parents, through the same DataLoader batch functions and so the
same SQL. A field whose resolver has no batch resolver sends the operation down graphql-core's
path (``schema.engine.executor.plan.Unsupported``). A field with one is declared by it alone
(``schema.reads.batch_fields.batch_field``); graphql-core's per-object resolver is derived
from it. This module is how batch resolvers load: ``load_batch`` for many keys, ``load_one``
for a root field's one. It belongs to the read path, not to the engine: everything that reads
loads through it (connections, the viewer's lookup, the domains' fields), and the engine only
marks an operation's only root field (``ALONE``).

Source: the idea of resolving a level at once is graphql-jit's and Grafast's (PostGraphile 5)
"plans"; DataLoader's batch function contract, https://github.com/graphql/dataloader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from contextvars import ContextVar
from typing import Any

from strawberry.dataloader import DataLoader


def required(values: Sequence[Any], message: str) -> list[Any]:
    """``values`` with each ``None`` replaced by ``AssertionError(message)``: the field error
    of a non-null field whose value cannot be missing (a row behind a NOT NULL foreign key)."""
    return [AssertionError(message) if value is None else value for value in values]


#: True while the breadth-first executor resolves an operation's only root field: nothing
#: else at that level could add keys to a DataLoader batch.
ALONE: ContextVar[bool] = ContextVar("inkwell_alone", default=False)
#: True while a batch resolver runs as the batch function of a per-object field's DataLoader
#: (``fields.field_loader``, graphql-core's path): ``load_batch`` then loads through the
#: loader's futures, so that the keys other fields ask of the same loader in the same tick
#: (``Post.author`` and ``Comment.author`` under one ``nodes``) share its statement, as
#: per-object loads do.
PER_OBJECT: ContextVar[bool] = ContextVar("inkwell_per_object", default=False)


async def load_one(loader: DataLoader[Any, Any], key: Hashable) -> Any:
    """``loader.load(key)`` for a root field's lookup (``post(id:)``). When the field is
    resolved ``ALONE``, straight through ``load_batch`` instead: no future, and no wait for
    the event loop's next iteration, when a DataLoader dispatches the keys gathered so far
    (as no sibling can add any). A resolver calls it once, never for many keys at once:
    ``load_batch`` is for those. Raises what the batch function raises."""
    if ALONE.get():
        [value] = await load_batch(loader, [key])
        return value
    return await loader.load(key)


async def load_batch(loader: DataLoader[Any, Any], keys: Sequence[Hashable]) -> list[Any]:
    """The values of ``keys`` (duplicates allowed), in order, from ``loader``'s batch function
    called once per ``max_batch_size`` distinct keys not loaded before (a ``SharedLoader``'s
    ``known``, unless the loader does not cache): no future per key. Under ``PER_OBJECT``,
    ``loader.load`` for each key instead (its futures, batched with other fields' keys).

    Raises what the batch function raises, or ``ValueError`` if it returns a list of the wrong
    length (the DataLoader contract).
    """
    if PER_OBJECT.get():
        return list(await asyncio.gather(*map(loader.load, keys)))
    known = getattr(loader, "known", None) if loader.cache else None
    found: dict[Hashable, Any] = known if known is not None else {}
    unique = list(dict.fromkeys(keys))
    if known is not None:
        _learn(loader, unique, known)
    if found:
        unique = [key for key in unique if key not in found]
    size = loader.max_batch_size or len(unique) or 1
    for start in range(0, len(unique), size):
        chunk = unique[start : start + size]
        values = await loader.load_fn(chunk)
        if len(values) != len(chunk):
            raise ValueError(f"batch function returned {len(values)} values for {len(chunk)} keys")
        found.update(zip(chunk, values, strict=True))
    return [found[key] for key in keys]


def _learn(loader: DataLoader[Any, Any], keys: list[Hashable], known: dict[Any, Any]) -> None:
    """Add to ``known`` what ``loader.load`` has already loaded of ``keys`` (a root
    resolver's lookups go through it): its cache's futures that finished with a value."""
    futures = getattr(loader.cache_map, "cache_map", None)
    if not futures:
        return
    for key in keys:
        future = futures.get(key)
        done = future is not None and future.done() and not future.cancelled()
        if done and future.exception() is None:
            known[key] = future.result()
