"""``searchPosts``: ranked full-text search over posts, as a Relay connection.

Each edge carries the post, its ``rank`` (higher is better) and a highlighted ``snippet`` of
its content; the order is rank descending, then id descending, and cursors are keyset over
(rank, id). One statement per page (``schema.reads.search``), with the viewer's visibility
conditions, as every read path has them; the posts' own fields below batch as under
``posts``. A text with nothing to search for is the typed ``InvalidSearchQuery``, a member
of the result union, as the Strawberry docs' "Dealing with errors" recommends for expected
errors; bad Relay arguments (a page too large, a foreign cursor) are ``BAD_USER_INPUT``
errors, as on every connection.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types.nodes import SelectedField

from db import models
from schema.context import Info
from schema.domains.posts.types import Post
from schema.reads import fetch, keyset, loaders, pruning, search
from schema.reads.batch_fields import batch_field
from schema.reads.keyset import Ordering, cursor_params, make_page
from schema.reads.search_query import InvalidSearch, Problem, parse
from schema.reads.visibility import visible_posts
from schema.relay.connection import After, Before, First, Last, PageInfo, page_info_of
from schema.relay.pagination import encode_cursor, page_args

#: Rank descending, then id descending.
ORDERING = Ordering(search.RANK_KEY, descending=True)


@strawberry.enum(description="Why a search text cannot be searched for.")
class SearchQueryProblem(Enum):
    EMPTY = "empty"
    NO_WORDS = strawberry.enum_value(
        "no words",
        description="Nothing to look for: only punctuation, or (PostgreSQL) only words too "
        "common to be indexed, such as 'the'.",
    )
    ONLY_EXCLUSIONS = strawberry.enum_value(
        "only exclusions",
        description="Only `-word` exclusions (on one side of an OR, or in all).",
    )
    TOO_LONG = "too long"
    INVALID_CHARACTER = "invalid character"


@strawberry.type(description="The search text cannot be searched for; nothing was searched.")
class InvalidSearchQuery:
    message: str = strawberry.field(description="A sentence a UI can show as it is.")
    problem: SearchQueryProblem
    query: str = strawberry.field(description="The search text as it was given.")


@strawberry.type(description="A post matching a search, its rank and a snippet.")
class PostSearchEdge:
    node: Post
    rank: float = strawberry.field(
        description="How well the post matches; higher is better. Comparable only within "
        "one search: PostgreSQL's ts_rank_cd or SQLite's negated bm25."
    )
    snippet: str = strawberry.field(
        description="HTML: a passage of the post's content with every match inside "
        "<mark>…</mark>, the text itself escaped (safe to insert as HTML); the content's "
        "opening words when only the title matches. Computed only when selected."
    )
    id: strawberry.Private[int]

    @batch_field(description="The opaque cursor of the edge's position.")
    def cursor(_context: Any, edges: list[PostSearchEdge]) -> list[str]:
        return [encode_cursor(ORDERING, edge) for edge in edges]


@strawberry.type(description="A page of posts matching a search, best first.")
class PostSearchConnection:
    edges: list[PostSearchEdge]
    nodes: list[Post] = strawberry.field(description="The page's posts, without ranks.")
    page_info: PageInfo


SearchPostsResult = Annotated[
    PostSearchConnection | InvalidSearchQuery, strawberry.union("SearchPostsResult")
]


def _selects_snippet(info: Info) -> bool:
    """True when the operation selects ``edges { snippet }`` on this field (through any
    fragments): the snippet, the costly part of a search, is computed only then."""

    def under(selections: list[Any], path: tuple[str, ...]) -> bool:
        for selection in selections:
            if not isinstance(selection, SelectedField):  # a fragment: its fields are ours
                if under(selection.selections, path):
                    return True
            elif selection.name == path[0] and (
                len(path) == 1 or under(selection.selections, path[1:])
            ):
                return True
        return False

    return under(info.selected_fields, ("searchPosts", "edges", "snippet"))


@strawberry.type
class PostSearchQueries:
    @strawberry.field(
        description="Posts matching a search text, best match first (then newest id). "
        'The syntax: words (all must appear, stemmed: "publish" finds "published"), '
        '"quoted phrases", -excluded words or phrases, and OR between alternatives. '
        "Drafts are found only by their author and admins."
    )
    async def search_posts(
        self,
        info: Info,
        query: str,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> SearchPostsResult:
        ctx = info.context
        try:
            parsed = parse(query)
        except InvalidSearch as error:
            return _invalid(error, query)
        args = page_args(
            ORDERING,
            first=first,
            after=after,
            last=last,
            before=before,
            default_size=ctx.settings.default_page_size,
            max_size=ctx.settings.max_page_size,
        )
        is_sqlite = ctx.settings.is_sqlite
        omit, snippet = pruning.omitted(ctx, models.Post), _selects_snippet(info)
        # The text and the cursors are parameters: one statement per shape and audience,
        # built and compiled once per process (``loaders.shared_statement``).
        statement = loaders.shared_statement(
            ctx,
            ("searchPosts", keyset.shape(args), omit, snippet),
            lambda: search.page_statement(
                is_sqlite, visible_posts(ctx.viewer), args, omit, snippet
            ),
        )
        params = {
            **search.query_params(is_sqlite, parsed.websearch_text(), parsed.fts5_match()),
            **cursor_params(args),
        }
        found = await fetch.rows(ctx, statement, params)
        if not found and not is_sqlite:
            statement = loaders.shared_statement(
                ctx, "searchPosts.lexemes", search.lexemes_statement
            )
            nodes = await fetch.scalars(ctx, statement, {search.SEARCH: parsed.websearch_text()})
            if not nodes[0]:
                return _invalid(
                    InvalidSearch(
                        Problem.NO_WORDS,
                        "The search text has only words too common to be searched for.",
                    ),
                    query,
                )
        edges = [
            PostSearchEdge(
                node=Post.from_row(row),
                rank=float(rank),
                # None when not selected (nothing then reads it).
                snippet="" if snippet is None else search.highlighted(snippet),
                id=row.id,
            )
            for row, rank, snippet in found
        ]
        page = make_page(edges, args)
        rows: list[PostSearchEdge] = page.rows
        return PostSearchConnection(
            edges=rows,
            nodes=[edge.node for edge in rows],
            page_info=page_info_of(page, ORDERING),
        )


def _invalid(error: InvalidSearch, query: str) -> InvalidSearchQuery:
    return InvalidSearchQuery(
        message=error.message, problem=SearchQueryProblem(error.problem.value), query=query
    )
