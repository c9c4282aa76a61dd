"""The event outbox: every event is a row written with its change, and nothing is missed.

Subscribers resume after the last event id they saw; a queue that overflows while its client
reads is filled in from the outbox; a process whose LISTEN connection was cut delivers what
was committed meanwhile once it is back: in order, each once. Real server processes, real
WebSockets, both databases.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from schema.live import Event, EventKind, outbox
from schema.live.postgres import CHANNEL
from tests.conftest import OTHER, OWNER, TEST_SECRET, app_settings, prepare_write_db
from tests.live import Live, live_server
from tests.test_subscriptions import ADD_COMMENT, gql, new_post, subscribed
from tests.truth import pk
from tests.wsclient import GraphQLWS, metric, wait_for_metric, ws_client

COMMENTS = """subscription($p: ID!, $after: ID) {
  commentAdded(postId: $p, afterEventId: $after) { body } }"""


async def comment(live: Live, post: str, body: str) -> None:
    answer = await gql(live, ADD_COMMENT, OTHER, p=post, b=body)
    assert answer["data"]["addComment"]["__typename"] == "CommentPayload", answer


async def bodies(client: GraphQLWS, count: int) -> list[tuple[str, int]]:
    """The next ``count`` results' comment bodies, each with its event id."""
    found = []
    for _ in range(count):
        payload = await client.next_payload()
        assert "errors" not in payload, payload
        found.append(
            (payload["data"]["commentAdded"]["body"], int(payload["extensions"]["eventId"]))
        )
    return found


async def nothing_more(client: GraphQLWS) -> None:
    with pytest.raises(TimeoutError):
        await client.receive(seconds=0.5)


async def test_each_result_carries_its_event_id_and_a_subscriber_resumes_after_it(
    live: Live,
) -> None:
    post = await new_post(live, OWNER, publish=True)
    async with ws_client(live.base) as client:
        await subscribed(live, client, COMMENTS, p=post)
        await comment(live, post, "one")
        [(body, seen)] = await bodies(client, 1)
        assert body == "one"
    # Gone for a while: two comments are committed meanwhile (and an event of another kind).
    await comment(live, post, "two")
    await new_post(live, OWNER, publish=True)
    await comment(live, post, "three")
    async with ws_client(live.base) as client:
        await subscribed(live, client, COMMENTS, p=post, after=str(seen))
        missed = await bodies(client, 2)
        await comment(live, post, "four")
        [live_one] = await bodies(client, 1)
        await nothing_more(client)
    assert [b for b, _ in missed] == ["two", "three"]
    assert live_one[0] == "four"
    ids = [seen, *(i for _, i in missed), live_one[1]]
    assert ids == sorted(set(ids)), ids  # increasing: commit order, no repeats


async def test_a_resume_from_a_pruned_event_is_refused_with_events_expired(live: Live) -> None:
    post = await new_post(live, OWNER, publish=True)
    async with ws_client(live.base) as client:
        await subscribed(live, client, COMMENTS, p=post)
        await comment(live, post, "soon forgotten")
        [(_, seen)] = await bodies(client, 1)
        await comment(live, post, "the newest event, which pruning always keeps")
    async with AsyncSession(live.engine) as session:
        assert await outbox.prune(session, retention=0) >= 1
    cases = [
        (str(seen), "EVENTS_EXPIRED"),
        (str(seen + 1_000_000), "BAD_USER_INPUT"),  # no event has that id (yet)
        ("not-an-id", "BAD_USER_INPUT"),
    ]
    for after, code in cases:
        async with ws_client(live.base) as client:
            await client.subscribe(COMMENTS, {"p": post, "after": after})
            payload = await client.next_payload()
            assert payload["data"] is None
            assert payload["errors"][0]["extensions"]["code"] == code, payload
            assert (await client.receive())["type"] == "complete"


async def test_a_reading_subscriber_whose_queue_overflows_still_gets_every_event_once(
    fresh_db_url: str,
) -> None:
    """Twelve events in one transaction reach a queue of four at once: the queue overflows
    while the client is reading, and the subscriber reads the rest from the outbox."""
    await prepare_write_db(fresh_db_url)
    engine = create_async_engine(app_settings(fresh_db_url).database_url)
    env = {"DATABASE_URL": fresh_db_url, "JWT_SECRET": TEST_SECRET, "SUBSCRIPTION_QUEUE_SIZE": "4"}
    try:
        with live_server(**env) as base:
            live = Live(base, fresh_db_url, engine, TEST_SECRET)
            post = await new_post(live, OWNER, publish=True)
            many = (
                "mutation($p: ID!) {"
                + " ".join(
                    f'c{n}: addComment(input: {{postId: $p, body: "c{n}"}}) {{ __typename }}'
                    for n in range(12)
                )
                + "}"
            )
            async with ws_client(base) as client:
                await subscribed(live, client, COMMENTS, p=post)
                answer = await gql(live, many, OTHER, p=post)
                assert answer["extensions"]["transaction"] == "committed", answer
                got = await bodies(client, 12)
                await nothing_more(client)
            gaps = await asyncio.to_thread(metric, base, "inkwell_subscription_gaps")
    finally:
        await engine.dispose()
    assert [b for b, _ in got] == [f"c{n}" for n in range(12)]
    assert [i for _, i in got] == sorted({i for _, i in got})
    assert gaps >= 1


async def test_events_committed_while_the_listener_is_cut_arrive_after_it_reconnects(
    live: Live,
) -> None:
    """The LISTEN connection is terminated from the database side and cannot reconnect for
    a while (the database refuses new connections); three comments commit meanwhile, as
    another server process commits them (the row and its outbox event, on a connection of
    the test's: the server's own commits it delivers as it makes them). Once it is back, the
    subscriber gets them, in order, once."""
    if live.url.startswith("sqlite"):
        pytest.skip("SQLite has no LISTEN connection: events are delivered in-process")
    post = await new_post(live, OWNER, publish=True)
    database = make_url(live.url).database
    admin = create_async_engine(
        make_url(live.url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )

    async def allow_connections(allowed: bool) -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {allowed}'))

    try:
        async with ws_client(live.base) as client:
            await subscribed(live, client, COMMENTS, p=post)
            await comment(live, post, "before")
            assert [b for b, _ in await bodies(client, 1)] == ["before"]
            async with live.engine.connect() as held:  # opened before connections are refused
                await allow_connections(False)
                ended = await held.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'inkwell-listener' "
                        "AND datname = current_database()"
                    )
                )
                assert ended.all() == [(True,)]
                await held.commit()  # pg_stat_activity is read once per transaction
                for n in range(3):
                    await comment_elsewhere(held, post, f"while cut {n}")
                await asyncio.sleep(0.5)  # the listener is retrying meanwhile
                assert await _listening(held, "inkwell-listener") == 0
                await allow_connections(True)
            got = await bodies(client, 3)
            await comment(live, post, "after")
            got += await bodies(client, 1)
            await nothing_more(client)
    finally:
        await allow_connections(True)
        await admin.dispose()
    assert [b for b, _ in got] == ["while cut 0", "while cut 1", "while cut 2", "after"]
    assert [i for _, i in got] == sorted({i for _, i in got})


async def comment_elsewhere(conn: Any, post: str, body: str) -> None:
    """Commit a comment by ``OTHER`` on ``post`` (a global ID) on ``conn`` (an
    ``AsyncConnection``), with its outbox event and notification, as another server process
    does (``outbox.write_postgres``)."""
    post_id = pk(post)
    author = await conn.scalar(text("SELECT author_id FROM posts WHERE id = :p"), {"p": post_id})
    row = await conn.scalar(
        text("INSERT INTO comments (post_id, author_id, body) VALUES (:p, :a, :b) RETURNING id"),
        {"p": post_id, "a": OTHER, "b": body},
    )
    async with AsyncSession(bind=conn) as session:
        event = Event(EventKind.COMMENT_ADDED, row, post_id, author, True)
        await outbox.write_postgres(session, CHANNEL, [event])
    await conn.commit()


async def _listening(conn: Any, application: str) -> int:
    found = await conn.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = :a AND datname = current_database()"
        ),
        {"a": application},
    )
    return int(found.scalar_one())


async def sse_events(
    live: Live, post: str, count: int, last_event_id: str | None = None, after_send: Any = None
) -> list[tuple[str, str]]:
    """Subscribe over Server-Sent Events; the first ``count`` ``next`` events as (id, body),
    calling ``after_send()`` (a coroutine function) once the stream has begun."""
    headers = {"accept": "text/event-stream"}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    found: list[tuple[str, str]] = []
    body = {"query": COMMENTS, "variables": {"p": post}}
    async with (
        httpx.AsyncClient(base_url=live.base, timeout=30) as client,
        client.stream("POST", "/graphql", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        if after_send is not None:
            await wait_for_metric(live.base, "inkwell_subscriptions_active", 1)
            await after_send()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if fields.get("event") == "next":
                data = json.loads(fields["data"])
                assert "errors" not in data, data
                found.append((fields["id"], data["data"]["commentAdded"]["body"]))
                if len(found) == count:
                    break
            fields = {}
    return found


async def test_server_sent_events_carry_ids_and_resume_from_last_event_id(live: Live) -> None:
    post = await new_post(live, OWNER, publish=True)
    [(seen, body)] = await sse_events(
        live, post, 1, after_send=lambda: comment(live, post, "first")
    )
    assert body == "first" and seen.isdigit()
    await comment(live, post, "second")
    await comment(live, post, "third")
    # An EventSource reconnecting sends the last id it received.
    missed = await sse_events(live, post, 2, last_event_id=seen)
    assert [b for _, b in missed] == ["second", "third"]
    assert int(seen) < int(missed[0][0]) < int(missed[1][0])


async def test_the_outbox_is_written_only_inside_the_transaction_of_its_events(
    write_db_url: str,
) -> None:
    """On PostgreSQL the outbox's statement runs on the session's driver connection: outside
    a transaction it would commit on its own, before (or without) the change it announces,
    so it is refused; inside one it commits or rolls back with that transaction."""
    if write_db_url.startswith("sqlite"):
        pytest.skip("SQLite's outbox is written through the session (outbox.write)")
    engine = create_async_engine(write_db_url)
    event = Event(EventKind.POST_UPDATED, 1, 1, OWNER, True)
    count = text("SELECT count(*) FROM events")
    try:
        async with AsyncSession(engine) as session:
            before = await session.scalar(count)
            await session.commit()  # the count's transaction ends: none is open now
            with pytest.raises(RuntimeError, match="in the transaction"):
                await outbox.write_postgres(session, CHANNEL, [event])
            await session.scalar(count)  # begins one, as a mutation's first statement does
            [written] = await outbox.write_postgres(session, CHANNEL, [event])
            assert written.event_id > 0
            await session.rollback()
            assert await session.scalar(count) == before
    finally:
        await engine.dispose()


async def test_two_processes_committing_at_once_deliver_every_event_once_in_order(
    live: Live,
) -> None:
    """Two server processes commit comments on one post concurrently. Each delivers its own
    commit as it makes it when that commit is next in order (``PostgresBroker.committed``),
    and reads the outbox for the rest; a subscriber on each process gets all of them, each
    once, in event id order, and both see the same sequence."""
    if live.url.startswith("sqlite"):
        pytest.skip("one process per SQLite database: events are in-process")
    post = await new_post(live, OWNER, publish=True)
    each = 15
    with live_server(DATABASE_URL=live.url, JWT_SECRET=TEST_SECRET) as other:
        there = replace(live, base=other)
        async with ws_client(live.base) as here_client, ws_client(other) as there_client:
            await subscribed(live, here_client, COMMENTS, p=post)
            await subscribed(there, there_client, COMMENTS, p=post)

            async def writes(process: Live, name: str) -> None:
                for n in range(each):
                    await comment(process, post, f"{name} {n}")

            async with asyncio.timeout(60):  # an event lost or held back fails, not hangs
                await asyncio.gather(
                    writes(live, "here"), writes(live, "here too"), writes(there, "there")
                )
                got_here = await bodies(here_client, 3 * each)
                got_there = await bodies(there_client, 3 * each)
            await nothing_more(here_client)
            await nothing_more(there_client)
    assert got_here == got_there
    ids = [event_id for _, event_id in got_here]
    assert ids == sorted(set(ids))  # in order, each once
    names = {body for body, _ in got_here}
    expected = {f"{name} {n}" for name in ("here", "here too", "there") for n in range(each)}
    assert names == expected
