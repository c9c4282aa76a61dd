"""Relay connection types: ``XConnection { edges { cursor node } nodes pageInfo totalCount }``.

Source: GraphQL Cursor Connections Specification, https://relay.dev/graphql/connections.htm
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from strawberry.dataloader import DataLoader

from schema.reads.batch import load_batch
from schema.reads.batch_fields import batch_field
from schema.reads.keyset import Ordering, Page
from schema.relay.pagination import encode_cursor

NodeT = TypeVar("NodeT")


@strawberry.enum(description="Sort direction. NULL values sort last in both directions.")
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type(description="Where a page sits in its connection (Relay PageInfo).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    #: The page's first and last rows and their ordering: cursors are encoded only when
    #: selected (a nested read builds hundreds of connections, and most never page).
    first_row: strawberry.Private[Any]
    last_row: strawberry.Private[Any]
    ordering: strawberry.Private[Ordering]

    @batch_field()
    def start_cursor(_context: Any, pages: list[PageInfo]) -> list[str | None]:
        return [_page_cursor(page, page.first_row) for page in pages]

    @batch_field()
    def end_cursor(_context: Any, pages: list[PageInfo]) -> list[str | None]:
        return [_page_cursor(page, page.last_row) for page in pages]


def _page_cursor(page: PageInfo, row: Any) -> str | None:
    """The cursor of ``row`` (``None`` for an empty page) in ``page``'s ordering."""
    return None if row is None else encode_cursor(page.ordering, row)


@strawberry.type(description="A node and the opaque cursor of its position.")
class Edge(Generic[NodeT]):
    node: NodeT
    row: strawberry.Private[Any]
    ordering: strawberry.Private[Ordering]

    @batch_field(description="The opaque cursor of the node's position.")
    def cursor(_context: Any, edges: list[Edge[NodeT]]) -> list[str]:
        # Encoded only when selected: most clients page by `pageInfo.endCursor`.
        return [encode_cursor(edge.ordering, edge.row) for edge in edges]


@strawberry.type(description="A page of a keyset-paginated list.")
class Connection(Generic[NodeT]):
    nodes: list[NodeT] = strawberry.field(description="The page's nodes, without cursors.")
    page_info: PageInfo
    #: The page's rows, one per node (an edge's cursor is encoded from its row).
    rows: strawberry.Private[Sequence[Any]]
    ordering: strawberry.Private[Ordering]
    count: strawberry.Private[Callable[[], Awaitable[int]]]
    #: For a nested connection: the counting DataLoader and this connection's parent id, so
    #: the breadth-first executor counts every parent's list in one batch.
    count_key: strawberry.Private[tuple[DataLoader[int, int], int] | None] = None

    # Made when read: a nested read builds hundreds of connections, and the breadth-first
    # executor completes `edges { node }` straight from `nodes` (`edges_over`), calling this
    # only when an edge's `cursor` is selected.
    @batch_field(edges_over=("nodes", "node"))
    def edges(_context: Any, connections: list[Connection[NodeT]]) -> list[list[Edge[NodeT]]]:
        return [edges_of(connection) for connection in connections]

    @batch_field(
        description="How many nodes the whole list holds (cursors and page size aside). "
        "Counted only when asked for."
    )
    async def total_count(_context: Any, connections: list[Connection[NodeT]]) -> list[int]:
        """Every nested connection's count through its DataLoader's batch function (one
        ``GROUP BY`` per loader); a root connection counts on its own."""
        counts: list[Any] = [None] * len(connections)
        by_loader: dict[int, tuple[DataLoader[int, int], list[int]]] = {}
        for index, connection in enumerate(connections):
            if connection.count_key is None:
                counts[index] = await connection.count()
            else:
                loader, _ = connection.count_key
                by_loader.setdefault(id(loader), (loader, []))[1].append(index)
        for loader, indexes in by_loader.values():
            keys = [connections[i].count_key[1] for i in indexes]  # type: ignore[index]
            for i, value in zip(indexes, await load_batch(loader, keys), strict=True):
                counts[i] = value
        return counts


def edges_of(connection: Connection[Any]) -> list[Edge[Any]]:
    """``connection``'s edges: one per node, with the row its cursor is encoded from."""
    return [
        Edge(node=node, row=row, ordering=connection.ordering)
        for row, node in zip(connection.rows, connection.nodes, strict=True)
    ]


def build_connection(
    page: Page,
    ordering: Ordering,
    to_node: Callable[[Any], Any],
    count: Callable[[], Awaitable[int]],
    count_key: tuple[DataLoader[int, int], int] | None = None,
) -> Connection[Any]:
    """A ``Connection`` over ``page``'s rows, each made a node by ``to_node``.

    ``count`` is awaited only if the client selects ``totalCount``; ``count_key`` lets the
    breadth-first executor batch it instead (see ``Connection.count_key``).
    """
    rows = page.rows
    return Connection(
        nodes=[to_node(row) for row in rows],
        rows=rows,
        ordering=ordering,
        page_info=page_info_of(page, ordering),
        count=count,
        count_key=count_key,
    )


def page_info_of(page: Page, ordering: Ordering) -> PageInfo:
    """``page``'s ``PageInfo``: whether there are more rows either way, and the rows its
    start and end cursors are encoded from in ``ordering``."""
    rows = page.rows
    return PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        first_row=rows[0] if rows else None,
        last_row=rows[-1] if rows else None,
        ordering=ordering,
    )


# Relay's connection arguments, typed once for every connection field.
First = Annotated[
    int | None, strawberry.argument(description="Page forward: the first N nodes after `after`.")
]
After = Annotated[
    str | None, strawberry.argument(description="A cursor: only nodes after this position.")
]
Last = Annotated[
    int | None, strawberry.argument(description="Page backward: the last N nodes before `before`.")
]
Before = Annotated[
    str | None, strawberry.argument(description="A cursor: only nodes before this position.")
]

#: The four Relay arguments as a resolver received them: (first, after, last, before).
RelayArgs = tuple[int | None, str | None, int | None, str | None]
