"""Events across server processes through PostgreSQL's LISTEN/NOTIFY.

A transaction's events are sent with ``pg_notify`` inside it, just before COMMIT. PostgreSQL
delivers a notification only if its transaction commits, to every listening session, in
commit order; so delivery is tied to the commit and no process can see a change that was
rolled back. Each server process keeps one listening connection (outside the pool) and fans
what arrives out to its own subscriptions; that connection is re-established by itself when
it is lost (the database restarted, the backend was terminated).

NOTIFY is not durable: events committed while a process is reconnecting do not reach that
process's subscribers. Identical payloads within one transaction are delivered once.

Other channels can ride on the same connection (``follow``): a ``Feed`` hears when listening
starts, is checked again and stops, so it can tell whether it may have missed anything.
Source: PostgreSQL docs, "NOTIFY" and "LISTEN"; asyncpg docs, ``Connection.add_listener``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import make_url, text

from schema.live import metrics
from schema.live.broker import Broker, Feed, InProcessBroker
from schema.live.events import Event

logger = logging.getLogger("inkwell.live")

#: The NOTIFY channel every Inkwell process on the database listens to.
CHANNEL = "inkwell_events"
#: Seconds between health checks of an idle listening connection (a dead peer that sent no
#: FIN is only noticed by using the connection).
HEALTH_CHECK_SECONDS = 10.0
#: Seconds a health check or a connection attempt may take before the connection is
#: considered lost.
CONNECT_TIMEOUT_SECONDS = 5.0
#: Reconnection back-off: first and longest wait, in seconds.
RETRY_FIRST, RETRY_MAX = 0.1, 5.0
#: Seconds ``start`` waits for the first LISTEN before letting the server start anyway
#: (``/readyz`` reports the database; the listener keeps trying in the background).
START_TIMEOUT_SECONDS = 5.0

#: One statement for all of a transaction's events, sent in the order they were made.
_NOTIFY = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"
)


class PostgresBroker(Broker):
    """``Broker`` over LISTEN/NOTIFY on the database at ``database_url`` (a SQLAlchemy
    ``postgresql+asyncpg://`` URL)."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        url = make_url(database_url)
        self._connect_args: dict[str, Any] = url.translate_connect_args(username="user")
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._feeds: dict[str, Feed] = {}

    def follow(self, channel: str, feed: Feed) -> None:
        self._feeds[channel] = feed

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._listening.is_set()

    async def wait_listening(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the LISTEN connection; True if it is up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._listening.wait()
        return self.listening

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="inkwell-listener")
        if not await self.wait_listening(START_TIMEOUT_SECONDS):
            logger.warning("event listener not connected yet; retrying in the background")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await super().stop()

    async def stage(self, session: Any, events: Sequence[Event]) -> None:
        payloads = [event.encode() for event in events]
        await session.execute(_NOTIFY, {"channel": CHANNEL, "payloads": payloads})

    async def _listen_forever(self) -> None:
        delay, connected_before = RETRY_FIRST, False
        while True:
            try:
                connection = await asyncpg.connect(
                    **self._connect_args,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    server_settings={"application_name": "inkwell-listener"},
                )
            except Exception as exc:  # any failure to connect: try again, never give up
                logger.warning("event listener cannot connect (retry in %.1f s): %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            try:
                await self._listen(connection, reconnected=connected_before)
                connected_before, delay = True, RETRY_FIRST
            except Exception as exc:  # the connection failed: reconnect
                logger.warning("event listener connection lost: %r", exc)
            finally:
                self._listening.clear()
                metrics.LISTENER_CONNECTED.set(0)
                for feed in self._feeds.values():
                    feed.disconnected()
                connection.terminate()

    async def _listen(self, connection: asyncpg.Connection, *, reconnected: bool) -> None:
        """LISTEN on ``connection`` until it is lost (returns) or fails (raises)."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, self._on_notify)
        for channel, feed in self._feeds.items():
            await connection.add_listener(channel, _notifier(feed))
            await feed.connected(connection)
        self._listening.set()
        metrics.LISTENER_CONNECTED.set(1)
        if reconnected:
            metrics.LISTENER_RECONNECTS.inc()
            logger.info("event listener reconnected")
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_CHECK_SECONDS):
                    await lost.wait()
            if not lost.is_set():
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    await connection.execute("SELECT 1")
                    for feed in self._feeds.values():
                        await feed.connected(connection)

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = Event.decode(payload)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed %s notification: %.200r", CHANNEL, payload)
            return
        self.deliver(event)


def _notifier(feed: Feed) -> Any:
    def notify(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        feed.notified(payload)

    return notify


def broker_for(database_url: str) -> Broker:
    """The broker for a database: LISTEN/NOTIFY on PostgreSQL, in-process on SQLite."""
    if database_url.startswith("sqlite"):
        return InProcessBroker()
    return PostgresBroker(database_url)
