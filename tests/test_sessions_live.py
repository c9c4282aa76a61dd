"""A changed password ends the account's other sessions on every server process: two
processes over one PostgreSQL database, each remembering its viewers (the viewer cache),
which hear of the change through the account-change notifications (SQLite: one process)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.conftest import OWNER, TEST_SECRET
from tests.live import Live, graphql_body, live_server
from tests.test_sessions import CHANGE, LOGIN, PASSWORD, VIEWER, email_of_engine

#: Within what the viewer cache's bound allows (``VIEWER_CACHE_SECONDS``, 60 s by default):
#: a notification usually arrives within milliseconds.
DELIVERY_SECONDS = 5.0


def _post(base: str, query: str, variables: dict[str, Any], token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = httpx.post(
        f"{base}/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return graphql_body(response)


def _statements(base: str, token: str) -> int:
    """The statements a signed-in request costs on ``base``: 0 when it remembers the viewer,
    else 1 (the viewer's row)."""
    body = _post(base, "{ __typename }", {}, token)
    assert body["data"] == {"__typename": "Query"}, body
    return int(body["extensions"]["sql"]["statements"])


async def test_a_changed_password_ends_the_other_sessions_on_another_process(
    live: Live,
) -> None:
    if live.url.startswith("sqlite"):
        pytest.skip("one process per SQLite database, which reads its viewer per request")
    email = await email_of_engine(live.engine, OWNER)
    credentials = {"e": email, "p": PASSWORD, "d": None}
    this = _post(live.base, LOGIN, credentials, None)["data"]["login"]
    other = _post(live.base, LOGIN, credentials, None)["data"]["login"]
    with live_server(DATABASE_URL=live.url, JWT_SECRET=TEST_SECRET) as second:
        # The second process remembers both sessions: a request costs it no statement (once
        # its LISTEN connection is up, which may come just after it answers /healthz).
        deadline = time.monotonic() + DELIVERY_SECONDS
        for token in (this["token"], other["token"]):
            while _statements(second, token) != 0:
                assert time.monotonic() < deadline, "the other process does not remember"
                await asyncio.sleep(0.05)
        changed = _post(live.base, CHANGE, {"c": PASSWORD, "n": "a new password"}, this["token"])
        payload = changed["data"]["changePassword"]
        assert payload["__typename"] == "AuthPayload"
        # Refused on the other process as soon as the notification arrives, well within
        # the cache's bound: the other session (signed out) and this session's old token.
        refused: dict[str, str] = {}
        deadline = time.monotonic() + DELIVERY_SECONDS
        while len(refused) < 2:
            assert time.monotonic() < deadline, f"still accepted on the other process: {refused}"
            for name, token in (("other", other["token"]), ("old", this["token"])):
                body = _post(second, VIEWER, {}, token)
                if body["data"] is None:
                    refused[name] = body["errors"][0]["message"]
            await asyncio.sleep(0.01)
        assert refused["other"].startswith("This session has ended")
        assert refused["old"].startswith("The account's password changed")
        # The new token works there too.
        assert _statements(second, payload["token"]) == 1
        assert _statements(second, payload["token"]) == 0
        body = _post(second, VIEWER, {}, payload["token"])
        assert body["data"] == {"viewer": {"databaseId": str(OWNER)}}
