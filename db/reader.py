"""Read statements run straight on the asyncpg connection of a query operation's Session.

A query operation only reads, and every row it reads becomes a GraphQL object at once; it has
no use for what the ORM keeps per row (an identity map entry, instance state, attribute
instrumentation) or for SQLAlchemy's execution context per statement. ``fetch`` takes the
same ``Select`` the unit of work would run, compiled by SQLAlchemy's public ``compile()``
(so the SQL and its bound values are the ORM's), and runs it with asyncpg's ``fetch`` on the
connection the operation's ``Session`` holds (``Session.connection()``, checked out by
``db.checkout``: the Session's binds decide where it runs). On the measured nested read
(2,000 comment rows) that is 5 ms of CPU against 23 ms through the ORM. Rows come in the ORM's
shapes (``db.rows``).

A compiled statement is kept for as long as its statement object lives: the DataLoaders' and
the unfiltered root pages' statements are built once per shape and shared
(``schema.reads.loaders.shared_statement``), so each shape is compiled once per process; a
statement built for one request (a filtered page) is compiled for that request. The compiled
form is kept on the statement object itself (``_PREPARED``), not in a table keyed by it: a
compiled statement references its statement (``Compiled.statement``), so a
``WeakKeyDictionary`` value kept every key alive, and every filtered page ever read stayed in
memory (issue 19's soak: a few MB per minute per worker). An expanding
``IN`` list is rendered per call (``construct_expanded_state``), as ``Connection.execute``
renders it.

Each read runs through ``db.driver.run``: driver errors are raised as SQLAlchemy's
``DBAPIError`` (the same ``db.errors`` checks apply), each read is counted into the
operation's ``db.stats.SqlStats``, and the engine's cursor events fire around it (with no
cursor or execution context) when something listens (the SQL log, the tests' counters), so
they see every read too.

Source: SQLAlchemy docs, "Compiling SQL Expressions" (``ClauseElement.compile``;
``SQLCompiler.construct_params``, ``construct_expanded_state``, ``positiontup``, ``binds``),
``TypeEngine`` (``dialect_impl``,
``bind_processor``, ``result_processor``), "Events" (``before_cursor_execute``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect

from db import driver, rows
from db.rows import OMITTED, Projection, entity_keys, entity_row

__all__ = ["OMITTED", "Projection", "entity_keys", "entity_row", "fetch"]


@dataclass(slots=True, weakref_slot=True, eq=False)
class Prepared:
    """A statement compiled for one dialect, and how to bind and read it."""

    compiled: Any
    dialect: Dialect
    sql: str
    positions: tuple[str, ...]
    processors: dict[str, Callable[[Any], Any]]
    #: One per top-level selected element, in order; ``None`` for the record itself.
    extracts: tuple[rows.Extract | None, ...]
    #: The records' class: the first entity's columns by attribute (``rows.record_class``).
    record_class: type[asyncpg.Record] | None
    #: True when a parameter is rendered per call (an expanding ``IN`` list).
    expanding: bool
    #: The statement's own bound values (a root page's limit), when it takes no others.
    unbound: tuple[Any, ...] | None = None
    #: The statement it was compiled from, weakly (a copy of the statement, made by a
    #: generative method, carries the attribute it is kept in: it is not for the copy).
    source: weakref.ref[Select[Any]] | None = None

    def bind(self, params: dict[str, Any] | None) -> tuple[str, tuple[Any, ...]]:
        """The SQL and its positional parameters for ``params`` (the statement's named ones)."""
        if self.expanding:
            state = self.compiled.construct_expanded_state(params, escape_names=False)
            return state.statement, _processed(
                state.parameters, state.positiontup or (), state.processors
            )
        if not params and self.unbound is not None:
            return self.sql, self.unbound
        values = self.compiled.construct_params(params, escape_names=False)
        return self.sql, _processed(values, self.positions, self.processors)


def _processed(
    values: Any, positions: Sequence[str], processors: Mapping[str, Callable[[Any], Any]]
) -> tuple[Any, ...]:
    return tuple(
        processors[key](values[key]) if key in processors else values[key] for key in positions
    )


#: The attribute of a statement object that keeps how to run it, for as long as it lives
#: (the statement and its ``Prepared`` are a cycle the collector frees together).
_PREPARED = "_inkwell_prepared"
#: Every ``Prepared`` alive (weakly: for counting them, ``bench/soak.py``'s census).
_prepared: weakref.WeakSet[Prepared] = weakref.WeakSet()


def _converter(type_: Any, dialect: Dialect) -> rows.Convert:
    """The result converter the ORM applies to a column of ``type_`` (e.g. UTC datetimes)."""
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _prepare(statement: Select[Any], dialect: Dialect) -> Prepared:
    compiled: Any = statement.compile(dialect=dialect)
    extracts: list[rows.Extract | None] = []
    record_class: type[asyncpg.Record] | None = None
    at = 0
    for description in statement.column_descriptions:
        expression = description["expr"]
        if isinstance(expression, Projection):
            kept, omitted = expression.kept, expression.omitted
        else:
            found = rows.entity_columns(expression)
            if found is None:
                extracts.append(rows.column(at, _converter(description["type"], dialect)))
                at += 1
                continue
            kept, omitted = found, ()
        layout = tuple(
            (prop.key, at + i, _converter(prop.columns[0].type, dialect))
            for i, prop in enumerate(kept)
        ) + tuple((key, None, None) for key in omitted)
        if record_class is None and not rows.RECORD_NAMES.intersection(k for k, *_ in layout):
            # The first entity is the record itself: no row object made per row.
            record_class = rows.record_class(layout)
            extracts.append(None)
        else:
            extracts.append(rows.entity(layout))
        at += len(kept)
    processors = {}
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    found_prepared = Prepared(
        compiled=compiled,
        dialect=dialect,
        sql=compiled.string,
        positions=tuple(compiled.positiontup or ()),
        processors=processors,
        extracts=tuple(extracts),
        record_class=record_class,
        # Reads batch keys as one array (= ANY); an IN list of literal values expands.
        expanding=bool(compiled.literal_execute_params or compiled.post_compile_params),
    )
    if not found_prepared.expanding and not any(b.required for b in compiled.binds.values()):
        # Every value is the statement's own: the same each time.
        found_prepared.unbound = found_prepared.bind(None)[1]
    return found_prepared


def prepare(statement: Select[Any], dialect: Dialect) -> Prepared:
    """How ``fetch`` runs ``statement`` on ``dialect``: compiled on first use and kept while
    the statement object lives."""
    found: Prepared | None = statement.__dict__.get(_PREPARED)
    if (
        found is None
        or found.dialect is not dialect
        or found.source is None
        or (found.source() is not statement)
    ):
        found = _prepare(statement, dialect)
        found.source = weakref.ref(statement)
        statement.__dict__[_PREPARED] = found
        _prepared.add(found)
    return found


async def fetch(
    connection: Connection, statement: Select[Any], params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run ``statement`` with asyncpg on ``connection``'s driver connection, bypassing the
    ORM; return one tuple per row, of the values the ORM would give (``db.rows``); ``params``
    binds the statement's named parameters.

    ``connection`` must be checked out and valid (an invalidated one is never read again),
    held exclusively (``Context.read``), be on PostgreSQL and only read. Raises
    ``sqlalchemy.exc.DBAPIError`` for a database error: with ``connection_invalidated`` when
    the error left the connection closed (a restart), the connection then invalidated, so its
    pool never hands it out again.
    """
    found = prepare(statement, connection.dialect)
    sql, parameters = found.bind(params)
    records = await driver.run(connection, sql, parameters, found.record_class)
    extracts = found.extracts
    if extracts == (None,):  # an entity: `select(User)`, by far the most common
        return [(record,) for record in records]
    if len(extracts) == 2 and extracts[0] is None:  # an entity and its parent: windowed pages
        second = extracts[1]
        assert second is not None
        return [(record, second(record)) for record in records]
    return [
        tuple([record if extract is None else extract(record) for extract in extracts])
        for record in records
    ]
