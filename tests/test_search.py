"""``searchPosts``: ranked full-text search on each database's engine (issue 21).

Every test reads a fixed corpus (``CORPUS``) that replaces the write seed's posts, so what
each search finds is known from the corpus alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import OperationDefinitionNode
from graphql import parse as parse_document
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql

from db.models import Post
from schema import build_schema
from schema.domains.posts.search import ORDERING
from schema.engine.executor.run import BreadthFirst
from schema.engine.limits import measure
from schema.engine.selected_types import selected_types
from schema.reads import search
from schema.reads.keyset import PageArgs
from schema.reads.search_query import InvalidSearch, Problem, parse
from schema.reads.tables_read import tables_of
from schema.reads.visibility import visible_posts
from settings import Settings
from tests.conftest import ADMIN_ID, OTHER, OWNER, App

PUBLISHED, DRAFT = "published", "draft"
#: id -> (title, content, status): the only posts of a search test's database.
CORPUS: dict[int, tuple[str, str, str]] = {
    1001: ("Gardening tips", "Water the tomatoes early in the day.", PUBLISHED),
    1002: ("Weekend notes", "Some gardening in the morning, then reading.", PUBLISHED),
    1003: ("Recent works", "A list of everything we published this year.", PUBLISHED),
    1004: ("Quick brown fox", "The quick brown fox jumps over the lazy dog.", PUBLISHED),
    1005: ("Animals", "A dog, quick and brown; a fox nearby.", PUBLISHED),
    1006: ("Secret garden", "A draft about gardening and zucchini.", DRAFT),
    **{n: ("Identical zucchini", "Zucchini again.", PUBLISHED) for n in range(1007, 1012)},
    1012: ("Fox tales", "A fox wrote <script>alert(1)</script> & more.", PUBLISHED),
}

SEARCH = """query($q: String!, $first: Int, $after: String, $last: Int, $before: String) {
  searchPosts(query: $q, first: $first, after: $after, last: $last, before: $before) {
    __typename
    ... on PostSearchConnection {
      edges { cursor rank snippet node { databaseId title } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
    ... on InvalidSearchQuery { message problem query }
  }
}"""


def when(status: str) -> datetime | None:
    return datetime(2026, 12, 1, tzinfo=UTC) if status == PUBLISHED else None


@pytest.fixture
async def corpus(write_app: App) -> App:
    """``write_app`` over a database whose posts are ``CORPUS`` (all by ``OWNER``)."""
    async with write_app.engine.begin() as conn:
        await conn.execute(text("DELETE FROM posts"))
        # Through the table's types, so a datetime is stored as the ORM stores it on SQLite.
        rows = [
            {"id": pk, "author_id": OWNER, "title": title, "content": content}
            | {"status": status, "published_at": when(status)}
            for pk, (title, content, status) in CORPUS.items()
        ]
        await conn.execute(insert(Post.__table__), rows)
        await conn.execute(
            text("INSERT INTO post_tags (post_id, tag_id) VALUES (1001, 1), (1002, 2)")
        )
    write_app.statements.clear()
    return write_app


async def found(app: App, q: str, as_user: int | None = None, **args: Any) -> dict[str, Any]:
    data = await app.data(SEARCH, {"q": q, **args}, as_user=as_user)
    return data["searchPosts"]  # type: ignore[no-any-return]


def ids(result: dict[str, Any]) -> list[int]:
    assert result["__typename"] == "PostSearchConnection", result
    return [int(edge["node"]["databaseId"]) for edge in result["edges"]]


async def test_a_title_match_ranks_above_a_content_match(corpus: App) -> None:
    result = await found(corpus, "gardening")
    assert ids(result) == [1001, 1002]
    ranks = [edge["rank"] for edge in result["edges"]]
    assert ranks[0] > ranks[1] > 0


async def test_stemming_finds_other_forms_of_a_word(corpus: App) -> None:
    assert ids(await found(corpus, "publish")) == [1003]
    assert ids(await found(corpus, "gardens")) == [1001, 1002]


async def test_words_in_any_order_and_phrases(corpus: App) -> None:
    assert set(ids(await found(corpus, "fox quick brown"))) == {1004, 1005}
    assert ids(await found(corpus, '"quick brown fox"')) == [1004]


async def test_exclusion_and_or(corpus: App) -> None:
    assert ids(await found(corpus, "fox -dog")) == [1012]
    assert ids(await found(corpus, 'fox -"lazy dog"')) == sorted([1005, 1012], reverse=True)
    assert set(ids(await found(corpus, "tomatoes OR tales"))) == {1001, 1012}
    # AND binds tighter than OR, and an exclusion belongs to its side of the OR.
    assert set(ids(await found(corpus, "fox lazy or tomatoes -water"))) == {1004}


async def test_keyset_paging_across_equal_ranks(corpus: App) -> None:
    """Five posts of equal rank, two a page: each once, by id descending, in both
    directions (the rank in each cursor compares equal to the rank computed again)."""
    pages, after = [], None
    while True:
        result = await found(corpus, "zucchini", first=2, after=after)
        pages.append(ids(result))
        info = result["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == [[1011, 1010], [1009, 1008], [1007]]
    assert len({edge["rank"] for edge in result["edges"]}) == 1
    back = await found(corpus, "zucchini", last=2, before=result["pageInfo"]["startCursor"])
    assert ids(back) == [1009, 1008] and back["pageInfo"]["hasPreviousPage"]


async def test_paging_past_better_ranks(corpus: App) -> None:
    first = await found(corpus, "gardening", first=1)
    rest = await found(corpus, "gardening", first=5, after=first["pageInfo"]["endCursor"])
    assert ids(first) + ids(rest) == [1001, 1002]
    assert rest["pageInfo"] == {**rest["pageInfo"], "hasNextPage": False, "hasPreviousPage": True}


@pytest.mark.parametrize(
    ("reader", "sees"), [(None, False), (OTHER, False), (OWNER, True), (ADMIN_ID, True)]
)
async def test_a_draft_is_found_only_by_who_may_see_it(
    corpus: App, reader: int | None, sees: bool
) -> None:
    assert (1006 in ids(await found(corpus, "garden", as_user=reader))) is sees
    assert (1006 in ids(await found(corpus, "zucchini", as_user=reader, first=100))) is sees


async def test_the_snippet_marks_matches_and_escapes_the_text(corpus: App) -> None:
    [edge] = (await found(corpus, "fox -dog"))["edges"]
    snippet = edge["snippet"]
    assert "<mark>fox</mark>" in snippet
    # The post's own markup never comes through as markup: SQLite's passage has it escaped,
    # PostgreSQL's parser reads tags as tags, which ts_headline leaves out.
    assert "<script" not in snippet and "&amp; more" in snippet
    [edge] = (await found(corpus, "published"))["edges"]
    assert "<mark>published</mark>" in edge["snippet"]
    [edge] = (await found(corpus, "tips"))["edges"]  # in the title alone
    assert edge["snippet"].startswith("Water the tomatoes") and "<mark>" not in edge["snippet"]


@pytest.mark.parametrize(
    ("q", "problem"),
    [
        ("", "EMPTY"),
        ("   ", "EMPTY"),
        ("?! ... --", "NO_WORDS"),
        ("-fox", "ONLY_EXCLUSIONS"),
        ("fox OR -dog", "ONLY_EXCLUSIONS"),
        ("x" * 201, "TOO_LONG"),
    ],
)
async def test_a_query_with_nothing_to_search_is_a_typed_error(
    corpus: App, q: str, problem: str
) -> None:
    result = await found(corpus, q)
    assert result["__typename"] == "InvalidSearchQuery"
    assert result["problem"] == problem and result["query"] == q and result["message"]


async def test_stop_words_alone_are_a_typed_error_on_postgresql(corpus: App) -> None:
    result = await found(corpus, "the over")
    if corpus.settings.is_sqlite:  # FTS5 has no stop words: they are words like any other
        assert 1004 in ids(result)
    else:
        assert result["__typename"] == "InvalidSearchQuery" and result["problem"] == "NO_WORDS"
    assert ids(await found(corpus, "nothingmatchesthis")) == []


@pytest.mark.parametrize(
    "q", ['fox" OR NEAR(', "title:fox", "fox AND", "NOT fox", 'a"b', "*", "fox -", "OR fox OR"]
)
async def test_engine_syntax_in_the_text_is_never_an_error(corpus: App, q: str) -> None:
    """Operators of either engine are words or punctuation here (an FTS5 column filter,
    ``NEAR``, an unbalanced quote); only the module's own syntax means anything."""
    result = await found(corpus, q)
    assert result["__typename"] in ("PostSearchConnection", "InvalidSearchQuery")


@pytest.mark.parametrize("q", ["fox*", "^fox", "(fox", "fox'", "fox -", "OR fox OR"])
async def test_punctuation_around_a_word_is_ignored(corpus: App, q: str) -> None:
    assert 1012 in ids(await found(corpus, q))


async def test_invalid_characters_and_foreign_cursors(corpus: App) -> None:
    assert (await found(corpus, "fox\x00"))["problem"] == "INVALID_CHARACTER"
    page = await corpus.data("{ posts(first: 1) { pageInfo { endCursor } } }")
    body = await corpus.gql(SEARCH, {"q": "fox", "after": page["posts"]["pageInfo"]["endCursor"]})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


NESTED = """query($first: Int!) {
  searchPosts(query: "zucchini OR gardening OR fox", first: $first) {
    ... on PostSearchConnection {
      edges { cursor rank snippet node { title author { name } tags { name }
        comments(first: 2) { nodes { body author { name } } } } }
    }
  }
}"""


async def test_statements_are_flat_in_the_page_size(corpus: App) -> None:
    counts = []
    for first in (1, 3, 9):
        corpus.statements.clear()
        data = await corpus.data(NESTED, {"first": first})
        assert len(data["searchPosts"]["edges"]) == first
        counts.append(corpus.count())
    # The page, then one statement each: authors, tags, comments, the comments' authors.
    assert counts == [counts[0]] * 3 and counts[0] <= 5


async def test_a_search_runs_on_the_breadth_first_executor(
    corpus: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nested fields batch through the plan, not graphql-core's fallback."""
    runs = []
    original = BreadthFirst.run

    async def spy(self: BreadthFirst) -> Any:
        runs.append(1)
        return await original(self)

    monkeypatch.setattr(BreadthFirst, "run", spy)
    await corpus.data(NESTED, {"first": 2})
    assert runs == [1]


async def test_the_index_is_kept_in_step_with_writes(corpus: App) -> None:
    async with corpus.engine.begin() as conn:
        await conn.execute(text("UPDATE posts SET title = 'Pumpkin tips' WHERE id = 1001"))
        await conn.execute(text("DELETE FROM posts WHERE id = 1002"))
    assert ids(await found(corpus, "pumpkin")) == [1001]
    assert ids(await found(corpus, "gardening")) == []


def test_the_response_cache_knows_a_search_reads_posts() -> None:
    schema = build_schema(Settings())
    document = parse_document(
        '{ searchPosts(query: "x") { ... on PostSearchConnection { edges { rank } } } }'
    )
    assert "posts" in tables_of(selected_types(schema._schema, document))


def test_the_query_is_written_safely_for_fts5() -> None:
    query = parse('fox "brown dog" -cat OR "or" -"x y" NEAR(a)')
    assert query.fts5_match() == (
        '(("fox" AND "brown dog") NOT "cat") OR (("or" AND "NEAR a") NOT "x y")'
    )
    assert query.websearch_text() == '"fox" "brown dog" -"cat" or "or" "NEAR a" -"x y"'
    with pytest.raises(InvalidSearch) as caught:
        parse("OR or")
    assert caught.value.problem is Problem.NO_WORDS


async def test_postgresql_reads_the_gin_index(corpus: App) -> None:
    if corpus.settings.is_sqlite:
        pytest.skip("PostgreSQL's plan; FTS5 is an index itself")
    args = PageArgs(ordering=ORDERING, limit=10, backwards=False)
    statement = search.page_statement(False, visible_posts(None), args, frozenset(), True)
    sql = statement.params({search.SEARCH: '"fox"'}).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    async with corpus.engine.begin() as conn:
        # The corpus is a few pages of rows: a sequential scan is cheaper there, so the
        # planner is told to avoid one, as it would on 100,000 posts.
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))
    assert "ix_posts_search_vector" in plan, plan


def test_the_page_size_is_costed_as_on_every_connection() -> None:
    """``first`` multiplies down the nesting (``schema.engine.limits``), edges and nodes
    adding nothing of their own."""
    schema = build_schema(Settings())._schema
    document = parse_document(
        '{ searchPosts(query: "x", first: 7) { ... on PostSearchConnection { '
        "edges { node { comments(first: 3) { nodes { body } } } } nodes { title } } } }"
    )
    [operation] = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    found = measure(schema, operation, {}, {}, default_page_size=20, max_page_size=100)
    assert found.cost == 7 + 7 * 3
