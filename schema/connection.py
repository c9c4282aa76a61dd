"""Relay connection types: ``XConnection { edges { cursor node } nodes pageInfo totalCount }``.

Source: GraphQL Cursor Connections Specification, https://relay.dev/graphql/connections.htm
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from schema.pagination import Ordering, Page, encode_cursor

NodeT = TypeVar("NodeT")


@strawberry.enum(description="Sort direction. NULL values sort last in both directions.")
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type(description="Where a page sits in its connection (Relay PageInfo).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A node and the opaque cursor of its position.")
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A page of a keyset-paginated list.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    nodes: list[NodeT] = strawberry.field(description="The page's nodes, without cursors.")
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(
        description="How many nodes the whole list holds (cursors and page size aside). "
        "Counted only when asked for."
    )
    async def total_count(self) -> int:
        return await self.count()


def build_connection(
    page: Page,
    ordering: Ordering,
    to_node: Callable[[Any], Any],
    count: Callable[[], Awaitable[int]],
) -> Connection[Any]:
    """A ``Connection`` over ``page``'s rows, each made a node by ``to_node``.

    ``count`` is awaited only if the client selects ``totalCount``.
    """
    nodes = [to_node(row) for row in page.rows]
    edges = [
        Edge(cursor=encode_cursor(ordering, row), node=node)
        for row, node in zip(page.rows, nodes, strict=True)
    ]
    return Connection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
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
