"""Events across server processes: the outbox, signalled by PostgreSQL's LISTEN/NOTIFY.

A transaction's events are written to the outbox inside it, just before COMMIT, with one
``pg_notify`` of the highest event id (``schema.live.outbox.write_postgres``). PostgreSQL
delivers a notification only if its transaction commits, to every listening session, in
commit order. Each server process keeps one listening connection (outside the pool, so a
busy pool never delays events) and, when notified, reads the outbox forward from the last
event id it delivered and fans those events out to its own subscriptions. NOTIFY only
signals: what is delivered is what the outbox holds. So when the connection is lost (the
database restarted, the backend was terminated) and re-established by itself, the first read
after it delivers every event committed meanwhile, in order, each once. A process's own
commit that is next in commit order is delivered as it commits (``committed``), and its
notification then has nothing to read: with one process writing (the common case under a
write load), no event costs a read of the outbox.

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
from sqlalchemy import make_url

from schema.live import metrics, outbox
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
        #: The highest event id notified (``last_delivered``, the broker's, is where the
        #: outbox is read from: ``None`` until first connected, then the newest event, as
        #: nobody subscribed before).
        self._notified = 0
        #: Set by a notification, or the connection's loss: the listener has work.
        self._wake = asyncio.Event()

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

    async def stage(self, session: Any, events: Sequence[Event]) -> list[Event]:
        return await outbox.write_postgres(session, CHANNEL, events)

    def committed(self, events: Sequence[Event]) -> None:
        """Deliver this process's own committed ``events`` at once when they are the very
        next ones in commit order (the first id follows the last delivered, and the ids run
        on without a gap), so their own notification then finds nothing left to read.

        The outbox's advisory lock hands out ids one transaction at a time, in commit order:
        once this transaction has committed, every lower id has committed or never will, and
        the higher ones are not visible yet. Events after a gap (another process's commit, or
        an id a failed COMMIT left unused) wait for the notification, whose read of the
        outbox delivers everything in order; so does everything before the listener first
        connects (nothing is delivered yet)."""
        position = self.last_delivered
        if position is None or not events:
            return
        for offset, event in enumerate(events, start=1):
            if event.event_id != position + offset:
                return
        for event in events:
            self.deliver(event)  # moves ``last_delivered``

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
        """LISTEN on ``connection`` and deliver what the outbox gains, until the connection is
        lost (returns) or fails (raises). Only this task uses the connection."""
        lost = asyncio.Event()

        def on_lost(_connection: Any) -> None:
            lost.set()
            self._wake.set()

        connection.add_termination_listener(on_lost)
        # LISTEN first, then read: an event committed in between is both read and notified,
        # and delivered once (its id is not above the position any more).
        await connection.add_listener(CHANNEL, self._on_notify)
        for channel, feed in self._feeds.items():
            await connection.add_listener(channel, _notifier(feed))
            await feed.connected(connection)
        if self.last_delivered is None:
            try:
                latest = await connection.fetchval(outbox.LATEST_SQL)
            except asyncpg.UndefinedTableError:
                # Not migrated yet (``/readyz`` says so): no event was ever written.
                latest = 0
            # From here on, every event is delivered (and, for a while, kept in memory).
            self._recent_after = self.last_delivered = latest
        else:
            caught_up = await self._read_outbox(connection)
            if caught_up:
                metrics.EVENTS_READ_BACK.labels("reconnect").inc(caught_up)
                logger.info("delivered %d events committed while not listening", caught_up)
        self._listening.set()
        metrics.LISTENER_CONNECTED.set(1)
        if reconnected:
            metrics.LISTENER_RECONNECTS.inc()
            logger.info("event listener reconnected")
        checked = asyncio.get_running_loop().time()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_CHECK_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            if lost.is_set():
                return
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                if self._notified > (self.last_delivered or 0):
                    await self._read_outbox(connection)
                elif asyncio.get_running_loop().time() - checked >= HEALTH_CHECK_SECONDS:
                    await connection.execute("SELECT 1")
                    for feed in self._feeds.values():
                        await feed.connected(connection)
                    checked = asyncio.get_running_loop().time()

    async def _read_outbox(self, connection: asyncpg.Connection) -> int:
        """Deliver the outbox's events after the position, oldest first; returns how many.
        An id notified before the read began is committed, so one the read does not find was
        never used (a failed COMMIT) or is pruned: the position moves past it."""
        delivered, target = 0, self._notified
        while True:
            rows = await connection.fetch(
                outbox.READ_AFTER_SQL, self.last_delivered or 0, outbox.READ_BATCH
            )
            for row in rows:
                # This process may have delivered its own commits while the read was on
                # its way (``committed``): each event is delivered once.
                if row[0] > (self.last_delivered or 0):
                    self.deliver(outbox.event_from_row(row))  # moves ``last_delivered``
                    delivered += 1
            if len(rows) < outbox.READ_BATCH:
                self.last_delivered = max(self.last_delivered or 0, target)
                return delivered

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            notified = int(payload)
        except ValueError:
            logger.warning("ignored a malformed %s notification: %.200r", CHANNEL, payload)
            return
        if notified > self._notified:
            self._notified = notified
            self._wake.set()


def _notifier(feed: Feed) -> Any:
    def notify(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        feed.notified(payload)

    return notify


def broker_for(database_url: str) -> Broker:
    """The broker for a database: LISTEN/NOTIFY on PostgreSQL, in-process on SQLite."""
    if database_url.startswith("sqlite"):
        return InProcessBroker()
    return PostgresBroker(database_url)
