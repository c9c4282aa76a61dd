"""The response cache: whole responses of anonymous queries, never served after a commit that
changed what they read.

An entry is one response body (``{"data": ...}`` as the server sent it), under a key made of
the schema's fingerprint, the document (its SHA-256), the operation name and the variables
(``key``), with the tables its types are read from (``schema.reads.tables_read``) and, for
each, the *commit position* known when its execution began.

Commit positions. Every committed write that changes rows writes a ``ROWS_CHANGED`` event
to the outbox in its transaction (``schema.writes.boundary``), naming the tables it wrote
(``schema.writes.changes``). Its event id is the commit's position: ids grow in commit order
(``schema.live.outbox``), so the same number means the same thing in every process. A
table's position is that of the last commit known to have written it. An entry is fresh
while each of its tables' recorded position is at least the newest one known: it was read
after every commit known now. A commit racing a fill makes the fill's entry stale at once,
since the fill recorded positions from before it began. Positions become known:

- to the committing process, right after its COMMIT and before its response is sent
  (``committed``), which also raises them in Redis (a script: they only grow), so with
  ``REDIS_URL`` every instance reads them with the entry, one ``MGET``: nothing stale is
  served once the mutation has answered;
- to every process, as it reads the outbox forward (``observed``, through the broker: the
  NOTIFY and read of subscriptions, or in-process on SQLite). A process's own entries, kept
  without Redis or while it is unreachable, are checked against these: stale within the
  time events take to arrive. A process whose LISTEN connection is down serves none of them.

``RESPONSE_CACHE_TTL_SECONDS`` bounds what no commit through the API reports (SQL by hand,
the command line). Source: Redis docs, ``MGET``, ``SET`` (``EX``), ``EVALSHA`` (scripts run
atomically); redis-py docs, ``register_script``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLSchema
from prometheus_client import Counter

from db.models import Base
from schema.engine.redis_link import UNANSWERED, RedisLink
from schema.engine.response_entries import Lookup, ProcessEntries, fresh
from schema.engine.selected_types import selected_types
from schema.live.events import Event, EventKind, changed_tables
from schema.live.postgres import CONNECT_TIMEOUT_SECONDS, HEALTH_CHECK_SECONDS
from schema.reads.tables_read import tables_of
from settings import Settings

#: Every table a commit may write: what a ``ROWS_CHANGED`` event's bits are read against.
TABLES = tuple(map(str, Base.metadata.tables))
#: Documents whose tables read are remembered.
DOCUMENTS = 1000
#: Without Redis, the longest another process serves an entry after a commit made it stale:
#: its LISTEN connection, if it died without a word, is found dead by the next health check
#: (``schema.live.postgres``), and from then on the process serves nothing from its own
#: entries until it has read the outbox up. Normally, the time a NOTIFY and a read take.
EVENT_BOUND_SECONDS = HEALTH_CHECK_SECONDS + CONNECT_TIMEOUT_SECONDS

LOOKUPS = Counter(
    "inkwell_response_cache_lookups",
    "Anonymous requests looked up in the response cache: hit (served from it), miss (not "
    "there), stale (there, but a commit changed a table it read since).",
    ["result"],
)
INVALIDATIONS = Counter(
    "inkwell_response_cache_invalidations",
    "Tables whose commit position advanced in this process: each makes the cached "
    "responses that read it stale.",
)
_HIT, _MISS, _STALE = (LOOKUPS.labels(result) for result in ("hit", "miss", "stale"))


def fingerprint(sdl: str, settings: Settings) -> str:
    """What must be equal for two processes to share entries: the schema (its SDL) and the
    settings that change what a document answers."""
    manifest = settings.operation_manifest
    parts = [
        sdl,
        manifest.read_bytes().hex() if manifest is not None else "",
        settings.persisted_queries,
        settings.introspection_enabled,
        settings.max_page_size,
        settings.default_page_size,
        settings.max_query_depth,
        settings.max_aliases,
        settings.max_tokens,
        settings.max_selections,
        settings.max_query_cost,
        settings.max_variables_bytes,
    ]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


#: Raise each position key (KEYS) to ARGV[1] unless it is there already: positions only grow,
#: whatever order concurrent commits' processes reach Redis in.
RAISE = """
for _, key in ipairs(KEYS) do
  local position = tonumber(ARGV[1])
  if position > tonumber(redis.call('GET', key) or '0') then
    redis.call('SET', key, ARGV[1])
  end
end
"""


class ResponseCache:
    """The process's response cache (see the module's docstring): entries in Redis through
    ``link`` when given, else (and while Redis is unreachable: ``RedisLink.available``) in
    the process; keys made with ``fingerprint``."""

    def __init__(self, settings: Settings, fingerprint: str, link: RedisLink | None) -> None:
        self.fingerprint = fingerprint
        self.ttl = settings.response_cache_ttl_seconds
        #: A body above this is never cached.
        self.largest = settings.response_cache_max_bytes // 16
        self._link = link
        prefix = settings.response_cache_redis_prefix
        self._entry_prefix = prefix + "r:"
        #: Each table's position in Redis, one key each, read with the entry by one MGET.
        self._position_keys = {table: f"{prefix}position:{table}" for table in TABLES}
        self._raise = link.client.register_script(RAISE) if link is not None else None
        self._entries = ProcessEntries(settings.response_cache_max_bytes, self.ttl)
        #: Each table's position, as this process knows it.
        self._positions: dict[str, int] = {}
        #: Where events come from (``attach``), and the position every table is taken to
        #: have reached when this process began following them.
        self._broker: Any = None
        self._floor: int | None = None
        self._tables_read: OrderedDict[str, frozenset[str]] = OrderedDict()

    def attach(self, broker: Any) -> None:
        """Follow the commits ``broker`` (a ``schema.live.Broker``) delivers."""
        self._broker = broker
        broker.observe(EventKind.ROWS_CHANGED, self.observed)

    def key(self, mode: str, document: str, operation_name: Any, variables: Any) -> str:
        """The key of a request for ``document`` (a SHA-256 hex digest; ``mode`` says
        whether the request sent the text or only the hash) with ``operation_name`` and
        ``variables`` (any JSON value; canonical: keys sorted)."""
        parts = (self.fingerprint, mode, document, operation_name, variables)
        return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def _local(self) -> dict[str, int] | None:
        """This process's positions, or ``None`` while they may be behind (its LISTEN
        connection down, or never up yet)."""
        broker = self._broker
        if broker is None or not broker.listening:
            return None
        if self._floor is None:
            # Commits before this moment were never seen here: every table may have changed.
            self._floor = broker.last_delivered or 0
        return self._positions

    async def lookup(self, key: str, document: str) -> tuple[bytes | None, Lookup | None]:
        """The fresh body cached under ``key``, or ``None``; and the look-up for the fill
        (``None`` when nothing may be filled now). Never raises for Redis."""
        local = self._local()
        floor = self._floor or 0
        if self._link is not None:
            keys = (self._entry_prefix + key, *self._position_keys.values())
            replies = await self._link.ask(lambda redis: redis.mget(*keys))
            if replies is not UNANSWERED:
                raw, *shared = replies
                known = dict(local or {})
                for table, position in zip(self._position_keys, shared, strict=True):
                    if position is not None and int(position) > known.get(table, 0):
                        known[table] = int(position)
                lookup = Lookup(key, document, known, floor, shared=True)
                if raw is None:
                    _MISS.inc()
                    return None, lookup
                header, _, body = raw.partition(b"\n")
                if fresh(orjson.loads(header), known, floor):
                    _HIT.inc()
                    return body, lookup
                _STALE.inc()
                return None, lookup
        if local is None:
            _MISS.inc()
            return None, None
        lookup = Lookup(key, document, dict(local), floor, shared=False)
        found = self._entries.get(key)
        if found is None:
            _MISS.inc()
            return None, lookup
        if fresh(found[0], local, floor):
            _HIT.inc()
            return found[1], lookup
        self._entries.drop(key)
        _STALE.inc()
        return None, lookup

    async def fill(self, lookup: Lookup, body: bytes) -> None:
        """Cache ``body``, the response of ``lookup``'s request (its ``tables`` set). Never
        raises for Redis (the process keeps it instead)."""
        if lookup.tables is None or len(body) > self.largest:
            return
        recorded = lookup.recorded()
        link = self._link
        if lookup.shared and link is not None:
            value = orjson.dumps(recorded) + b"\n" + body
            key = self._entry_prefix + lookup.key
            stored = await link.ask(lambda redis: redis.set(key, value, ex=self.ttl))
            if stored is not UNANSWERED:
                return
            if self._local() is None:
                return
        self._entries.keep(lookup.key, recorded, body)

    def tables_read(
        self, document: str, node: DocumentNode, schema: GraphQLSchema
    ) -> frozenset[str]:
        """The tables a response to ``node`` (the document whose hash is ``document``) is
        read from, worked out once per document."""
        tables = self._tables_read.get(document)
        if tables is None:
            tables = tables_of(selected_types(schema, node))
            self._tables_read[document] = tables
            if len(self._tables_read) > DOCUMENTS:
                self._tables_read.popitem(last=False)
        return tables

    async def committed(self, tables: frozenset[str], position: int) -> None:
        """A commit at ``position`` wrote ``tables``: entries reading them are stale from now
        on, in this process and (with Redis) everywhere. Called after COMMIT, before the
        response goes. Never raises for Redis (other processes then learn it from events)."""
        self._advance(tables, position)
        link = self._link
        if (script := self._raise) is not None and link is not None and tables:
            keys = [self._position_keys[t] for t in tables if t in self._position_keys]
            await link.ask(lambda _: script(keys=keys, args=[position]))

    def observed(self, event: Event) -> None:
        """A ``ROWS_CHANGED`` event delivered here (any process's commit, in id order)."""
        self._advance(changed_tables(event, TABLES), event.event_id)

    def _advance(self, tables: Any, position: int) -> None:
        for table in tables:
            if position > self._positions.get(table, 0):
                self._positions[table] = position
                INVALIDATIONS.inc()
