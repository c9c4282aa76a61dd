"""Resolving connection fields: a root list, or the list under each of many parents.

A ``Listing`` says what a connection lists (a model, how a row becomes a node, which orders it
offers, how its filter becomes SQL); ``root_connection`` and ``nested_connections`` validate the
Relay arguments, fetch the page (one keyset query, or one windowed statement for all the
parents of a level, through a DataLoader) and wrap it, with ``totalCount`` counted only if
selected. ``nested_connections`` serves a relationship field's batch resolver
(``schema.reads.batch_fields``), whichever executor calls it. It finds the listing by model
(``register_listing``): a domain lists another domain's rows (``User.posts``) without
importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select
from strawberry.dataloader import DataLoader

from schema.context import Context, Info
from schema.reads import fetch, keyset, loaders, pruning
from schema.reads.batch import load_batch
from schema.reads.keyset import Ordering, Page, PageArgs, SortKey, make_page
from schema.relay.connection import Connection, OrderDirection, RelayArgs, build_connection
from schema.relay.pagination import page_args
from settings import Settings


@dataclass(frozen=True, slots=True)
class Listing:
    """What a connection lists: ``model`` rows, made nodes by ``to_node``, ordered by one of
    ``sort_keys`` (keyed by the domain's ``XOrderField`` enum members). ``conditions``, for a
    listing with a ``filter`` argument, makes the domain's filter input (or ``None``) SQL
    conditions and a hashable key identifying them."""

    model: Any
    to_node: Callable[[Any], Any]
    sort_keys: dict[Any, SortKey]
    conditions: Callable[[Any], tuple[list[ColumnElement[bool]], Hashable]] | None = None

    def page_args(self, settings: Settings, order: Any, relay: RelayArgs) -> PageArgs:
        """Validate a field's ``orderBy`` and Relay arguments against the configured page
        sizes. Raises ``BadUserInput`` (see ``schema.relay.pagination.page_args``)."""
        ordering = (
            Ordering()
            if order is None
            else Ordering(
                self.sort_keys[order.field], descending=order.direction is OrderDirection.DESC
            )
        )
        first, after, last, before = relay
        return page_args(
            ordering,
            first=first,
            after=after,
            last=last,
            before=before,
            default_size=settings.default_page_size,
            max_size=settings.max_page_size,
        )


class Valued:
    """A row of a page ordered by a computed sort key (``SortKey.computed``): the row's
    attributes, and the key's value as the attribute ``attr`` (what the page's cursors
    encode, ``encode_cursor``, and what a domain may hand to a field's loader)."""

    __slots__ = ("_attr", "_row", "_value")

    def __init__(self, row: Any, attr: str, value: Any) -> None:
        self._row, self._attr, self._value = row, attr, value

    def __getattr__(self, name: str) -> Any:
        # Only names the object lacks reach here: the key's, then the row's.
        if name == self._attr:
            return self._value
        return getattr(self._row, name)


#: Registered by each domain module at import: model -> the listing of its rows.
_LISTINGS: dict[Any, Listing] = {}


def register_listing(listing: Listing) -> Listing:
    """Make ``listing`` the one ``nested_connections`` uses for its model; returns it."""
    _LISTINGS[listing.model] = listing
    return listing


async def root_connection(
    info: Info,
    listing: Listing,
    order: Any,
    relay: RelayArgs,
    where: Sequence[ColumnElement[bool]],
    filter_key: Hashable,
) -> Connection[Any]:
    """A root connection over the ``listing`` rows matching ``where``: one statement, plus a
    ``count(*)`` if ``totalCount`` is selected.

    ``filter_key`` is a hashable form of everything in ``where`` but the viewer's visibility
    conditions, empty when there is no filter: an unfiltered page's statement is built once
    per shape and shared (``loaders.shared_statement``), the cursors' values bound as
    parameters (``keyset.cursor_params``), so it is compiled once per process. A filtered
    page is built for itself: search texts and dates come from clients, and each would be a
    cache entry of its own, pushing out the statements every request shares. Ordered by a
    computed key (``SortKey.computed``), the page selects the key's value beside each row
    (``fetch.computed_page_statement``) and its rows are ``Valued``. Raises
    ``BadUserInput`` for invalid arguments.
    """
    ctx = info.context
    args = listing.page_args(ctx.settings, order, relay)
    model = listing.model
    key = args.ordering.key
    # Only the columns the selection uses (schema.reads.pruning), and the ordering's for cursors.
    omit = pruning.omitted(ctx, model, keep=(key.attr,))
    computed = key.computed

    def build() -> Select[Any]:
        if computed is None:
            return fetch.root_page_statement(model, where, args, omit)
        # Per audience, like the statement (loaders.shared_statement).
        return fetch.computed_page_statement(model, where, args, omit, computed(ctx.viewer))

    if not filter_key:
        shape = ("root", model, keyset.shape(args), omit)
        statement = loaders.shared_statement(ctx, shape, build)
    else:
        statement = build()
    params = keyset.cursor_params(args) or None
    if computed is None:
        found: Sequence[Any] = await fetch.scalars(ctx, statement, params)
    else:
        found = [
            Valued(row, key.attr, value) for row, value in await fetch.rows(ctx, statement, params)
        ]
    page = make_page(found, args)
    return build_connection(
        page, args.ordering, listing.to_node, lambda: fetch.root_count(ctx, listing.model, where)
    )


async def nested_connections(
    ctx: Context,
    model: Any,
    relation: str,
    parent: Any,
    parent_ids: Sequence[int],
    order: Any,
    relay: RelayArgs,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    filter: Any = None,
    join: fetch.Join | None = None,
) -> list[Connection[Any]]:
    """The connection of ``model`` rows of each of ``parent_ids`` (e.g. authors' posts), in
    order: one windowed statement for them all, and one ``GROUP BY`` for their counts if
    ``totalCount`` is selected (through DataLoaders shared by every call with the same
    arguments).

    ``relation`` names the relationship (``"User.posts"``); ``parent`` is the column holding
    the parent's id (``posts.author_id``, ``post_tags.tag_id``), reached through ``join`` when
    it lives in an association table; ``where`` holds the viewer's visibility conditions;
    ``filter`` is the field's filter input, made conditions by the listing (which must take
    one when it is given). Raises ``BadUserInput`` for invalid arguments.
    """
    listing = _LISTINGS[model]
    where, filter_key = _filtered(listing, filter, where)
    args = listing.page_args(ctx.settings, order, relay)
    pages = loaders.pages(
        ctx, relation, model, parent, where, args, filter_key=filter_key, join=join
    )
    counts = loaders.counts(ctx, relation, model, parent, where, filter_key=filter_key, join=join)
    found = await load_batch(pages, parent_ids)
    ordering, to_node = args.ordering, listing.to_node

    def connection(page: Page, parent_id: int) -> Connection[Any]:
        return build_connection(
            page, ordering, to_node, lambda: counts.load(parent_id), (counts, parent_id)
        )

    return [connection(page, p) for page, p in zip(found, parent_ids, strict=True)]


def _filtered(
    listing: Listing, filter: Any, where: Sequence[ColumnElement[bool]]
) -> tuple[Sequence[ColumnElement[bool]], Hashable]:
    """``where`` with the conditions of ``filter`` (the listing's filter input, or ``None``)
    first, and the hashable key of those conditions. Raises ``TypeError`` for a filter given
    to a listing that takes none."""
    if listing.conditions is not None:
        conditions, filter_key = listing.conditions(filter)
        return [*conditions, *where], filter_key
    if filter is not None:
        raise TypeError(f"the listing of {listing.model.__name__} takes no filter")
    return where, None


def count_loader(
    ctx: Context,
    model: Any,
    relation: str,
    parent: Any,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    join: fetch.Join | None = None,
) -> DataLoader[int, int]:
    """The DataLoader counting, per parent id, the ``model`` rows of the unfiltered
    connection ``relation``: the very loader that connection's ``totalCount`` loads through
    (``nested_connections`` with the same arguments and no ``filter``), so a count field and
    the connection's ``totalCount`` agree and, asked together, share one ``GROUP BY``."""
    where, filter_key = _filtered(_LISTINGS[model], None, where)
    return loaders.counts(ctx, relation, model, parent, where, filter_key=filter_key, join=join)


async def nested_counts(
    ctx: Context,
    model: Any,
    relation: str,
    parent: Any,
    parent_ids: Sequence[int],
    where: Sequence[ColumnElement[bool]] = (),
    *,
    join: fetch.Join | None = None,
) -> list[int]:
    """How many ``model`` rows each of ``parent_ids`` has in the connection ``relation``
    (0 for a parent with none), in order: what that connection's ``totalCount`` answers for
    the same viewer (``where`` must be the visibility conditions the connection's field
    passes, ``parent`` and ``join`` its). One ``SELECT parent, count(*) ... WHERE parent IN
    (...) GROUP BY parent`` for all the parents of a level, however many (``count_loader``).
    """
    loader = count_loader(ctx, model, relation, parent, where, join=join)
    return await load_batch(loader, parent_ids)


def prime_counts(loader: DataLoader[int, int], counts: dict[int, int]) -> None:
    """Hand ``loader`` (a ``count_loader``) counts already read, by parent id (a page ordered
    by them, say), so neither executor counts those parents again: the breadth-first one's
    batches read ``SharedLoader.known``, graphql-core's per-object loads the loader's cache.
    """
    known = getattr(loader, "known", None)
    if known is not None:
        known.update(counts)
    loader.prime_many(counts)
