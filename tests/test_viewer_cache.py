"""The viewer cache: signed-in requests skip the viewer's row, and any change to the account,
by anyone, is seen at once (PostgreSQL's trigger and NOTIFY; SQLite reads per request)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from schema.auth.viewer import Viewer
from schema.auth.viewer_cache import (
    CHANNEL,
    EVERYONE,
    SESSION_TRIGGER,
    SESSION_TRUNCATE_TRIGGER,
    TRIGGER,
    TRIGGERS,
    TRUNCATE_TRIGGER,
    ViewerCache,
)
from schema.live import metrics
from tests.conftest import ADMIN_ID, OTHER, OWNER, App, app_settings, prepare_write_db, running_app
from tests.databases import end_listener

VIEWER = "{ viewer { databaseId role } }"
EMAIL = '{ user(id: "3") { email } }'
#: Longest a notification may take to arrive here (it usually takes a millisecond).
DELIVERY_SECONDS = 5.0


class _Connection:
    """An asyncpg connection's ``fetchval`` as the trigger check sees it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    async def fetchval(self, query: str, *args: Any) -> bool:
        assert args == TRIGGERS
        return self.enabled


async def _fed(max_age: float = 60.0) -> ViewerCache:
    cache = ViewerCache(max_age)
    await cache.connected(_Connection(enabled=True))
    return cache


async def test_nothing_is_remembered_until_the_feed_is_up_and_the_trigger_found(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = ViewerCache(60.0)
    cache.put(Viewer(1, "admin"), cache.generation)
    assert cache.get(1) is None and not cache.trusted
    for _ in range(2):  # at start-up, then at a health check: reported once
        await cache.connected(_Connection(enabled=False))
    assert [r.message for r in caplog.records].count(
        f"trigger {TRIGGER} or {TRUNCATE_TRIGGER} on users, or {SESSION_TRIGGER} or "
        f"{SESSION_TRUNCATE_TRIGGER} on sign_in_sessions, is missing or disabled: every request "
        "reads its viewer (run `migrate`)"
    ) == 1
    cache.put(Viewer(1, "admin"), cache.generation)
    assert cache.get(1) is None and not cache.trusted
    await cache.connected(_Connection(enabled=True))
    cache.put(Viewer(1, "admin"), cache.generation)
    assert cache.get(1) == Viewer(1, "admin")
    # The trigger gone (seen at a health check): forgotten, and nothing stored from then on.
    await cache.connected(_Connection(enabled=False))
    assert cache.get(1) is None and not cache.trusted


async def test_a_notification_forgets_its_account_and_any_read_in_flight() -> None:
    cache = await _fed()
    cache.put(Viewer(1, "admin"), cache.generation)
    cache.put(Viewer(2, "member"), cache.generation)
    before = cache.generation  # a read of user 3 begins…
    cache.notified("2")
    cache.put(Viewer(3, "member"), before)  # …and ends after a change: not stored
    assert cache.get(1) == Viewer(1, "admin")
    assert cache.get(2) is None and cache.get(3) is None
    for payload in (EVERYONE, "not an id"):  # a TRUNCATE; something unreadable: everyone
        cache.put(Viewer(1, "admin"), cache.generation)
        cache.notified(payload)
        assert cache.get(1) is None


async def test_losing_the_feed_forgets_everyone_and_entries_expire() -> None:
    cache = await _fed()
    cache.put(Viewer(1, "admin"), cache.generation)
    cache.disconnected()
    assert cache.get(1) is None and not cache.trusted
    cache.put(Viewer(1, "admin"), cache.generation)
    assert cache.get(1) is None
    brief = await _fed(max_age=0.05)
    brief.put(Viewer(1, "admin"), brief.generation)
    assert brief.get(1) == Viewer(1, "admin")
    await asyncio.sleep(0.06)
    assert brief.get(1) is None
    off = await _fed(max_age=0)
    off.put(Viewer(1, "admin"), off.generation)
    assert off.get(1) is None


async def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used() -> None:
    cache = ViewerCache(60.0, max_entries=2)
    await cache.connected(_Connection(enabled=True))
    for user_id in (1, 2):
        cache.put(Viewer(user_id, "member"), cache.generation)
    assert cache.get(1) is not None  # used: 2 is now the least recently used
    cache.put(Viewer(3, "member"), cache.generation)
    assert [cache.get(user_id) is not None for user_id in (1, 2, 3)] == [True, False, True]


async def test_sessions_are_remembered_once_seen_never_for_tokens_older_than_the_password() -> None:
    cache = await _fed()
    cache.put(Viewer(1, "member", 10), cache.generation, changed_at=1000.0)
    assert cache.get(1, 10, 1000.0) == Viewer(1, "member", 10)  # issued at the change: fine
    assert cache.get(1, 10, 999.999999) is None  # issued before the change: read (refused)
    assert cache.get(1, 11, 2000.0) is None  # another session: read once…
    cache.put(Viewer(1, "member", 11), cache.generation, changed_at=1000.0)
    assert cache.get(1, 11, 2000.0) == Viewer(1, "member", 11)  # …then remembered too
    assert cache.get(1, 10, 2000.0) == Viewer(1, "member", 10)
    # A read that disagrees with the entry (a change whose notification is on its way):
    # the entry starts again from it, and the sessions seen before must be read again.
    cache.put(Viewer(1, "member", 12), cache.generation, changed_at=3000.0)
    assert cache.get(1, 12, 3000.0) == Viewer(1, "member", 12)
    assert cache.get(1, 10, 3000.0) is None and cache.get(1, 11, 3000.0) is None
    cache.notified("1")  # a sign-out of any session of the account forgets all of it
    assert cache.get(1, 12, 3000.0) is None


def _postgres_only(app: App) -> None:
    if app.settings.is_sqlite:
        pytest.skip("SQLite has no NOTIFY: every request reads its viewer")


async def _statements_of(app: App, query: str, user_id: int) -> tuple[dict[str, Any], int]:
    app.statements.clear()
    body = await app.gql(query, as_user=user_id)
    return body, app.count()


async def _eventually_unauthenticated(app: App, user_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + DELIVERY_SECONDS
    while True:
        body = await app.gql(VIEWER, as_user=user_id)
        if body["data"] is None or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.01)


async def test_a_remembered_viewer_costs_no_statement(write_app: App) -> None:
    _postgres_only(write_app)
    assert write_app.app.state.viewers.trusted
    body, first = await _statements_of(write_app, "{ __typename }", OWNER)
    assert body["data"] == {"__typename": "Query"} and first == 1  # the viewer's row
    body, again = await _statements_of(write_app, "{ __typename }", OWNER)
    assert body["data"] == {"__typename": "Query"} and again == 0


async def test_a_change_made_outside_the_server_reaches_it_through_the_trigger(
    write_app: App,
) -> None:
    _postgres_only(write_app)
    assert (await write_app.data(EMAIL, as_user=ADMIN_ID))["user"]["email"]
    async with write_app.engine.begin() as conn:  # another application: plain SQL
        await conn.execute(text("UPDATE users SET role = 'member' WHERE id = :id"), {"id": 1})
    deadline = time.monotonic() + DELIVERY_SECONDS
    while (await write_app.data(EMAIL, as_user=ADMIN_ID))["user"]["email"] is not None:
        assert time.monotonic() < deadline, "the demoted admin still sees other emails"
        await asyncio.sleep(0.01)
    assert (await write_app.data(VIEWER, as_user=ADMIN_ID))["viewer"]["role"] == "MEMBER"
    await write_app.data(VIEWER, as_user=OWNER)
    async with write_app.engine.begin() as conn:
        await conn.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": OWNER})
    body = await _eventually_unauthenticated(write_app, OWNER)
    assert body["data"] is None
    assert body["errors"][0]["message"] == "The account of this access token is deactivated."


async def test_the_process_that_changes_an_account_forgets_it_before_answering(
    write_app: App,
) -> None:
    _postgres_only(write_app)
    await write_app.data(VIEWER, as_user=OTHER)
    assert write_app.app.state.viewers.get(OTHER) is not None
    changed = await write_app.data(
        'mutation { deactivateUser(input: {id: "3"}) { __typename } }', as_user=ADMIN_ID
    )
    assert changed["deactivateUser"]["__typename"] == "UserPayload"
    assert write_app.app.state.viewers.get(OTHER) is None  # no notification awaited
    body = await write_app.gql(VIEWER, as_user=OTHER)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("table", "trigger"),
    [
        ("users", TRIGGER),
        ("users", TRUNCATE_TRIGGER),
        ("sign_in_sessions", SESSION_TRIGGER),
        ("sign_in_sessions", SESSION_TRUNCATE_TRIGGER),
    ],
)
async def test_without_any_trigger_every_request_reads_its_viewer(
    fresh_db_url: str, table: str, trigger: str
) -> None:
    if fresh_db_url.startswith("sqlite"):
        pytest.skip("SQLite has no NOTIFY: every request reads its viewer")
    await prepare_write_db(fresh_db_url)
    settings = app_settings(fresh_db_url)
    async with running_app(settings) as app, app.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
    async with running_app(settings) as app:
        assert not app.app.state.viewers.trusted
        for _ in range(2):
            body, statements = await _statements_of(app, "{ __typename }", OWNER)
            assert body["data"] == {"__typename": "Query"} and statements == 1


async def test_a_lost_listener_forgets_everyone_and_trusts_again_once_back(
    write_app: App,
) -> None:
    _postgres_only(write_app)
    viewers = write_app.app.state.viewers
    reconnects = metrics.LISTENER_RECONNECTS._value.get()
    await write_app.data(VIEWER, as_user=OWNER)
    assert viewers.get(OWNER) is not None
    await end_listener(write_app.engine)
    deadline = time.monotonic() + DELIVERY_SECONDS
    while metrics.LISTENER_RECONNECTS._value.get() == reconnects or not viewers.trusted:
        assert time.monotonic() < deadline, "the listener did not come back"
        await asyncio.sleep(0.01)
    # Notifications sent while it was away are lost: what it knew before is forgotten.
    assert viewers.get(OWNER) is None
    body, statements = await _statements_of(write_app, "{ __typename }", OWNER)
    assert body["data"] == {"__typename": "Query"} and statements == 1  # read, not remembered
    assert viewers.get(OWNER) is not None


def test_the_channel_and_triggers_are_the_ones_the_migrations_create() -> None:
    versions = Path(__file__).parent.parent / "db/migrations/versions"
    [accounts] = versions.glob("*-0002_*.py")
    source = accounts.read_text()
    assert f"pg_notify('{CHANNEL}', " in source
    assert f"CREATE TRIGGER {TRIGGER}\n" in source
    assert f"CREATE TRIGGER {TRUNCATE_TRIGGER}\n" in source
    [sessions] = versions.glob("*-0005_*.py")
    source = sessions.read_text()
    assert f"pg_notify('{CHANNEL}', " in source
    assert f"CREATE TRIGGER {TRIGGER}\n" in source  # now also for password changes
    assert f"CREATE TRIGGER {SESSION_TRIGGER}\n" in source
    assert f"CREATE TRIGGER {SESSION_TRUNCATE_TRIGGER}\n" in source


async def test_mutations_read_their_viewer_and_do_not_trust_the_cache(write_app: App) -> None:
    _postgres_only(write_app)
    viewers = write_app.app.state.viewers
    # As if the owner had just been demoted from admin and the notification were on its way.
    viewers.put(Viewer(OWNER, "admin"), viewers.generation)
    shown = await write_app.data(EMAIL, as_user=OWNER)
    assert shown["user"]["email"], "a query is answered from the cache"
    changed = await write_app.data(
        'mutation { updateUser(input: {id: "3", expectedVersion: 1, role: ADMIN}) { __typename } }',
        as_user=OWNER,
    )
    assert changed["updateUser"]["__typename"] == "Forbidden"  # the member the row says
