"""The Redis the suite shares state through: 127.0.0.1:6379, on every machine and in CI.

Tests that use it keep to keys of their own (a random prefix per test), as parallel workers
and other runs share it. A Redis that is missing fails them, never skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_client() -> Iterator[Any]:
    """A synchronous client of ``REDIS`` for checking what the server left there."""
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:  # CI runs Redis: a missing one is a failure, not a skip
        pytest.fail(f"these tests need Redis at {REDIS}: {exc}")
    yield client
    client.close()


def the_outage_line(caplog: pytest.LogCaptureFixture) -> str:
    """The one line the process logged of Redis being unreachable (``inkwell.redis``);
    fails unless there is exactly one."""
    lines = [r.getMessage() for r in caplog.records if r.name == "inkwell.redis"]
    assert len(lines) == 1, lines
    return lines[0]
