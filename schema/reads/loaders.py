"""Per-operation DataLoaders: every relationship read is batched across all parents.

A DataLoader collects the keys requested in one event-loop tick and resolves them with one call
of its batch function (one SQL statement), so the statements per request grow with the query's
depth, never with its row counts. Loaders live in the operation's ``Context``, so their caches
never outlive (or leak between) operations; an event a subscription follows is read in a unit
of work of its own (``schema.live.prepared.SharedRead``), with its own loaders.
Source: the DataLoader pattern, https://github.com/graphql/dataloader; Strawberry's
``strawberry.dataloader.DataLoader``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.util import LRUCache
from strawberry.dataloader import DataLoader

from db import models
from schema.reads import fetch, folding, keyset, pruning
from schema.reads.keyset import Page, PageArgs, make_page
from schema.reads.visibility import audience, is_public, visible

if TYPE_CHECKING:
    from schema.context import Context
    from settings import Settings

#: SQLite allows 32,766 bound parameters per statement; stay well below it.
SQLITE_MAX_BATCH = 10_000


class SharedLoader(DataLoader[Any, Any]):
    """A DataLoader whose cached futures survive the cancellation of one awaiting resolver.

    Several resolvers await the same cached future (two comments by one author). When a
    non-null field fails, graphql-core cancels the resolvers still running; awaiting the
    future directly would cancel it for everyone, failing healthy fields elsewhere in the
    response. ``asyncio.shield`` gives each awaiter its own wrapper to cancel.

    ``known`` is the cache of the breadth-first executor's batches (``schema.reads.batch.
    load_batch``), which call the batch function without a future per key: the values it has
    loaded, by key, so an object reached again at another level is not read again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.known: dict[Any, Any] = {}

    def load(self, key: Any) -> Any:
        return asyncio.shield(super().load(key))


class Loaders:
    """The DataLoaders of one operation, created on first use and keyed by what they load
    (for connections, also by their validated arguments)."""

    def __init__(self, settings: Settings) -> None:
        self._loaders: dict[Hashable, SharedLoader] = {}
        #: Whole rows the operation has already read (the viewer's), by (entity, id): every
        #: by-id loader of the entity serves them without a statement, whatever columns it
        #: would select. Only rows of entities every viewer sees (``visibility.is_public``)
        #: are served so, as the loader applies no visibility condition to them.
        self.rows: dict[tuple[Any, int], Any] = {}
        if not settings.dataloader_batching:
            self._max_batch: int | None = 1
        else:
            self._max_batch = SQLITE_MAX_BATCH if settings.is_sqlite else None

    def find(self, key: Hashable) -> SharedLoader | None:
        """The loader for ``key`` if this operation has made it."""
        return self._loaders.get(key)

    def get(
        self, key: Hashable, load: Callable[[list[Any]], Awaitable[Sequence[Any]]]
    ) -> SharedLoader:
        """The loader for ``key``, created with batch function ``load`` if new."""
        loader = self._loaders.get(key)
        if loader is None:
            loader = SharedLoader(load_fn=load, max_batch_size=self._max_batch)
            self._loaders[key] = loader
        return loader

    def for_field(
        self, key: Hashable, load: Callable[[list[Any]], Awaitable[Sequence[Any]]]
    ) -> SharedLoader:
        """The loader of a field's per-object resolver (``batch_fields.field_loader``) for
        ``key``, created with batch function ``load`` (the field's batch resolver) if new. Its
        keys are parent objects: it caches nothing (the batch resolver's own loaders cache
        the rows), and its batches have no size limit, reaching the batch resolver whole as
        a level does from the breadth-first executor (its loaders split them)."""
        loader = self._loaders.get(key)
        if loader is None:
            loader = SharedLoader(load_fn=load, cache=False)
            self._loaders[key] = loader
        return loader

    def clear(self) -> None:
        """Drop every loader and its cache. Batch functions close over the context, so this
        also breaks the context -> loader -> context cycle: an operation's rows are freed when
        it ends, not at the next cycle collection."""
        self._loaders.clear()
        self.rows.clear()


#: Batch statements built once and reused by every operation of the same shape and audience.
STATEMENTS = 2048
_statements: LRUCache[Hashable, Select[Any]] = LRUCache(STATEMENTS)


def shared_statement(
    ctx: Context, shape: Hashable, build: Callable[[], Select[Any]]
) -> Select[Any]:
    """The statement for ``shape`` (everything ``build`` depends on but the batch's keys,
    which it takes as ``fetch.KEYS``) and the viewer's audience, built by ``build`` on first
    use.

    Building a statement costs more CPU than running it here (SQLAlchemy constructs are
    made of many small objects), and statements are immutable, so one is shared by every
    operation with the same shape and audience (``visibility.audience``: anonymous, member,
    admin), whose visibility conditions differ; a member's id in them is a parameter that
    ``fetch`` binds for the operation's viewer (``visibility.viewer_params``), so members
    share statements instead of filling the cache with about ten each. Source: SQLAlchemy
    docs, "Using Lambdas to add significant speed gains to statement production" (the same
    idea, made explicit).
    """
    key = (shape, audience(ctx.viewer), ctx.settings.is_sqlite)
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = build()
    return statement


def _by_id_shape(
    ctx: Context, entity: Any
) -> tuple[frozenset[str], tuple[folding.Fold, ...], Hashable]:
    """What ``by_id`` reads for the field being resolved: the left-out columns, the folds
    and the loader's key; remembered with the plan's reads (``Reads.derived``)."""
    selected = pruning.SELECTED.get()
    memo_key = ("by_id", entity, ctx.reads_on_driver)
    if selected is not None:
        found = selected.derived.get(memo_key)
        if found is not None:
            return found
    omit = pruning.omitted(ctx, entity)
    joined = folding.folds(ctx, entity)
    key: tuple[Any, ...] = ("by_id", entity)
    if omit or joined:
        key = (*key, omit, tuple(fold.key for fold in joined))
    shape = (omit, joined, key)
    if selected is not None:
        selected.derived[memo_key] = shape
    return shape


def by_id(ctx: Context, entity: Any) -> SharedLoader:
    """``entity`` rows by primary key: one ``IN`` per batch. ``None`` for an id that does
    not exist or that the viewer may not see (``schema.reads.visibility``)."""
    # Only the columns the selection uses (schema.reads.pruning), and the fields it reads folded
    # in (schema.reads.folding): keys of their own.
    omit, joined, key = _by_id_shape(ctx, entity)
    existing = ctx.loaders.find(key)
    if existing is not None:
        return existing
    public = is_public(entity)

    def build() -> Select[Any]:
        columns = select(fetch.columns_of(entity, omit))
        return folding.with_folds(columns, entity, joined).where(
            fetch.in_ids(ctx, entity.id), *visible(ctx.viewer, entity)
        )

    async def load(ids: list[int]) -> list[Any]:
        known = ctx.loaders.rows if public else None
        found = {i: known[entity, i] for i in ids if (entity, i) in known} if known else {}
        missing = [i for i in ids if i not in found] if found else ids
        if missing:
            statement = shared_statement(ctx, key, build)
            if joined:
                rows = await fetch.rows(ctx, statement, {fetch.KEYS: missing})
                folding.prime(ctx, joined, rows, at=1)
                found.update((row[0].id, row[0]) for row in rows)
            else:
                found.update(
                    (row.id, row)
                    for row in await fetch.scalars(ctx, statement, {fetch.KEYS: missing})
                )
        return [found.get(i) for i in ids]

    return ctx.loaders.get(key, load)


def pages(
    ctx: Context,
    name: str,
    entity: Any,
    parent: Any,
    where: Sequence[ColumnElement[bool]],
    args: PageArgs,
    *,
    filter_key: Hashable = None,
    join: fetch.Join | None = None,
) -> DataLoader[int, Page]:
    """A page of ``entity`` per parent id, all parents in one windowed statement.

    ``name`` names the relationship (e.g. ``"User.posts"``); with ``args`` and ``filter_key``
    (a hashable form of ``where``) it keys the loader, so fields with different arguments get
    different loaders and identical ones share (and, across operations, one statement).
    """
    # Only the columns the selection uses (schema.reads.pruning), and the ordering's for cursors.
    omit = pruning.omitted(ctx, entity, keep=(args.ordering.key.attr,))
    key = ("pages", name, args, filter_key, omit)
    # The statement is the same for every cursor of a shape: their values are parameters.
    params = keyset.cursor_params(args)

    async def load(parent_ids: list[int]) -> list[Page]:
        statement = shared_statement(
            ctx,
            ("pages", name, keyset.shape(args), filter_key, omit),
            lambda: fetch.windowed_page_statement(ctx, entity, parent, where, args, join, omit),
        )
        grouped: dict[int, list[Any]] = defaultdict(list)
        for row, parent_id in await fetch.rows(ctx, statement, {**params, fetch.KEYS: parent_ids}):
            grouped[parent_id].append(row)
        return [make_page(grouped.get(p, ()), args) for p in parent_ids]

    return ctx.loaders.get(key, load)


def counts(
    ctx: Context,
    name: str,
    entity: Any,
    parent: Any,
    where: Sequence[ColumnElement[bool]],
    *,
    filter_key: Hashable = None,
    join: fetch.Join | None = None,
) -> DataLoader[int, int]:
    """The number of ``entity`` rows per parent id: one ``GROUP BY`` per batch."""
    key = ("counts", name, filter_key)

    async def load(parent_ids: list[int]) -> list[int]:
        statement = shared_statement(
            ctx,
            key,
            lambda: fetch.grouped_count_statement(ctx, entity, parent, where, join),
        )
        found = dict(await fetch.rows(ctx, statement, {fetch.KEYS: parent_ids}))
        return [int(found.get(p, 0)) for p in parent_ids]

    return ctx.loaders.get(key, load)


def tags_by_post(ctx: Context) -> DataLoader[int, list[models.Tag]]:
    """Each post's tags, oldest tag first (by id), through ``post_tags``: one join per batch."""

    async def load(post_ids: list[int]) -> list[list[models.Tag]]:
        link = models.post_tags
        statement = shared_statement(
            ctx,
            "tags_by_post",
            lambda: (
                select(link.c.post_id, models.Tag)
                .join(models.Tag, models.Tag.id == link.c.tag_id)
                .where(fetch.in_ids(ctx, link.c.post_id))
                .order_by(link.c.post_id, models.Tag.id)
            ),
        )
        grouped: dict[int, list[models.Tag]] = defaultdict(list)
        for post_id, tag in await fetch.rows(ctx, statement, {fetch.KEYS: post_ids}):
            grouped[post_id].append(tag)
        return [grouped.get(p, []) for p in post_ids]

    return ctx.loaders.get("tags_by_post", load)
