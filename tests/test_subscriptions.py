"""Subscriptions over real WebSockets to a real server process: events arrive after commit,
with nested fields, never for a rolled-back change, and only to those who may see them."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import httpx
import pytest
from graphql import OperationType
from graphql.execution.executor import Executor
from sqlalchemy import event
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed

from db.engine import create_engine
from schema.auth.tokens import issue_token
from server import create_app
from tests.conftest import ADMIN_ID, OTHER, OWNER, TEST_SECRET, app_settings, prepare_write_db
from tests.databases import end_listener
from tests.live import Live, live_server
from tests.truth import table
from tests.wsclient import (
    GraphQLWS,
    StalledSubscriber,
    metric,
    post_graphql,
    wait_for_metric,
    ws_client,
)

SUBSCRIBERS = "inkwell_subscriptions_active"

COMMENT_ADDED = """subscription($p: ID!) { commentAdded(postId: $p) {
  id body author { name } post { title } } }"""
POST_PUBLISHED = """subscription($a: ID, $t: String) { postPublished(authorId: $a, tag: $t) {
  title status author { name } tags { name } } }"""
POST_UPDATED = "subscription($id: ID!) { postUpdated(id: $id) { title version } }"
ADD_COMMENT = """mutation($p: ID!, $b: String!) { addComment(input: {postId: $p, body: $b}) {
  __typename ... on CommentPayload { comment { id } } } }"""
CREATE_POST = """mutation($t: String!, $tags: [String!]!) {
  createPost(input: {title: $t, tagNames: $tags, publish: true}) {
    __typename ... on PostPayload { post { id } } } }"""
UPDATE_POST = """mutation($id: ID!, $v: Int!, $t: String!) {
  updatePost(input: {id: $id, expectedVersion: $v, title: $t}) { __typename } }"""


async def new_post(
    live: Live, author: int, *, publish: bool, title: str = "A post", tags: tuple[str, ...] = ()
) -> str:
    """Create a post as ``author`` over HTTP; returns its global ID."""
    body = await gql(
        live,
        """mutation($i: CreatePostInput!) { createPost(input: $i) {
             ... on PostPayload { post { id } } } }""",
        author,
        i={"title": title, "publish": publish, "tagNames": list(tags)},
    )
    return str(body["data"]["createPost"]["post"]["id"])


async def subscribed(live: Live, client: GraphQLWS, query: str, **variables: Any) -> str:
    """Subscribe and wait until the server has registered the subscription."""
    before = await asyncio.to_thread(_active, live.base)
    operation = await client.subscribe(query, variables)
    await wait_for_metric(live.base, SUBSCRIBERS, before + 1)
    return operation


def _active(base: str) -> float:
    return metric(base, SUBSCRIBERS)


async def gql(live: Live, query: str, user: int | None = None, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.base, timeout=30) as client:
        headers = live.headers(user) if user is not None else None
        return await post_graphql(client, query, variables, headers=headers)


async def test_a_committed_comment_reaches_the_subscriber_with_nested_fields(live: Live) -> None:
    post = await new_post(live, OWNER, publish=True, title="Commented on")
    async with ws_client(live.base) as client:
        await subscribed(live, client, COMMENT_ADDED, p=post)
        body = await gql(live, ADD_COMMENT, OTHER, p=post, b="Live and kicking")
        assert body["data"]["addComment"]["__typename"] == "CommentPayload", body
        event = await client.next_payload()
    assert "errors" not in event, event
    comment = event["data"]["commentAdded"]
    assert comment["id"] == body["data"]["addComment"]["comment"]["id"]
    assert comment["body"] == "Live and kicking"
    assert comment["post"]["title"] == "Commented on"
    [author] = await table(live.engine, "SELECT name FROM users WHERE id = :u", u=OTHER)
    assert comment["author"]["name"] == author["name"]


async def test_a_rolled_back_mutation_publishes_nothing(live: Live) -> None:
    failing = """mutation { kept: createPost(input: {title: "Never seen", publish: true}) {
        __typename }
      broken: updatePost(input: {id: "UG9zdDo5OTk5OTk=", expectedVersion: 1, title: "x"}) {
        __typename } }"""
    async with ws_client(live.base) as client:
        await subscribed(live, client, POST_PUBLISHED, a=str(OWNER))
        body = await gql(live, failing, OWNER)
        assert body["extensions"]["transaction"] == "rolled_back", body
        # A later, committed post is the first (and only) event the subscriber gets.
        await new_post(live, OWNER, publish=True, title="Committed")
        event = await client.next_payload()
        assert event["data"]["postPublished"]["title"] == "Committed"
        with pytest.raises(TimeoutError):
            await client.receive(seconds=0.5)


async def test_post_published_filters_by_tag_and_resolves_author_and_tags(live: Live) -> None:
    async with ws_client(live.base) as client:
        await subscribed(live, client, POST_PUBLISHED, t=" LIVE ")
        await new_post(live, OTHER, publish=True, title="Off topic", tags=("other",))
        await new_post(live, OWNER, publish=False, title="A draft", tags=("live",))
        await new_post(live, OWNER, publish=True, title="On topic", tags=("Live", "news"))
        event = (await client.next_payload())["data"]["postPublished"]
    [owner] = await table(live.engine, "SELECT name FROM users WHERE id = :u", u=OWNER)
    assert event == {
        "title": "On topic",
        "status": "PUBLISHED",
        "author": {"name": owner["name"]},
        "tags": [{"name": "live"}, {"name": "news"}],
    }


async def test_draft_events_reach_only_the_author_and_admins(live: Live) -> None:
    draft = await new_post(live, OWNER, publish=False, title="Secret")
    async with (
        ws_client(live.base, token=live.token(OTHER)) as other,
        ws_client(live.base, token=live.token(OWNER)) as owner,
        ws_client(live.base, token=live.token(ADMIN_ID)) as admin,
        ws_client(live.base) as anonymous,
    ):
        for client in (other, owner, admin, anonymous):
            await subscribed(live, client, POST_UPDATED, id=draft)
        await gql(live, UPDATE_POST, OWNER, id=draft, v=1, t="Still secret")
        for client in (owner, admin):
            event = await client.next_payload()
            assert event["data"]["postUpdated"] == {"title": "Still secret", "version": 2}
        # Once it is published, everyone hears of it: the first event the others get.
        publish = "mutation($id: ID!) { publishPost(input: {id: $id}) { __typename } }"
        await gql(live, publish, OWNER, id=draft)
        for client in (other, anonymous):
            event = await client.next_payload()
            assert event["data"]["postUpdated"] == {"title": "Still secret", "version": 3}


async def test_a_deleted_drafts_event_reaches_only_its_author(live: Live) -> None:
    draft = await new_post(live, OWNER, publish=False)
    deleted = "subscription($id: ID!) { postDeleted(id: $id) { deletedId } }"
    async with (
        ws_client(live.base, token=live.token(OWNER)) as owner,
        ws_client(live.base, token=live.token(OTHER)) as other,
    ):
        await subscribed(live, owner, deleted, id=draft)
        await subscribed(live, other, deleted, id=draft)
        delete = "mutation($id: ID!) { deletePost(input: {id: $id}) { __typename } }"
        await gql(live, delete, OWNER, id=draft)
        assert (await owner.next_payload())["data"]["postDeleted"] == {"deletedId": draft}
        with pytest.raises(TimeoutError):
            await other.receive(seconds=0.5)


async def test_comments_on_a_draft_are_not_delivered_to_other_members(live: Live) -> None:
    draft = await new_post(live, OWNER, publish=False)
    async with (
        ws_client(live.base, token=live.token(OWNER)) as owner,
        ws_client(live.base, token=live.token(OTHER)) as other,
    ):
        await subscribed(live, owner, COMMENT_ADDED, p=draft)
        await subscribed(live, other, COMMENT_ADDED, p=draft)
        await gql(live, ADD_COMMENT, OWNER, p=draft, b="Note to self")
        assert (await owner.next_payload())["data"]["commentAdded"]["body"] == "Note to self"
        with pytest.raises(TimeoutError):
            await other.receive(seconds=0.5)


async def test_a_deactivated_subscribers_subscription_ends_unauthenticated(live: Live) -> None:
    post = await new_post(live, OWNER, publish=True)
    async with ws_client(live.base, token=live.token(OTHER)) as other:
        await subscribed(live, other, POST_UPDATED, id=post)
        deactivate = "mutation($id: ID!) { deactivateUser(input: {id: $id}) { __typename } }"
        await gql(live, deactivate, ADMIN_ID, id=str(OTHER))
        await gql(live, UPDATE_POST, OWNER, id=post, v=1, t="News")
        event = await other.next_payload()
        assert event["data"] is None
        assert event["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await other.receive())["type"] == "complete"


async def test_bad_credentials_on_connection_init_close_the_socket(live: Live) -> None:
    async with ws_client(live.base, init=False) as client:
        await client.send(
            {"type": "connection_init", "payload": {"authorization": "Bearer not-a-token"}}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_invalid_arguments_end_the_subscription_with_a_clear_error(live: Live) -> None:
    async with ws_client(live.base) as client:
        await client.subscribe(POST_UPDATED, {"id": "not an id"})
        event = await client.next_payload()
        assert event["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert (await client.receive())["type"] == "complete"


async def test_the_legacy_graphql_ws_protocol_delivers_too(live: Live) -> None:
    post = await new_post(live, OWNER, publish=True)
    async with ws_client(live.base, legacy=True) as client:
        await subscribed(live, client, COMMENT_ADDED, p=post)
        await gql(live, ADD_COMMENT, OTHER, p=post, b="Old school")
        event = await client.next_payload()
    assert event["data"]["commentAdded"]["body"] == "Old school"


async def test_a_mutation_over_the_socket_commits_in_its_own_unit_of_work(live: Live) -> None:
    post = await new_post(live, OWNER, publish=True)
    async with ws_client(live.base, token=live.token(OTHER)) as client:
        await subscribed(live, client, COMMENT_ADDED, p=post)
        mutation = await client.subscribe(ADD_COMMENT, {"p": post, "b": "Over the socket"})
        answers: dict[str, dict[str, Any]] = {}
        while len(answers) < 2:
            message = await client.receive()
            if message["type"] == "next":
                answers[message["id"]] = message["payload"]
    assert answers[mutation]["extensions"]["transaction"] == "committed"
    assert answers[mutation]["data"]["addComment"]["__typename"] == "CommentPayload"
    event = next(payload for key, payload in answers.items() if key != mutation)
    assert event["data"]["commentAdded"]["body"] == "Over the socket"


async def test_closing_the_socket_ends_its_subscriptions(live: Live) -> None:
    async with ws_client(live.base) as client:
        for _ in range(3):
            await subscribed(live, client, POST_PUBLISHED)
    deadline = asyncio.get_running_loop().time() + 10
    while await asyncio.to_thread(_active, live.base) > 0:
        assert asyncio.get_running_loop().time() < deadline, "subscriptions outlived the socket"
        await asyncio.sleep(0.05)


FAN_OUT_SUBSCRIBERS = 200
FAN_OUT_EVENTS = 50
COMMENT_IDS = "subscription($p: ID!) { commentAdded(postId: $p) { id } }"
#: Ten copies of a 100 KB post in every event: 1 MB an event for a subscriber to fall behind on.
COPIES = " ".join(f"c{n}: content" for n in range(10))
COMMENT_WITH_POST = (
    f"subscription($p: ID!) {{ commentAdded(postId: $p) {{ id post {{ {COPIES} }} }} }}"
)


async def test_every_subscriber_gets_every_event_in_commit_order(live: Live) -> None:
    """200 subscribers, 50 committed comments: each subscriber gets all 50, in the order they
    committed, none twice; one more subscriber, who never reads (and asks for 1 MB per event),
    holds nobody up."""
    post = await new_post(live, OWNER, publish=True)
    content = "x" * 99_000
    await gql(
        live,
        "mutation($id: ID!, $c: String!) { updatePost(input: {id: $id, expectedVersion: 1, "
        "content: $c}) { __typename } }",
        OWNER,
        id=post,
        c=content,
    )

    async def follow(client: GraphQLWS) -> list[str]:
        ids = []
        for _ in range(FAN_OUT_EVENTS):
            payload = await client.next_payload(seconds=120)
            ids.append(payload["data"]["commentAdded"]["id"])
        return ids

    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(ws_client(live.base))
            for _ in range(FAN_OUT_SUBSCRIBERS)
        ]
        stalled = StalledSubscriber(live.base)
        stack.callback(stalled.close)
        stalled.subscribe(COMMENT_WITH_POST, {"p": post})
        for client in clients:
            await client.subscribe(COMMENT_IDS, {"p": post})
        await wait_for_metric(live.base, SUBSCRIBERS, FAN_OUT_SUBSCRIBERS + 1)
        followers = [asyncio.create_task(follow(client)) for client in clients]
        committed = []
        for n in range(FAN_OUT_EVENTS):
            body = await gql(live, ADD_COMMENT, OTHER, p=post, b=f"Comment {n}")
            committed.append(body["data"]["addComment"]["comment"]["id"])
        received = await asyncio.gather(*followers)
    assert len(set(committed)) == FAN_OUT_EVENTS
    for ids in received:
        assert ids == committed


async def test_a_subscriber_that_stops_reading_is_ended_not_waited_for(
    fresh_db_url: str,
) -> None:
    """With a queue of 4, a subscriber that never reads (1 MB an event) overflows once its
    socket has been full for SUBSCRIPTION_STALL_SECONDS and is ended, while a reading one
    gets every event as it commits."""
    await prepare_write_db(fresh_db_url)
    engine = create_engine(app_settings(fresh_db_url))
    env = {
        "DATABASE_URL": fresh_db_url,
        "JWT_SECRET": TEST_SECRET,
        "SUBSCRIPTION_QUEUE_SIZE": "4",
        "SUBSCRIPTION_STALL_SECONDS": "0.2",
    }
    try:
        with live_server(**env) as base:
            live = Live(base, fresh_db_url, engine, TEST_SECRET)
            post = await new_post(live, OWNER, publish=True)
            update = """mutation($id: ID!, $v: Int!, $c: String!) {
              updatePost(input: {id: $id, expectedVersion: $v, content: $c}) { __typename } }"""
            query = f"subscription($id: ID!) {{ postUpdated(id: $id) {{ version {COPIES} }} }}"
            stalled = StalledSubscriber(base)
            try:
                async with ws_client(base) as reader:
                    stalled.subscribe(query, {"id": post})
                    await wait_for_metric(base, SUBSCRIBERS, 1)
                    await subscribed(
                        live,
                        reader,
                        "subscription($id: ID!) { postUpdated(id: $id) { version } }",
                        id=post,
                    )
                    for version in range(1, 31):
                        await gql(live, update, OWNER, id=post, v=version, c=f"{version:99000}")
                        event = await reader.next_payload()
                        assert event["data"]["postUpdated"]["version"] == version + 1
                        await asyncio.sleep(0.05)  # 1.5 s in all: the stalled socket stays full
                    assert metric(base, "inkwell_subscriptions_overflowed") == 1
                    assert metric(base, SUBSCRIBERS) == 1  # the reader's
            finally:
                stalled.close()
    finally:
        await engine.dispose()


async def test_a_mutation_on_one_process_reaches_a_subscriber_on_another(live: Live) -> None:
    if live.url.startswith("sqlite"):
        pytest.skip("one process per SQLite database: events are in-process")
    post = await new_post(live, OWNER, publish=True)
    with live_server(DATABASE_URL=live.url, JWT_SECRET=TEST_SECRET) as other_process:
        async with ws_client(other_process) as client:
            before = metric(other_process, SUBSCRIBERS)
            await client.subscribe(COMMENT_ADDED, {"p": post})
            await wait_for_metric(other_process, SUBSCRIBERS, before + 1)
            await gql(live, ADD_COMMENT, OTHER, p=post, b="From the other process")
            event = await client.next_payload()
    assert event["data"]["commentAdded"]["body"] == "From the other process"


async def test_the_listener_reconnects_after_losing_its_connection(live: Live) -> None:
    if live.url.startswith("sqlite"):
        pytest.skip("SQLite has no LISTEN connection")
    post = await new_post(live, OWNER, publish=True)
    async with ws_client(live.base) as client:
        await subscribed(live, client, COMMENT_ADDED, p=post)
        await end_listener(live.engine)
        await wait_for_metric(live.base, "inkwell_event_listener_reconnects", 1)
        await wait_for_metric(live.base, "inkwell_event_listener_connected", 1)
        await gql(live, ADD_COMMENT, OTHER, p=post, b="After the restart")
        event = await client.next_payload()
    assert event["data"]["commentAdded"]["body"] == "After the restart"


def publish_post(http: TestClient, headers: dict[str, str], title: str) -> str:
    """Create and publish a post through ``http`` (Starlette's test client) as the viewer
    ``headers`` sign in; returns its global id."""
    created = http.post(
        "/graphql",
        json={
            "query": "mutation($t: String!) { createPost(input: {title: $t, publish: true}) "
            "{ ... on PostPayload { post { id } } } }",
            "variables": {"t": title},
        },
        headers=headers,
    ).json()
    return str(created["data"]["createPost"]["post"]["id"])


def test_subscribers_with_one_viewer_share_each_events_statements(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event costs the same statements for 1 anonymous subscriber as for 20: they read it
    in one shared unit of work, their DataLoader keys batched together (counted with engine
    events, in-process through Starlette's test client); and graphql-core executes their
    selection once, not once per subscriber (``schema.live.prepared``)."""
    executions: list[int] = []
    original = Executor.execute_operation

    def counted(self: Executor, *args: Any, **kwargs: Any) -> Any:
        if self.operation.operation is OperationType.SUBSCRIPTION:
            executions.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Executor, "execute_operation", counted)
    asyncio.run(prepare_write_db(fresh_db_url))
    settings = app_settings(fresh_db_url, sql_stats=False)
    with TestClient(create_app(settings)) as http:
        statements: list[str] = []
        engine = http.app.state.engine  # type: ignore[attr-defined]
        event.listen(
            engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
        owner = {"Authorization": f"Bearer {issue_token(settings, OWNER).token}"}
        other = {"Authorization": f"Bearer {issue_token(settings, OTHER).token}"}
        post = publish_post(http, owner, "Shared")
        # The commenter's viewer, read now: where the viewer cache is fed, later requests
        # read it no more, so both counts below are of the same work.
        http.post("/graphql", json={"query": "{ __typename }"}, headers=other)

        def statements_per_event(subscribers: int, n: int) -> int:
            with ExitStack() as stack:
                sockets = [
                    stack.enter_context(
                        http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
                    )
                    for _ in range(subscribers)
                ]
                for ws in sockets:
                    ws.send_json({"type": "connection_init", "payload": {}})
                    assert ws.receive_json()["type"] == "connection_ack"
                    payload = {"query": COMMENT_ADDED, "variables": {"p": post}}
                    ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
                while http.app.state.broker.subscription_count < subscribers:  # type: ignore[attr-defined]
                    time.sleep(0.01)
                body = {"query": ADD_COMMENT, "variables": {"p": post, "b": f"Shared {n}"}}
                statements.clear()
                executions.clear()
                http.post("/graphql", json=body, headers=other)
                for ws in sockets:
                    message = ws.receive_json()
                    assert message["payload"]["data"]["commentAdded"]["body"] == f"Shared {n}"
                    assert message["payload"]["extensions"]["eventId"].isdigit()
                assert len(executions) == 1, f"{len(executions)} executions for {subscribers}"
                return len(statements)

        assert statements_per_event(20, 1) == statements_per_event(1, 2)


async def test_socket_limits_init_timeout_operation_cap_and_server_pings(
    fresh_db_url: str,
) -> None:
    await prepare_write_db(fresh_db_url)
    env = {
        "DATABASE_URL": fresh_db_url,
        "JWT_SECRET": TEST_SECRET,
        "WS_INIT_TIMEOUT_SECONDS": "0.5",
        "MAX_SUBSCRIPTIONS_PER_CONNECTION": "2",
        "WS_KEEPALIVE_SECONDS": "0.2",
    }
    with live_server(**env) as base:
        async with ws_client(base, init=False) as silent:
            with pytest.raises(ConnectionClosed) as closed:
                await silent.connection.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        async with ws_client(base) as client:
            ping = await asyncio.wait_for(client.connection.recv(), 5)
            assert json.loads(ping) == {"type": "ping"}
            for _ in range(2):
                await client.subscribe(POST_PUBLISHED)
            third = await client.subscribe(POST_PUBLISHED)
            refused = await client.receive()
            assert refused["type"] == "error" and refused["id"] == third
            assert "limit" in refused["payload"][0]["message"]


async def test_subscriptions_are_held_to_the_operation_limits(live: Live) -> None:
    costly = """subscription { postPublished { comments(first: 100) { nodes {
      author { posts(first: 100) { nodes { comments(first: 100) { nodes { body } } } } } } } } }"""
    async with ws_client(live.base) as client:
        await client.subscribe(costly)
        refused = await client.next_payload()
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert (await client.receive())["type"] == "complete"
