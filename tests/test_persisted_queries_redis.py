"""With ``REDIS_URL``, automatic persisted queries live in Redis (on 127.0.0.1:6379 here and
in CI), shared by separate server instances; unreachable, each process keeps its own and
says so once (``schema.engine.persisted_store``)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest

from schema.engine.extensions.persisted_queries import sha256
from schema.engine.persisted_store import PREFIX, RedisStore
from schema.engine.redis_link import RedisLink
from tests.conftest import TEST_SECRET, app_settings, running_app
from tests.live import free_port, live_server
from tests.redis_server import REDIS, the_outage_line


def request(document: str | None, digest: str) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if document is not None:
        body["query"] = document
    return body


def unique_document() -> str:
    """A document no other run registered: its hash is new to Redis."""
    return f"query Shared{uuid.uuid4().hex} {{ __typename }}"


def test_two_instances_share_one_registration(write_db_url: str, redis_client: Any) -> None:
    document = unique_document()
    digest = sha256(document)
    env = {"DATABASE_URL": write_db_url, "JWT_SECRET": TEST_SECRET}
    with (
        live_server(**env, REDIS_URL=REDIS, PERSISTED_QUERIES_TTL_SECONDS="600") as one,
        live_server(**env, REDIS_URL=REDIS) as other,
        live_server(**env) as alone,
    ):
        registered = httpx.post(f"{one}/graphql", json=request(document, digest))
        assert registered.json()["data"] == {"__typename": "Query"}
        # The other instance never saw the text: it finds it in Redis.
        recalled = httpx.post(f"{other}/graphql", json=request(None, digest))
        assert recalled.json()["data"] == {"__typename": "Query"}, recalled.text
        # Without Redis, a process knows only what was registered with it.
        missed = httpx.post(f"{alone}/graphql", json=request(None, digest)).json()
        assert missed["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert redis_client.get(PREFIX + digest) == document.encode()
    assert 590 <= redis_client.ttl(PREFIX + digest) <= 600


async def test_redis_unreachable_keeps_them_per_process_with_one_warning(
    read_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = app_settings(read_db_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    caplog.set_level(logging.WARNING, logger="inkwell.redis")
    async with running_app(settings) as app:
        for _ in range(3):
            document = unique_document()
            digest = sha256(document)
            first = await app.client.post("/graphql", json=request(None, digest))
            assert first.json()["errors"][0]["extensions"]["code"] == ("PERSISTED_QUERY_NOT_FOUND")
            for sent in (document, None):  # registered, then recalled: no request fails
                answer = await app.client.post("/graphql", json=request(sent, digest))
                assert answer.json()["data"] == {"__typename": "Query"}
    assert the_outage_line(caplog).startswith("Redis unavailable, persisted queries,")


async def test_redis_is_not_asked_while_the_link_says_it_is_unavailable(
    redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # After any user's failure (here, marked by hand), registrations and recalls stay in the
    # process until ``RETRY_SECONDS`` have passed: no request waits for a Redis timeout.
    link = RedisLink(REDIS)
    asked: list[str] = []
    client = link.client

    async def get(key: str) -> Any:
        asked.append(key)
        return None

    async def set_(key: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(key)

    client.get, client.set = get, set_  # type: ignore[method-assign]
    store = RedisStore(link, ttl=60, size=10)
    try:
        caplog.set_level(logging.WARNING, logger="inkwell.redis")
        link.unreachable(OSError("down"))
        assert not link.available
        await store.put("a" * 64, "{ __typename }")
        assert await store.get("a" * 64) == "{ __typename }"
        assert await store.get("b" * 64) is None
        assert asked == []
        link._retry_at = 0.0  # the retry time has come
        assert link.available
        await store.put("c" * 64, "{ __typename }")
        assert await store.get("b" * 64) is None
        assert asked == [PREFIX + "c" * 64, PREFIX + "b" * 64]
    finally:
        await link.close()
