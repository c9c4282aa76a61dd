"""The response cache across server processes: a commit on one instance is never served
stale by another (``schema.engine.response_cache``). With Redis, the next read after the
mutation's response is fresh; without it, within ``EVENT_BOUND_SECONDS`` (polled with that
deadline, never timed otherwise)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from schema.engine.response_cache import EVENT_BOUND_SECONDS
from tests.conftest import OWNER, TEST_SECRET, app_settings, bearer
from tests.live import live_server
from tests.test_response_cache import REDIS, RENAME, USER, redis_prefix

__all__ = ["redis_prefix"]  # the fixture, used here too


def read(base: str) -> tuple[str, str]:
    """User 2's name as ``base`` answers anonymously, and whether it came from its cache."""
    response = httpx.post(f"{base}/graphql", json={"query": USER})
    assert response.status_code == 200, response.text
    return response.json()["data"]["user"]["name"], response.headers["x-cache"]


def rename(base: str, url: str, name: str, version: int) -> None:
    headers = bearer(app_settings(url), OWNER)
    body = {"query": RENAME, "variables": {"name": name, "v": version}}
    answer = httpx.post(f"{base}/graphql", json=body, headers=headers).json()
    assert answer["data"]["updateUser"]["__typename"] == "UserPayload", answer


def warm(base: str) -> str:
    """Read until ``base`` answers from its cache; returns the name it holds."""
    name, _ = read(base)
    again, cached = read(base)
    assert (again, cached) == (name, "HIT")
    return name


def env(url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "JWT_SECRET": TEST_SECRET,
        "RESPONSE_CACHE": "true",
        "SQL_STATS": "false",
        **extra,
    }


def test_with_redis_the_other_instance_is_fresh_once_the_mutation_answered(
    write_db_url: str, redis_prefix: str
) -> None:
    shared = env(write_db_url, REDIS_URL=REDIS, RESPONSE_CACHE_REDIS_PREFIX=redis_prefix)
    with live_server(**shared) as one, live_server(**shared) as other:
        for version, name in enumerate(("First", "Second", "Third"), start=1):
            assert warm(other) != name
            rename(one, write_db_url, name, version)
            # No waiting: the commit's positions were in Redis before its response.
            assert read(other) == (name, "MISS")
            assert read(other) == (name, "HIT")
            assert read(one)[0] == name


def test_without_redis_the_other_instance_is_fresh_within_the_bound(
    write_db_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serves from one process: tests/test_response_cache.py")
    with live_server(**env(write_db_url)) as one, live_server(**env(write_db_url)) as other:
        for version, name in enumerate(("First", "Second"), start=1):
            assert warm(other) != name
            rename(one, write_db_url, name, version)
            deadline = time.monotonic() + EVENT_BOUND_SECONDS
            seen: Any = None
            while time.monotonic() < deadline:
                seen, _ = read(other)
                if seen == name:
                    break
                time.sleep(0.05)
            assert seen == name, f"still {seen!r} {EVENT_BOUND_SECONDS} s after the commit"
            assert read(other) == (name, "HIT")
