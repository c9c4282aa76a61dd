"""Hostile and broken mutation input: each is a clear error, and the database is unchanged."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import OWNER, App
from tests.test_mutations import create_post
from tests.truth import digest

UPDATE = """mutation($i: UpdatePostInput!) { updatePost(input: $i) { __typename
  ... on ValidationError { fieldErrors { field message } }
  ... on NotFound { nodeId message } } }"""


def gid(type_name: str, pk: int | str) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


@pytest.mark.parametrize(
    ("case", "input", "expected"),
    [
        (
            "unknown id",
            {"id": gid("Post", 999_999), "expectedVersion": 1, "title": "x"},
            {
                "__typename": "NotFound",
                "nodeId": gid("Post", 999_999),
                "message": "No Post has this ID.",
            },
        ),
        (
            "malformed global id",
            {"id": "%%%not-base64", "expectedVersion": 1},
            {"field": "id", "message": "`id` is not a valid global ID: '%%%not-base64'."},
        ),
        (
            "another type's id",
            {"id": gid("Comment", 1), "expectedVersion": 1},
            {
                "field": "id",
                "message": f"`id` must be a Post ID, but '{gid('Comment', 1)}' is a 'Comment' ID.",
            },
        ),
        (
            "id out of range",
            {"id": str(2**63), "expectedVersion": 1},
            {"field": "id", "message": f"`id` is out of range: '{2**63}'."},
        ),
        (
            "300 KB title",
            {"id": "1", "expectedVersion": 1, "title": "x" * 300_000},
            {"field": "title", "message": "Use at most 200 characters (this is 300000)."},
        ),
        (
            "lone surrogate",
            {"id": "1", "expectedVersion": 1, "content": "\ud800"},
            {
                "field": "content",
                "message": "Contains a character that cannot be stored (NUL or a lone surrogate).",
            },
        ),
        (
            "null title",
            {"id": "1", "expectedVersion": 1, "title": None},
            {"field": "title", "message": "Must not be null."},
        ),
    ],
)
async def test_bad_ids_and_text_are_typed_errors(
    write_app: App, case: str, input: dict[str, Any], expected: dict[str, Any]
) -> None:
    await create_post(write_app)
    before = await digest(write_app.engine)
    # json.dumps escapes the lone surrogate as \\ud800, as a JavaScript client would send it.
    response = await write_app.client.post(
        "/graphql",
        content=json.dumps({"query": UPDATE, "variables": {"i": input}}),
        headers={"content-type": "application/json", **_auth(write_app)},
    )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    result = body["data"]["updatePost"]
    if expected.get("__typename") == "NotFound":
        assert result == expected
    else:
        assert result["__typename"] == "ValidationError"
        assert result["fieldErrors"] == [expected]
    assert await digest(write_app.engine) == before


async def test_a_megabyte_title_is_refused_whole_and_nothing_changes(write_app: App) -> None:
    await create_post(write_app)
    before = await digest(write_app.engine)
    big = {"i": {"id": "1", "expectedVersion": 1, "title": "x" * 1_100_000}}
    response = await write_app.client.post(
        "/graphql", json={"query": UPDATE, "variables": big}, headers=_auth(write_app)
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert await digest(write_app.engine) == before


def _auth(app: App) -> dict[str, str]:
    from tests.conftest import bearer

    return bearer(app.settings, OWNER)


@pytest.mark.parametrize(
    ("query", "variables", "fragment"),
    [
        (UPDATE, {"i": {"id": "1", "expectedVersion": "two"}}, "Int cannot represent"),
        (UPDATE, {"i": {"id": "1"}}, "expectedVersion"),
        (UPDATE, {"i": {"id": "1", "expectedVersion": 1, "bogus": True}}, "bogus"),
        ("mutation { createPost(input: {title: 5}) { __typename } }", {}, "String cannot"),
        ("mutation { createPost { __typename } }", {}, "is required, but it was not provided"),
        ("mutation { deletePost(input: {id: 1}) { id } }", {}, "Cannot query field 'id'"),
    ],
)
async def test_wrong_types_are_graphql_errors_before_anything_runs(
    write_app: App, query: str, variables: dict[str, Any], fragment: str
) -> None:
    before = await digest(write_app.engine)
    response = await write_app.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=_auth(write_app)
    )
    body = response.json()
    assert response.status_code in (200, 400)
    assert body.get("data") is None
    assert fragment in body["errors"][0]["message"]
    # Variables are coerced when execution starts: nothing ran, nothing was committed.
    assert body.get("extensions", {}).get("transaction") in (None, "rolled_back")
    assert await digest(write_app.engine) == before


async def test_a_tampered_token_cannot_write(write_app: App) -> None:
    before = await digest(write_app.engine)
    token = _auth(write_app)["Authorization"]
    tampered = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    response = await write_app.client.post(
        "/graphql",
        json={"query": 'mutation { createPost(input: {title: "x"}) { __typename } }'},
        headers={"Authorization": tampered},
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await digest(write_app.engine) == before
