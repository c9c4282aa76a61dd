"""Where a query operation reads, with read replicas (``DATABASE_REPLICA_URLS``).

``Context._open_session`` asks ``query_sessions`` for the ``ReadSessions`` its session comes
from: bound to a replica's engine or to the primary's (the session's bind decides where every
statement runs: SQLAlchemy docs, ``Session.get_bind``). ``db.replicas.Replicas.choose``
picks among the healthy replicas one that has replayed what the operation must see.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from db.read_sessions import ReadSessions

if TYPE_CHECKING:
    from db.replicas import Replicas
    from schema.context import Context


def query_sessions(context: Context, replicas: Replicas) -> tuple[ReadSessions, float]:
    """The sessions a query operation of ``context`` reads with, and the ``time.monotonic()``
    before which every commit is visible there (``Context.read_as_of``).

    - A response the cache will keep is read on the primary, where every commit it is stored
      under is seen (``schema.engine.response_cache``: its commit positions are event ids,
      not WAL positions, so no replica can be shown to have replayed them).
    - The request's ``Inkwell-Read-After`` position, and this process's pin of the viewer
      after a commit, are honoured (``Replicas.choose``).
    - When the viewer's account is read in this session (a token, no remembered viewer), only
      where every change the viewer cache has heard of is visible (a deactivation, a role
      taken away), so that its tokens stop working at once.
    """
    primary = context.read_sessions
    assert primary is not None
    lookup = context.cache_lookup
    if lookup is not None and lookup.tables is not None:
        return primary, math.inf
    viewer = context.viewer.id if context.viewer is not None else context.subject
    since = -math.inf
    if context.viewer is None and context.subject is not None:
        since = math.inf if context.viewers is None else context.viewers.changed_at
    return replicas.choose(context.read_after, viewer, since)
