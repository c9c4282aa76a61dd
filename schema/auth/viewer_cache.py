"""Signed-in viewers remembered per process, forgotten the moment their account changes.

A signed-in request needs its viewer's role, whether the account is still active, whether its
token's session is still signed in and when the password last changed before any resolver
runs. Reading the row on every request costs a round trip per request, most of
a flat query's time. So each process remembers the viewers it has read, and forgets one as
soon as PostgreSQL says that account changed:

- triggers on ``users`` (migrations 0002 and 0005) send ``NOTIFY inkwell_accounts, '<id>'``
  for every update of ``id`` (both ids), ``role``, ``is_active`` or ``password_changed_at``
  and every delete, and ``'*'`` for a TRUNCATE, whoever makes the change (this server,
  another process, another application); triggers on ``sign_in_sessions`` (migration 0005)
  send the user's id for every session revoked or deleted, and ``'*'`` for a TRUNCATE;
- PostgreSQL delivers a notification when its transaction commits, to every listening
  session; the event broker's LISTEN connection (``schema.live.postgres``) hands it here.

The cache trusts itself only while that feed is up: it is empty and stores nothing until the
LISTEN connection is established and the triggers are found enabled, and it empties itself
whenever the connection is lost (notifications sent meanwhile are lost with it). A read that
was in flight when anything was forgotten is not stored (``generation``), so a notification
that overtakes the read it invalidates cannot be undone by it. Each entry also has a maximum
age, a bound for what no notification reports (triggers disabled by
``session_replication_role = replica``, a listener that died without a word).

With read replicas a query may read the account on a replica: the fill is kept only if the
replica is known to hold every commit made before the last forgetting
(``db.replicas.Replica.as_of``), so a lagging replica cannot bring back a role or status a
notification took away. For the same reason a query whose viewer is not remembered reads
on a replica only if it holds that forgetting, else on the primary (``schema.context``), so a
deactivated account's token or a removed role stops working at once there too.

Queries are answered from it (``authenticate``). A mutation takes its viewer from it too, but
reads the viewer's row in its own transaction all the same, joined to the first row it reads
or just before COMMIT (``schema.writes.viewer_check``), so no write runs on a role or status
a notification in flight is about to take away.

The process that makes a change forgets the account itself right after its commit
(``schema.writes.boundary``), so its next request never sees the old role; other
processes hear of it a notification's delivery later. SQLite has no feed: there every
request reads its viewer.
Source: PostgreSQL docs, "NOTIFY" (delivery at commit, to every listener) and
"CREATE TRIGGER"; the invalidation idea of Facebook's TAO and memcache lease papers ("Scaling
Memcache at Facebook", NSDI 2013, §3.2.1: a fill is dropped if the key was invalidated while
it was being read).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schema.auth.viewer import Viewer

logger = logging.getLogger("inkwell.auth")

#: The NOTIFY channel of account changes, and the triggers that send them (migrations 0002
#: and 0005): on ``users`` and on ``sign_in_sessions``, one for rows updated or deleted, one
#: for a TRUNCATE.
CHANNEL = "inkwell_accounts"
TRIGGER = "inkwell_account_changes"
TRUNCATE_TRIGGER = "inkwell_accounts_truncated"
SESSION_TRIGGER = "inkwell_session_changes"
SESSION_TRUNCATE_TRIGGER = "inkwell_sessions_truncated"
TRIGGERS = (TRIGGER, TRUNCATE_TRIGGER, SESSION_TRIGGER, SESSION_TRUNCATE_TRIGGER)
#: The payload that forgets every account (sent for a TRUNCATE).
EVERYONE = "*"
#: Accounts remembered at most; the least recently used goes first.
MAX_ENTRIES = 10_000
#: Sessions remembered per account at most (more: the entry starts again with the newest).
MAX_SESSIONS = 64

#: Whether the four triggers exist on the tables the server reads, and fire
#: (``tgenabled``: O = on, A = always; D = disabled, R = only as a replica).
_TRIGGERS_ENABLED = (
    "SELECT count(*) = 4 FROM pg_trigger WHERE tgenabled IN ('O', 'A') AND ("
    "(tgname IN ($1, $2) AND tgrelid = to_regclass('users')) OR "
    "(tgname IN ($3, $4) AND tgrelid = to_regclass('sign_in_sessions')))"
)


class _Entry:
    """What is remembered of one account: its viewer per signed-in session seen (``None``:
    tokens without a session), the account's role, when its password last changed (a Unix
    time; ``None``: never) and when the entry expires (``time.monotonic()``)."""

    __slots__ = ("changed_at", "expires", "role", "viewers")

    def __init__(self, viewer: Viewer, changed_at: float | None, expires: float) -> None:
        self.viewers = {viewer.session_id: viewer}
        self.role = viewer.role
        self.changed_at = changed_at
        self.expires = expires


class ViewerCache:
    """Per-process ``Viewer`` by user id, each for at most ``max_age`` seconds (0: never
    remembered), trusted only while its invalidation feed is up.

    The feed is the ``schema.live.broker.Feed`` protocol: ``connected`` after every LISTEN
    and health check, ``notified`` for each notification, ``disconnected`` on loss.
    """

    def __init__(self, max_age: float, max_entries: int = MAX_ENTRIES) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        #: Bumped by everything that forgets: a fill read before it is stale.
        self._generation = 0
        #: ``time.monotonic()`` of the last forgetting: a fill read on a replica must hold
        #: every commit made before it (``put``'s ``as_of``).
        self._forgot_at = -math.inf
        self._trusted = False
        #: The missing or disabled triggers have been reported (once, until they are back).
        self._warned = False

    @property
    def trusted(self) -> bool:
        """True while notifications of account changes reach this cache."""
        return self._trusted

    @property
    def changed_at(self) -> float:
        """``time.monotonic()`` of the last forgetting: a read of an account sees every change
        this cache has heard of only where every commit made before it is visible (a replica
        whose ``as_of`` is not earlier; the primary). ``math.inf`` while not trusted: changes
        may then go unheard, and only the primary is sure to hold them."""
        return self._forgot_at if self._trusted else math.inf

    @property
    def generation(self) -> int:
        """Take before reading an account; ``put`` stores it only if nothing was forgotten
        since."""
        return self._generation

    def get(
        self, user_id: int, session_id: int | None = None, issued_at: float = math.inf
    ) -> Viewer | None:
        """The remembered viewer ``user_id`` signed in with session ``session_id``, for a
        token issued at ``issued_at`` (a Unix time); ``None`` when not remembered (never seen,
        changed, too old, that session not seen) or when the password changed after
        ``issued_at`` (the caller then reads the account, and refuses the token)."""
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        if time.monotonic() >= entry.expires:
            del self._entries[user_id]
            return None
        viewer = entry.viewers.get(session_id)
        if viewer is None or (entry.changed_at is not None and issued_at < entry.changed_at):
            return None
        self._entries.move_to_end(user_id)
        return viewer

    def put(
        self,
        viewer: Viewer,
        generation: int,
        as_of: float = math.inf,
        changed_at: float | None = None,
    ) -> None:
        """Remember ``viewer`` (its account, role and live session), whose password last
        changed at ``changed_at`` (a Unix time, ``None``: never), read after ``generation``
        was taken where every commit made before ``as_of`` (``time.monotonic()``) is visible
        (a replica; the primary's is ``math.inf``), unless the cache is not trusted,
        something was forgotten since, or the read may predate the change a forgetting
        announced. A session is added to what the entry knows of the account while the read
        agrees with it (role, password change); else the entry starts again from this read."""
        if (
            not self._trusted
            or generation != self._generation
            or self.max_age <= 0
            or as_of < self.changed_at
        ):
            return
        now = time.monotonic()
        entry = self._entries.get(viewer.id)
        if (
            entry is not None
            and now < entry.expires
            and entry.role == viewer.role
            and entry.changed_at == changed_at
            and len(entry.viewers) < MAX_SESSIONS
        ):
            entry.viewers[viewer.session_id] = viewer  # the entry's expiry stands
            self._entries.move_to_end(viewer.id)
            return
        self._entries[viewer.id] = _Entry(viewer, changed_at, now + self.max_age)
        self._entries.move_to_end(viewer.id)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, user_ids: set[int] | frozenset[int]) -> None:
        """Forget these accounts (and any fill in flight)."""
        self._generation += 1
        self._forgot_at = time.monotonic()
        for user_id in user_ids:
            self._entries.pop(user_id, None)

    def forget_all(self) -> None:
        """Forget every account (and any fill in flight)."""
        self._generation += 1
        self._forgot_at = time.monotonic()
        self._entries.clear()

    # The feed (``schema.live.broker.Feed``).

    async def connected(self, connection: Any) -> None:
        """Trust the cache once LISTEN is up on ``connection`` (an asyncpg connection) and
        the four triggers are enabled; checked again at each health check, so dropping or
        disabling one stops the cache within one."""
        enabled = bool(await connection.fetchval(_TRIGGERS_ENABLED, *TRIGGERS))
        if enabled:
            if not self._trusted:
                self.forget_all()  # whatever happened before the feed was up went unreported
                self._trusted = True
            self._warned = False
            return
        if not self._warned:
            logger.warning(
                "trigger %s or %s on users, or %s or %s on sign_in_sessions, is missing or "
                "disabled: every request reads its viewer (run `migrate`)",
                *TRIGGERS,
            )
            self._warned = True
        if self._trusted:
            self.disconnected()

    def notified(self, payload: str) -> None:
        """A notification on ``CHANNEL``: a user id, or ``EVERYONE``."""
        if payload == EVERYONE:
            self.forget_all()
            return
        try:
            user_id = int(payload)
        except ValueError:
            # It meant something changed: forget too much, not too little.
            logger.warning(
                "a malformed %s notification forgets every account: %.200r", CHANNEL, payload
            )
            self.forget_all()
            return
        self.forget({user_id})

    def disconnected(self) -> None:
        """The feed is lost: forget everything and store nothing until it is back."""
        self._trusted = False
        self.forget_all()
