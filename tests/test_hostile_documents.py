"""Hostile documents (issue 19) are refused right after parsing, before validation, and error
messages carry no hint of the schema when introspection is off."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from graphql import DocumentNode, get_introspection_query, parse

from schema.engine.extensions import validated_documents
from schema.engine.extensions.parsed_documents import LONGEST, TextCache, unlink_tokens
from tests.conftest import App, app_settings, running_app
from tests.live import Live
from tests.wsclient import ws_client


def unique() -> str:
    """An operation name no other request used: no cache can have seen the text."""
    return "Q" + uuid.uuid4().hex


def fan_out(levels: int = 30) -> str:
    """1.2 KB whose fragments spread each other twice: 2^30 fields once expanded."""
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return (
        f"query {unique()} {{ ...F0 }} {fragments} "
        f"fragment F{levels} on Query {{ posts(first: 1) {{ totalCount }} }}"
    )


def same_field(times: int = 4_900) -> str:
    """About 29 KB: one field repeated (under ``MAX_TOKENS``)."""
    return f'query {unique()} {{ post(id: "1") {{ {"title " * times}}} }}'


def deep_through_fragments(levels: int = 8) -> str:
    """Each fragment nests three fields and spreads the next: depth 3 x ``levels`` + 2."""
    fragments = " ".join(
        f"fragment D{i} on User {{ posts(first: 1) {{ nodes {{ author {{ ...D{i + 1} }} }} }} }}"
        for i in range(levels)
    )
    return (
        f"query {unique()} {{ viewer {{ ...D0 }} }} {fragments} "
        f"fragment D{levels} on User {{ name }}"
    )


CYCLE = (
    "query {name} {{ viewer {{ ...A }} }} "
    "fragment A on User {{ ...B }} fragment B on User {{ ...A }}"
)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every validation run during the test: graphql-core's ``validate`` as
    ``ValidatedDocuments`` calls it, and Strawberry's own, should it ever validate."""
    calls: list[object] = []

    def spy(original: Any) -> Any:
        def counted(*args: Any, **options: Any) -> Any:
            calls.append(args[1])
            return original(*args, **options)

        return counted

    monkeypatch.setattr(validated_documents, "validate", spy(validated_documents.validate))
    monkeypatch.setattr(
        strawberry_schema, "validate_document", spy(strawberry_schema.validate_document)
    )
    yield calls


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None, body
    [error] = body["errors"]
    return error  # type: ignore[no-any-return]


async def test_a_fragment_fan_out_is_refused_before_validation(
    api: App, validations: list[object]
) -> None:
    for _ in range(3):  # each text new: no cache helps
        error = refusal(await api.gql(fan_out()))
        assert error["extensions"] == {
            "code": "TOO_MANY_SELECTIONS",
            "limit": 2000,
            "actual": 2**32 - 1,  # the fields, and every spread on the way
        }
        assert error["message"].startswith("The document selects 4,294,967,295 fields and ")
    assert validations == [] and api.count() == 0


async def test_the_same_field_thousands_of_times_is_refused_before_validation(
    api: App, validations: list[object]
) -> None:
    error = refusal(await api.gql(same_field()))
    assert error["extensions"] == {"code": "TOO_MANY_SELECTIONS", "limit": 2000, "actual": 4901}
    assert error["message"] == (
        "The document selects 4,901 fields and fragments once its fragments are expanded; "
        "at most 2,000."
    )
    # An unused fragment is validated all the same, so it counts too.
    unused = f"query {unique()} {{ viewer {{ id }} }} fragment U on Post {{ {'title ' * 2500}}}"
    assert refusal(await api.gql(unused))["extensions"]["code"] == "TOO_MANY_SELECTIONS"
    assert validations == [] and api.count() == 0


async def test_a_fragment_cycle_and_deep_nesting_are_refused_before_validation(
    api: App, validations: list[object]
) -> None:
    error = refusal(await api.gql(CYCLE.format(name=unique())))
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert error["message"] == "Cannot spread fragment 'A' within itself."
    error = refusal(await api.gql(deep_through_fragments()))
    assert error["extensions"] == {"code": "QUERY_TOO_DEEP", "limit": 12, "actual": 26}
    assert error["message"] == "The operation nests fields 26 deep; at most 12."
    deep = f"query {unique()} {{ viewer {{ " + "posts(first: 1) { nodes { author { " * 5
    deep += "name" + " } } }" * 5 + " } }"
    assert refusal(await api.gql(deep))["extensions"]["code"] == "QUERY_TOO_DEEP"
    aliases = f"query {unique()} {{ ...V }} fragment V on Query {{ "
    aliases += " ".join(f"a{i}: viewer {{ id }}" for i in range(31)) + " }"
    assert refusal(await api.gql(aliases))["extensions"]["code"] == "TOO_MANY_ALIASES"
    assert validations == [] and api.count() == 0


async def test_queries_with_fragments_still_run(api: App, validations: list[object]) -> None:
    relay_like = f"""query {unique()} {{
        users(first: 2) {{ ...Users }} again: users(first: 2) {{ ...Users }}
        posts(first: 2) {{ nodes {{ ...PostCard author {{ ...UserName }} }} }}
    }}
    fragment Users on UserConnection {{ nodes {{ ...UserName posts(first: 2) {{
        nodes {{ ...PostCard }} }} }} }}
    fragment PostCard on Post {{ id title tags {{ name }} ... on Node {{ id }} }}
    fragment UserName on User {{ id name }}"""
    data = await api.data(relay_like)
    assert len(data["users"]["nodes"]) == 2 and data["again"] == data["users"]
    deep_enough = deep_through_fragments(levels=3)  # 11 deep
    assert "viewer" in await api.data(deep_enough)
    introspection = await api.data(get_introspection_query(descriptions=True))
    assert introspection["__schema"]["queryType"]["name"] == "Query"
    assert len(validations) == 3


async def test_validation_stops_after_ten_errors(api: App) -> None:
    mistakes = f"query {unique()} {{ viewer {{ " + " ".join(f"x{i}" for i in range(40)) + " } }"
    body = await api.gql(mistakes)
    messages = [error["message"] for error in body["errors"]]
    assert len(messages) == 11, messages
    assert messages[-1] == "Too many validation errors, error limit reached. Validation aborted."


@pytest.mark.parametrize("introspection", [False, True])
async def test_no_suggestions_when_introspection_is_off(
    read_db_url: str, introspection: bool
) -> None:
    settings = app_settings(read_db_url, environment="production", introspection=introspection)
    async with running_app(settings) as app:
        body = await app.gql('{ postz(id: "1") { title } }')
        [field_error] = body["errors"]
        body = await app.gql('{ post(idd: "1") { title } }')
        argument_errors = body["errors"]
        # A variable's value is checked as the operation executes, not in validation.
        ordered = "query($o: PostOrder) { posts(first: 1, orderBy: $o) { totalCount } }"
        body = await app.gql(ordered, {"o": {"field": "TITEL"}})
        [variable_error] = body["errors"]
    assert field_error["message"].startswith("Cannot query field 'postz' on type 'Query'.")
    assert "'TITEL'" in variable_error["message"]
    messages = [
        field_error["message"],
        variable_error["message"],
        *(e["message"] for e in argument_errors),
    ]
    suggested = [m for m in messages if "Did you mean" in m]
    assert bool(suggested) is introspection, messages
    if introspection:
        assert "Did you mean 'post' or 'posts'?" in field_error["message"]
        assert "Did you mean the enum value 'TITLE'?" in variable_error["message"]


async def test_a_subscription_is_refused_before_validation_too(live: Live) -> None:
    deep = "subscription { postPublished { " + "author { posts(first: 1) { nodes { " * 4
    deep += "title" + " } } }" * 4 + " } }"
    async with ws_client(live.base) as client:
        subscription = await client.subscribe(deep)
        # Refused before execution, like a syntax or validation error: the protocol's
        # ``error`` message, which ends the operation.
        refused = await client.receive()
        assert refused["type"] == "error" and refused["id"] == subscription
        assert refused["payload"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"


def test_the_document_caches_are_bounded_in_characters() -> None:
    cache: TextCache[str] = TextCache(entries=100, characters=1000, longest=400)
    for i in range(20):
        cache.put(f"text {i}", "value", 300)
        assert cache.size <= 1000
    assert len(cache) == 3 and cache.get("text 19") == "value" and cache.get("text 0") is None
    cache.put("too long", "value", 401)
    assert cache.get("too long") is None


async def test_refused_documents_are_not_kept_alive(api: App) -> None:
    """Neither the parse cache (it keeps no refused document, and none over ``LONGEST``
    characters) nor the limits' memo per document keeps an attacker's documents once their
    requests are over: they cannot push clients' documents out of the cache either."""

    def documents() -> int:
        gc.collect()
        return sum(isinstance(o, DocumentNode) for o in gc.get_objects())

    before = documents()
    for _ in range(20):
        text = same_field(3_000)  # 18 KB
        assert len(text) > LONGEST
        assert refusal(await api.gql(text))["extensions"]["code"] == "TOO_MANY_SELECTIONS"
        assert refusal(await api.gql(fan_out()))["extensions"]["code"] == "TOO_MANY_SELECTIONS"
    # The last operation's record can outlive it in the test's own context (not a server's,
    # where each request has its own): let a small valid document, kept, be the last.
    await api.data("{ __typename }")
    assert documents() <= before + 1


async def test_a_refused_document_leaves_no_reference_cycle(api: App) -> None:
    """A refusal is freed by reference counting as its response goes: neither the document
    (its tokens linked both ways) nor the raised error (its traceback's frames hold the
    operation, which holds the error) waits for the cyclic collector, whose collections of
    hundreds of refused requests' cycles stopped a worker for 125 to 280 ms each."""

    async def cycles_left_by(send: Callable[[], Awaitable[object]]) -> int:
        await send()  # first-use costs (imports, caches) out of the count
        gc.collect()
        gc.disable()
        try:
            for _ in range(10):
                await send()
            return gc.collect()
        finally:
            gc.enable()

    async def refused() -> None:
        assert refusal(await api.gql(fan_out()))["extensions"]["code"] == "TOO_MANY_SELECTIONS"

    async def long_refused() -> None:
        assert refusal(await api.gql(same_field()))["extensions"]["code"] == ("TOO_MANY_SELECTIONS")

    # What the test's HTTP client leaves (httpx's own request and response cycles).
    floor = await cycles_left_by(lambda: api.data("{ __typename }"))
    # Before: about 165 objects more per refusal, and a 29 KB document's 9,800 tokens.
    assert await cycles_left_by(refused) <= floor + 20
    assert await cycles_left_by(long_refused) <= floor + 20


def test_a_parsed_document_is_not_one_reference_cycle() -> None:
    document = unlink_tokens(parse(same_field(100)))
    assert document.loc is not None and document.loc.start_token.next is None
    gc.collect()
    del document
    assert gc.collect() == 0
