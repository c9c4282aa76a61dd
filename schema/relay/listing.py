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

from sqlalchemy import ColumnElement

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
    cache entry of its own, pushing out the statements every request shares. Raises
    ``BadUserInput`` for invalid arguments.
    """
    ctx = info.context
    args = listing.page_args(ctx.settings, order, relay)
    model = listing.model
    # Only the columns the selection uses (schema.reads.pruning), and the ordering's for cursors.
    omit = pruning.omitted(ctx, model, keep=(args.ordering.key.attr,))
    if not filter_key:
        statement = loaders.shared_statement(
            ctx,
            ("root", model, keyset.shape(args), omit),
            lambda: fetch.root_page_statement(model, where, args, omit),
        )
    else:
        statement = fetch.root_page_statement(model, where, args, omit)
    params = keyset.cursor_params(args) or None
    page = make_page(await fetch.scalars(ctx, statement, params), args)
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
    filter_key: Hashable = None
    if listing.conditions is not None:
        conditions, filter_key = listing.conditions(filter)
        where = [*conditions, *where]
    elif filter is not None:
        raise TypeError(f"the listing of {model.__name__} takes no filter")
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
