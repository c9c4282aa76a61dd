"""What clients key on at the HTTP level: status codes and headers for refused credentials,
methods and operations, caching of persisted-query GETs, which requests get GraphiQL, and
subscriptions sent over HTTP (streams only when asked for and only for subscriptions)."""

from __future__ import annotations

import json

import httpx
import pytest

from schema.engine.extensions.persisted_queries import sha256
from schema.transport.streams import streams
from tests.conftest import OWNER, App, app_settings, bearer, running_app

GRAPHQL_RESPONSE = "application/graphql-response+json"
QUERY = "{ users(first: 1) { totalCount } }"
PERSISTED = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha256(QUERY)}})
#: What urql sends on every request, queries included.
URQL_ACCEPT = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


async def test_a_refused_token_is_401_with_a_bearer_challenge_under_both_media_types(
    api: App,
) -> None:
    for accept in ("application/json", GRAPHQL_RESPONSE):
        response = await api.client.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"authorization": "Bearer not-a-token", "accept": accept},
        )
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert codes(response) == ["UNAUTHENTICATED"]


async def test_parse_and_validation_errors_carry_apollos_codes(api: App) -> None:
    for query, code in (
        ("{ users(", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
    ):
        response = await api.client.post("/graphql", json={"query": query})
        assert codes(response) == [code]
        response = await api.client.post(
            "/graphql", json={"query": query}, headers={"accept": GRAPHQL_RESPONSE}
        )
        assert response.status_code == 400 and codes(response) == [code]


async def test_a_mutation_over_get_is_405_with_allow_post(write_app: App) -> None:
    response = await write_app.client.get(
        "/graphql", params={"query": 'mutation { createPost(input: {title: "x"}) { __typename } }'}
    )
    assert response.status_code == 405 and response.headers["allow"] == "POST"


async def test_several_operations_without_a_name_are_a_request_error(write_app: App) -> None:
    document = """mutation Write { createPost(input: {title: "never"}) { __typename } }
                  query Read { viewer { id } }"""
    response = await write_app.client.post(
        "/graphql",
        json={"query": document},
        headers={"accept": GRAPHQL_RESPONSE, **bearer(write_app.settings, OWNER)},
    )
    assert response.status_code == 400 and codes(response) == ["BAD_REQUEST"]
    assert "operationName" in response.json()["errors"][0]["message"]
    named = await write_app.client.post(
        "/graphql", json={"query": document, "operationName": "Read"}
    )
    assert named.json()["data"] == {"viewer": None}
    assert write_app.count() == 0 or "INSERT" not in " ".join(write_app.statements)


async def test_persisted_query_gets_are_cacheable_only_where_safe(read_db_url: str) -> None:
    async with running_app(app_settings(read_db_url)) as api:  # anonymous
        await _check_caching(api)


async def _check_caching(api: App) -> None:
    async def get(**headers: str) -> httpx.Response:
        return await api.client.get("/graphql", params={"extensions": PERSISTED}, headers=headers)

    miss = await get()
    assert codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert miss.headers["cache-control"] == "no-store"
    await api.client.post("/graphql", json={"query": QUERY, "extensions": json.loads(PERSISTED)})
    hit = await get(accept="*/*")  # a script or a CDN, not a browser asking for a page
    assert hit.json()["data"]["users"]["totalCount"] == 61
    assert (
        hit.headers["cache-control"]
        == f"public, max-age={api.settings.public_cache_max_age_seconds}"
    )
    assert {"accept", "authorization"} <= {
        v.strip().lower() for v in hit.headers["vary"].split(",")
    }
    signed_in = await get(**bearer(api.settings, OWNER))
    assert signed_in.headers["cache-control"] == "private, no-store"
    with_text = await api.client.get("/graphql", params={"query": QUERY})
    assert with_text.headers["cache-control"] == "no-store"
    posted = await api.client.post("/graphql", json={"query": QUERY})
    assert "cache-control" not in posted.headers


async def test_graphiql_only_for_a_browser_asking_for_a_page(api: App) -> None:
    page = await api.client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
    assert page.headers["content-type"].startswith("text/html")
    for params in ({"query": QUERY}, {}):
        response = await api.client.get("/graphql", params=params, headers={"accept": "*/*"})
        assert response.headers["content-type"].startswith("application/json"), params


async def test_a_query_from_a_client_that_also_reads_streams_gets_json(api: App) -> None:
    response = await api.client.get(
        "/graphql", params={"query": QUERY}, headers={"accept": URQL_ACCEPT}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json()["data"]["users"]["totalCount"] == 61
    refused = await api.client.get(
        "/graphql",
        params={"query": QUERY},
        headers={"accept": URQL_ACCEPT, "authorization": "Bearer bad"},
    )
    assert refused.status_code == 401


async def test_a_subscription_outside_a_stream_is_a_clear_400(api: App) -> None:
    subscription = 'subscription { postUpdated(id: "UG9zdDox") { title } }'
    for send in (
        api.client.post("/graphql", json={"query": subscription}),
        api.client.get("/graphql", params={"query": subscription}),
    ):
        response = await send
        assert response.status_code == 400, response.text
        [error] = response.json()["errors"]
        assert "text/event-stream" in error["message"] and "WebSocket" in error["message"]


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("subscription { postDeleted(id: 1) { deletedId } }", URQL_ACCEPT, True),
        ("{ viewer { id } }", URQL_ACCEPT, False),
        ("{ viewer { id } }", "text/event-stream", True),  # graphql-sse: a query as a stream
        ("{ viewer { id } }", "multipart/mixed, application/json;q=0", True),
        ("subscription {", URQL_ACCEPT, False),  # does not parse: the JSON error says why
        (None, URQL_ACCEPT, False),  # a persisted query by hash alone
    ],
)
def test_a_stream_only_for_a_subscription_or_a_client_that_reads_no_json(
    query: str | None, accept: str, expected: bool
) -> None:
    assert streams(query, None, accept, max_tokens=1000) is expected


@pytest.mark.parametrize(
    ("body", "accept"),
    [
        (b'{"query": "{ viewer { id } }"}', None),
        (
            b'{"query": "query Q($n: Int) { a }", "variables": {"n": 1}, "operationName": "Q"}',
            "*/*",
        ),
        (b'{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}', None),
        (b'{"query": "{ a }", "variables": null, "extensions": null}', "application/json"),
        (b'{"query": "subscription { s }"}', "text/event-stream, application/json"),
        (b'{"query": "{ a }"}', "multipart/mixed;subscriptionSpec=1.0, application/json"),
        (b'{"query": 1}', None),
        (b'{"query": "{ a }", "variables": [1]}', None),
        (b'{"query": "{ a }", "extensions": "x"}', None),
        (b'[{"query": "{ a }"}]', None),
        (b"[]", None),
        (b"not json", None),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_the_json_shortcut_reads_a_body_as_strawberry_does(
    body: bytes, accept: str | None, content_type: str
) -> None:
    # GraphQLApp.parse_http_body reads a plain JSON POST itself (no email.message parses):
    # the same request data, or the same refusal, as Strawberry's own reading.
    from cross_web import HTTPException, StarletteRequestAdapter
    from starlette.requests import Request
    from strawberry.asgi import GraphQL

    from schema import build_schema
    from schema.transport.view import GraphQLApp

    settings = app_settings("sqlite+aiosqlite:///:memory:")
    view = GraphQLApp(build_schema(settings), settings)

    def adapter() -> StarletteRequestAdapter:
        headers = [(b"content-type", content_type.encode())]
        if accept is not None:
            headers.append((b"accept", accept.encode()))
        scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": headers}

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        return StarletteRequestAdapter(Request(scope, receive))

    async def outcome(parse: object) -> object:
        try:
            data = await parse(adapter())  # type: ignore[operator]
        except HTTPException as refused:
            return (refused.status_code, refused.reason)
        return data if isinstance(data, list) else vars(data)

    ours = await outcome(view.parse_http_body)
    strawberrys = await outcome(lambda request: GraphQL.parse_http_body(view, request))
    if accept is not None and "subscription" not in body.decode():
        # Strawberry streams a query whose Accept names a stream; Inkwell answers it as JSON
        # (schema.transport.streams): the one intended difference.
        assert isinstance(strawberrys, dict) and isinstance(ours, dict)
        if strawberrys["protocol"] != "http":
            strawberrys["protocol"] = "http"
    assert ours == strawberrys


@pytest.mark.parametrize("body", [b'"text"', b"1", b"null", b"true"])
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_a_json_body_that_is_not_an_object_is_a_clear_400(
    api: App, body: bytes, content_type: str
) -> None:
    response = await api.client.post(
        "/graphql", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "message": "The request body must be a JSON object: one GraphQL request.",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]
