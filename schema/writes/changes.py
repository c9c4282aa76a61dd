"""The tables a unit of work wrote to: what its commit invalidates in the response cache.

Every INSERT, UPDATE and DELETE a session's transaction runs is seen where SQLAlchemy runs a
statement (the engine's ``before_execute`` event): the ORM's flushes, including the rows of
many-to-many links, and the Core statements resolvers run through the session
(``session.execute(insert(...))``, ``ON CONFLICT`` inserts) alike, so no write path can be
missed by forgetting to announce it. A delete also reaches the rows the database deletes or
changes by itself through foreign keys (``ON DELETE CASCADE`` / ``SET NULL``): those tables
count as written too. Plain-text SQL (``text(...)``) is not DML SQLAlchemy can name the table
of; the only such writes are the outbox's own rows, which no response reads.

The tables are collected in the session's ``info`` (one set per session): when a session
begins a transaction on a connection, the connection's ``info`` points at the session's set
until the transaction ends (the engine's ``commit``/``rollback`` events), so the engine's
statements land in the session that ran them.
Source: SQLAlchemy docs, "Core Events" (``ConnectionEvents.before_execute``, ``commit``,
``rollback``), "ORM Events" (``SessionEvents.after_begin``), ``Session.info``,
``Connection.info``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Delete, UpdateBase

from db.models import Base

#: Where a session keeps the names of the tables it wrote to, and where a connection points at
#: that set while the session's transaction runs on it.
KEY = "inkwell.tables_written"
#: Foreign-key actions by which the database changes other rows when one is deleted.
_DELETE_ACTIONS = {"CASCADE", "SET NULL", "SET DEFAULT"}


def _reached_by_delete() -> dict[str, frozenset[str]]:
    """Table name -> the tables whose rows the database changes when one of its rows is
    deleted (transitively, through foreign keys' ``ON DELETE`` actions)."""
    direct: dict[str, set[str]] = {}
    for table in Base.metadata.tables.values():
        for key in table.foreign_keys:
            if (key.ondelete or "").upper() in _DELETE_ACTIONS:
                direct.setdefault(str(key.column.table.name), set()).add(str(table.name))
    reached: dict[str, frozenset[str]] = {}
    for name in map(str, Base.metadata.tables):
        seen: set[str] = set()
        todo = [name]
        while todo:
            for other in direct.get(todo.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        reached[name] = frozenset(seen)
    return reached


#: Computed once: the models are all imported with ``db.models``.
REACHED_BY_DELETE = _reached_by_delete()


def _before_execute(conn: Any, statement: Any, *_args: Any) -> None:
    if not isinstance(statement, UpdateBase):
        return
    written = conn.info.get(KEY)
    table = getattr(statement, "table", None)
    if written is None or not isinstance(table, Table):
        return
    name = str(table.name)  # not SQLAlchemy's ``quoted_name``
    written.add(name)
    if isinstance(statement, Delete):
        written.update(REACHED_BY_DELETE.get(name, ()))


def _after_begin(session: Session, _transaction: Any, connection: Any) -> None:
    connection.info[KEY] = session.info.setdefault(KEY, set())


def _committed(conn: Any) -> None:
    conn.info.pop(KEY, None)


def _rolled_back(conn: Any) -> None:
    # Nothing the transaction wrote was kept.
    tables = conn.info.pop(KEY, None)
    if tables is not None:
        tables.clear()


def install(engine: Any) -> None:
    """Record the tables written through ``engine`` (an ``AsyncEngine``) in the session that
    wrote them (``written``). Idempotent."""
    sync_engine = engine.sync_engine
    if event.contains(sync_engine, "before_execute", _before_execute):
        return
    event.listen(sync_engine, "before_execute", _before_execute)
    event.listen(sync_engine, "commit", _committed)
    event.listen(sync_engine, "rollback", _rolled_back)
    if not event.contains(Session, "after_begin", _after_begin):
        event.listen(Session, "after_begin", _after_begin)


def written(session: Any) -> frozenset[str]:
    """The names of the tables ``session`` (an ``AsyncSession`` or ``Session``) wrote to in
    its current transaction, flushed statements only (call after the last flush); forgets
    them, so the next transaction starts with none."""
    tables = session.info.get(KEY)
    if not tables:
        return frozenset()
    found = frozenset(tables)
    tables.clear()
    return found
