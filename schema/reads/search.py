"""Ranked full-text search over posts: each database's engine, one statement per page.

PostgreSQL matches ``posts.search_vector`` (a generated ``tsvector``, GIN-indexed; revision
0004) against ``websearch_to_tsquery('english', text)``, ranks by ``ts_rank_cd`` (cover
density, default weights: a title match, weight A, counts 1.0, a content match, B, 0.4; no
length normalisation) and marks the snippet with ``ts_headline``. SQLite matches the FTS5
table ``posts_fts`` (porter stemming) against the text written as an FTS5 expression
(``search_query.SearchQuery.fts5_match``), ranks by ``-bm25(posts_fts, 10.0, 1.0)`` (BM25
with the title ten times the content; negated, since bm25 is lower for better matches, so a
higher rank is better on both) and marks the snippet with ``snippet()``.

The order is rank descending, then id descending; a page is keyset over (rank, id), the
cursor holding the rank the statement computed, which it computes identically again (see
``schema.relay.pagination``'s "float" kind). On PostgreSQL the page's ids and ranks are
chosen in a subquery and only those rows are joined back to ``posts`` for their columns and
their ``ts_headline`` (the costly part, which reads the whole content), and that only when
the snippet is selected.

Snippets are HTML: the text escaped, every matched word inside ``<mark>`` and ``</mark>``
(``highlighted``); the engines mark matches with control characters no escaping touches.

Sources: PostgreSQL docs, 12.3 "Controlling Text Search" (``websearch_to_tsquery``,
``ts_rank_cd``, ``ts_headline`` and its options), 9.13 "Text Search Functions"
(``numnode``); SQLite docs, "FTS5" 5.1 "Built-in Auxiliary Functions" (``bm25``,
``snippet``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    String,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)

from db import models
from schema.reads.fetch import columns_of
from schema.reads.keyset import PageArgs, SortKey

#: The search connection's sort key: the rank a statement computes (a cursor holds it).
RANK_KEY = SortKey("rank", "rank", "float")
#: The named parameter of the search text (in each engine's syntax: ``query_params``).
SEARCH = "inkwell_search"
#: The characters each engine is told to put around a match, made HTML by ``highlighted``.
START, STOP = "\x02", "\x03"
#: Tokens (SQLite) and words (PostgreSQL) of a snippet: about two lines of text.
SNIPPET_WORDS = 24

_VECTOR: ColumnElement[Any] = literal_column("posts.search_vector")
_ENGLISH: ColumnElement[Any] = literal_column("'english'::regconfig")
_FTS = table("posts_fts", column("rowid"))
_FTS_TABLE: ColumnElement[Any] = literal_column("posts_fts")
_HEADLINE_OPTIONS = (
    f"StartSel={START}, StopSel={STOP}, MaxWords={SNIPPET_WORDS}, MinWords=12, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)


def _tsquery() -> ColumnElement[Any]:
    return func.websearch_to_tsquery(_ENGLISH, bindparam(SEARCH, type_=String()))


def _seek(rank: Any, row_id: Any, args: PageArgs) -> list[ColumnElement[bool]]:
    """Rows past the ``after`` cursor and before the ``before`` one, in (rank DESC, id DESC):
    "past" is a lower rank, or the same rank and a lower id. The values are the parameters
    ``keyset.cursor_params`` names."""
    clauses = []
    for side, cursor, forward in (("after", args.after, True), ("before", args.before, False)):
        if cursor is not None:
            value = bindparam(f"inkwell_{side}_value", type_=Float())
            pk = bindparam(f"inkwell_{side}_id", type_=row_id.type)
            if forward:
                clauses.append(or_(rank < value, and_(rank == value, row_id < pk)))
            else:
                clauses.append(or_(rank > value, and_(rank == value, row_id > pk)))
    return clauses


def _order(rank: Any, row_id: Any, args: PageArgs) -> list[ColumnElement[Any]]:
    """Rank, then id, descending; ascending when reading the last N backwards (``make_page``
    puts the page back in order)."""
    if args.backwards:
        return [rank.asc(), row_id.asc()]
    return [rank.desc(), row_id.desc()]


def page_statement(
    is_sqlite: bool,
    where: Sequence[ColumnElement[bool]],
    args: PageArgs,
    omit: frozenset[str],
    snippet: bool,
) -> Select[Any]:
    """One page of matching posts as rows ``(post, rank, snippet)`` (the snippet ``None``
    unless ``snippet``), the first ``args.limit + 1`` past the cursors, leaving out the post
    columns ``omit`` names (``schema.reads.pruning``). ``where`` holds the viewer's visibility
    conditions on ``posts``. Its parameters: ``query_params`` and ``keyset.cursor_params``."""
    Post = models.Post
    limit = args.limit + 1
    if is_sqlite:
        rank = (-func.bm25(_FTS_TABLE, 10.0, 1.0, type_=Float())).label("inkwell_rank")
        marked = (
            func.snippet(_FTS_TABLE, 1, START, STOP, "…", SNIPPET_WORDS, type_=String())
            if snippet
            else literal_column("NULL", String())
        )
        return (
            select(columns_of(Post, omit), rank, marked)
            .select_from(_FTS)
            .join(Post, Post.id == _FTS.c.rowid)
            .where(_FTS_TABLE.op("MATCH")(bindparam(SEARCH, type_=String())), *where)
            .where(*_seek(rank, Post.id, args))
            .order_by(*_order(rank, Post.id, args))
            .limit(limit)
        )
    query = _tsquery()
    # No result type: the reader then hands over the driver's float as it is.
    found = func.ts_rank_cd(_VECTOR, query)
    hits = (
        select(Post.id.label("id"), found.label("inkwell_rank"))
        .where(_VECTOR.op("@@")(query), *where, *_seek(found, Post.id, args))
        .order_by(*_order(found, Post.id, args))
        .limit(limit)
        .subquery("inkwell_hits")
    )
    headline = (
        func.ts_headline(_ENGLISH, Post.content, query, _HEADLINE_OPTIONS, type_=String())
        if snippet
        else literal_column("NULL", String())
    )
    return (
        select(columns_of(Post, omit), hits.c.inkwell_rank, headline)
        .join_from(hits, Post, Post.id == hits.c.id)
        .order_by(*_order(hits.c.inkwell_rank, hits.c.id, args))
    )


def query_params(is_sqlite: bool, websearch: str, fts5: str) -> dict[str, Any]:
    """The search text parameter: ``fts5`` (an FTS5 expression) on SQLite, else
    ``websearch`` (``websearch_to_tsquery``'s syntax)."""
    return {SEARCH: fts5 if is_sqlite else websearch}


def lexemes_statement() -> Select[Any]:
    """PostgreSQL: how many nodes the search text's ``tsquery`` has; 0 when every word is a
    stop word (PostgreSQL then matches nothing, with a notice). Run only when a page came
    back empty, to tell such a text from one that matches no post."""
    return select(func.numnode(_tsquery()))


def highlighted(marked: str) -> str:
    """An engine's snippet as HTML: the text escaped (``&``, ``<``, ``>``, quotes), each
    match inside ``<mark>``…``</mark>``. A stray marker character in a post's own text is
    dropped rather than left unbalanced."""
    out: list[str] = []
    open_mark = False
    for part in _split(marked):
        if part == START and not open_mark:
            out.append("<mark>")
            open_mark = True
        elif part == STOP and open_mark:
            out.append("</mark>")
            open_mark = False
        elif part not in (START, STOP):
            out.append(html.escape(part))
    if open_mark:
        out.append("</mark>")
    return "".join(out)


def _split(text: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for at, char in enumerate(text):
        if char in (START, STOP):
            parts.extend((text[start:at], char))
            start = at + 1
    parts.append(text[start:])
    return parts
