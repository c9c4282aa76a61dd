"""Each event's result is made when the event arrives, not when a subscriber gets to it
(``schema.live.prepared``): in-process, through Starlette's test client, on both databases."""

from __future__ import annotations

import asyncio
import gc
import time
from contextlib import ExitStack
from typing import Any

import pytest
from graphql.execution.collect_fields import FieldDetails
from starlette.testclient import TestClient

from schema.auth.tokens import issue_token
from schema.live import prepared
from schema.live.events import EventKind
from server import create_app
from tests.conftest import OTHER, OWNER, app_settings, prepare_write_db
from tests.test_subscriptions import ADD_COMMENT, COMMENT_ADDED, publish_post

#: How long each result's read is held up here (seconds).
HELD = 0.3


def subscribed(http: TestClient, stack: ExitStack, post: str, count: int) -> list[Any]:
    """``count`` WebSockets (closed with ``stack``), each following ``post``'s new comments,
    once the server has registered them all."""
    sockets = []
    for _ in range(count):
        ws = stack.enter_context(
            http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
        )
        ws.send_json({"type": "connection_init", "payload": {}})
        assert ws.receive_json()["type"] == "connection_ack"
        payload = {"query": COMMENT_ADDED, "variables": {"p": post}}
        ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        sockets.append(ws)
    while http.app.state.broker.subscription_count < count:  # type: ignore[attr-defined]
        time.sleep(0.01)
    return sockets


def test_events_results_are_made_as_they_arrive_and_then_let_go(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three comments committed one after another, each result's read held up for ``HELD``
    seconds: the three are read at the same time (a subscriber does not read its events
    one after the other), reach both subscribers in commit order, and once sent nothing of
    them is kept on the process's recent deliveries."""
    busy, most = 0, 0
    authenticate = prepared.authenticate

    async def held_up(ctx: Any, token: str | None) -> Any:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        try:
            await asyncio.sleep(HELD)
            return await authenticate(ctx, token)
        finally:
            busy -= 1

    monkeypatch.setattr(prepared, "authenticate", held_up)
    asyncio.run(prepare_write_db(fresh_db_url))
    settings = app_settings(fresh_db_url, sql_stats=False)
    with TestClient(create_app(settings)) as http, ExitStack() as stack:
        broker = http.app.state.broker  # type: ignore[attr-defined]
        owner = {"Authorization": f"Bearer {issue_token(settings, OWNER).token}"}
        other = {"Authorization": f"Bearer {issue_token(settings, OTHER).token}"}
        post = publish_post(http, owner, "Arrivals")
        sockets = subscribed(http, stack, post, 2)
        for n in range(3):
            body = {"query": ADD_COMMENT, "variables": {"p": post, "b": f"Arrival {n}"}}
            http.post("/graphql", json=body, headers=other)
        for ws in sockets:
            bodies = [ws.receive_json()["payload"]["data"]["commentAdded"] for _ in range(3)]
            assert [b["body"] for b in bodies] == ["Arrival 0", "Arrival 1", "Arrival 2"]
        assert most >= 2, "each event's result was made only once the previous one was sent"
        deliveries = broker.recent(0, EventKind.COMMENT_ADDED)
        assert len(deliveries) == 3
        assert all(not d.prepared and not d.readers for d in deliveries)


def test_a_long_subscription_keeps_nothing_per_event(fresh_db_url: str) -> None:
    """Events to a subscription that stays open leave no graphql-core state behind: each
    event's executor is built afresh (graphql-core's per-event copies shared a memo of
    collected subfields with the subscription's executor, one entry per event, for as long
    as it lasted). Counted as live ``FieldDetails`` after 10 and after 40 events."""
    asyncio.run(prepare_write_db(fresh_db_url))
    settings = app_settings(fresh_db_url, sql_stats=False)
    with TestClient(create_app(settings)) as http:
        owner = {"Authorization": f"Bearer {issue_token(settings, OWNER).token}"}
        post = publish_post(http, owner, "Long")
        with ExitStack() as stack:
            [ws] = subscribed(http, stack, post, 1)

            def events(first: int, last: int) -> int:
                for n in range(first, last):
                    body = {"query": ADD_COMMENT, "variables": {"p": post, "b": f"Long {n}"}}
                    http.post("/graphql", json=body, headers=owner)
                    got = ws.receive_json()["payload"]["data"]["commentAdded"]["body"]
                    assert got == f"Long {n}"
                gc.collect()
                return sum(1 for o in gc.get_objects() if type(o) is FieldDetails)

            after_10 = events(0, 10)
            after_40 = events(10, 40)
    assert after_40 <= after_10 + 5, f"{after_40 - after_10} more FieldDetails for 30 events"
