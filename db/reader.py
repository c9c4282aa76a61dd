"""Read statements run straight on the asyncpg connection, for read-only operations.

A query operation only reads, and every row it reads becomes a GraphQL object at once; it has
no use for what the ORM keeps per row (an identity map entry, instance state, attribute
instrumentation) or for SQLAlchemy's execution context per statement. ``fetch`` takes the
same ``Select`` the unit of work would run, compiled through SQLAlchemy's statement cache
exactly as ``Connection.execute`` compiles it (so the SQL and its bound values are the same),
and runs it with asyncpg's ``fetch`` on the operation's pooled connection (an
``AsyncConnection`` in autocommit; no ``AsyncSession``). On the
measured nested read (2,000 comment rows) that is 5 ms of CPU against 23 ms through the ORM.

Rows come back in the shapes the ORM gives: for each selected entity (``select(User)``, an
``aliased`` one) a row of that entity's loaded columns, readable by attribute like the
mapped object (``row.name``), the same for a ``Projection`` of the entity (the columns it
left out holding ``OMITTED``); for each other column its value. The first entity's row is
asyncpg's record itself, of a ``Record`` subclass with a property per column, so a row
costs nothing beyond what the driver makes. Driver errors are raised as
SQLAlchemy's ``DBAPIError`` (the same ``db.errors`` checks apply), and a connection found
dead is invalidated, so the pool never hands it out again. The engine's cursor events fire
around each statement (with no cursor or execution context), so statement counts still
see every read.

This leans on SQLAlchemy internals of the 2.1 series (``_compile_w_cache``, the compiled
statement's ``_result_columns`` and ``_bind_processors``; pyproject.toml pins the series).
Source: SQLAlchemy ``engine/default.py`` (``DefaultExecutionContext._init_compiled``) and
``engine/base.py`` (``Connection._execute_clauseelement``); asyncpg ``Connection.fetch``.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, Select, event, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Bundle
from sqlalchemy.orm.util import AliasedClass
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.util import LRUCache

#: Compiled statements kept per process (distinct statement shapes, not parameter values).
COMPILED_STATEMENTS = 500

#: Builds one result value from a record: an entity's row or a single column's value.
Extract = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A compiled statement and how to bind and read it."""

    sql: str
    positions: tuple[str, ...]
    processors: dict[str, Callable[[Any], Any]]
    #: One per top-level selected element, in order; ``None`` for the record itself.
    extracts: tuple[Extract | None, ...]
    #: The records' class: the first entity's columns by attribute (``_record_class``).
    record_class: type[asyncpg.Record] | None


_compiled: LRUCache[Any, Any] = LRUCache(COMPILED_STATEMENTS)
#: Per compiled statement: how to run it, or why the session runs it instead.
_prepared: LRUCache[int, tuple[Any, _Prepared | str]] = LRUCache(COMPILED_STATEMENTS)


class _Known:
    """A statement object as ``fetch`` has run it before: its compiled form, the bound values
    extracted from it, how to run it (or why not), and its positional parameters when it
    takes no others."""

    __slots__ = (
        "collected",
        "compiled",
        "dialect",
        "extracted",
        "prepared",
        "statement",
        "unbound",
    )

    def __init__(
        self,
        statement: Any,
        dialect: Any,
        compiled: Any,
        extracted: Any,
        collected: Any,
        prepared: _Prepared | str,
    ) -> None:
        self.statement, self.dialect, self.compiled = statement, dialect, compiled
        self.extracted, self.collected, self.prepared = extracted, collected, prepared
        self.unbound: tuple[Any, ...] | None = None

    def bind(self, params: dict[str, Any] | None) -> tuple[Any, ...]:
        """The positional parameters for ``params`` (the statement's named ones)."""
        prepared = self.prepared
        assert not isinstance(prepared, str)
        values = self.compiled.construct_params(
            params,
            extracted_parameters=self.extracted,
            escape_names=False,
            _collected_params=self.collected,
        )
        processors = prepared.processors
        return tuple(
            processors[key](values[key]) if key in processors else values[key]
            for key in prepared.positions
        )


#: Per statement object (kept alive by its entry, so its id is not reused): ``_Known``.
_by_statement: LRUCache[int, _Known] = LRUCache(COMPILED_STATEMENTS)
_row_types: dict[tuple[str, ...], type] = {}
_record_classes: dict[tuple[Any, ...], type[asyncpg.Record]] = {}


def _row_type(names: tuple[str, ...]) -> type:
    """A named tuple type with ``names`` as attributes (one per distinct column list)."""
    found = _row_types.get(names)
    if found is None:
        found = _row_types[names] = namedtuple("Row", names)
    return found


def _entity_columns(element: Any) -> tuple[str, ...] | None:
    """The attribute keys of the columns a selected ORM entity expands to (its non-deferred
    column attributes, in mapper order), or ``None`` for a plain column expression."""
    if isinstance(element, AliasedClass) or (
        isinstance(element, type) and hasattr(element, "__mapper__")
    ):
        mapper = inspect(element).mapper
        return tuple(prop.key for prop in mapper.column_attrs if not prop.deferred)
    return None


def entity_keys(entity: Any) -> tuple[str, ...]:
    """The attribute keys of the columns ``fetch`` reads for mapped class ``entity`` (its
    non-deferred column attributes, in mapper order). Raises ``ValueError`` for anything
    else."""
    keys = _entity_columns(entity)
    if keys is None:
        raise ValueError(f"{entity!r} is not a mapped entity")
    return keys


def entity_row(entity: Any) -> Callable[[Sequence[Any]], Any]:
    """Makes, from the values of ``entity``'s columns in ``entity_keys`` order, the row
    ``fetch`` gives for a later entity of a statement (a named tuple)."""
    found = _entity_rows.get(entity)
    if found is None:
        found = _entity_rows[entity] = partial(tuple.__new__, _row_type(entity_keys(entity)))
    return found


_entity_rows: dict[Any, Callable[[Sequence[Any]], Any]] = {}


class _Omitted:
    """The value of a column a statement left out (``Projection``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<column not read>"


#: What a ``Projection``'s row holds for each column left out.
OMITTED = _Omitted()


class Projection(Bundle):
    """Selects ``entity``'s columns except ``omit`` (attribute keys); ``fetch`` reads each
    row as the entity's row all the same, each left-out column holding ``OMITTED`` (column
    pruning, ``schema.reads.pruning``). Only ``fetch`` reads it: the ORM would give a ``Bundle``'s
    row of the selected columns alone."""

    def __init__(self, entity: Any, omit: frozenset[str]) -> None:
        keys = _entity_columns(entity)
        assert keys is not None, f"{entity!r} is not a mapped entity"
        self.kept = tuple(key for key in keys if key not in omit)
        self.omitted = tuple(key for key in keys if key in omit)
        super().__init__("inkwell_projection", *(getattr(entity, key) for key in self.kept))


class Unreadable(ValueError):
    """A statement ``fetch`` does not run (the caller runs it through the session instead)."""


#: A selected entity's columns in its rows: (attribute key, index in the record, or ``None``
#: for a column left out by a ``Projection``).
Layout = tuple[tuple[str, int | None], ...]


def _prepare(statement: Select[Any], compiled: Any, dialect: Dialect) -> _Prepared:
    if compiled.literal_execute_params or compiled.post_compile_params:
        # Expanding IN lists are rendered per call; reads batch keys as one array (= ANY).
        raise Unreadable("expanding parameters")
    names = tuple(column[0] for column in compiled._result_columns)
    converters = tuple(
        column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns
    )
    extracts: list[Extract | None] = []
    record_class: type[asyncpg.Record] | None = None
    at = 0
    for description in statement.column_descriptions:
        expression = description["expr"]
        if isinstance(expression, Projection):
            keys, omitted = expression.kept, expression.omitted
        else:
            found = _entity_columns(expression)
            if found is None:
                extracts.append(_column(at, converters[at]))
                at += 1
                continue
            keys, omitted = found, ()
        width = len(keys)
        if names[at : at + width] != keys and not _relabelled(compiled, at, keys):
            # A loader option changed which columns load: the session maps those.
            raise Unreadable(f"columns {names[at : at + width]} are not {keys}")
        layout = tuple((key, at + i) for i, key in enumerate(keys)) + tuple(
            (key, None) for key in omitted
        )
        if record_class is None and not _RECORD_NAMES.intersection(keys + omitted):
            # The first entity is the record itself: no row object made per row.
            record_class = _record_class(layout, converters)
            extracts.append(None)
        else:
            extracts.append(_entity(layout, converters))
        at += width
    if at != len(names):
        raise Unreadable(f"{len(names)} result columns, the selected elements account for {at}")
    return _Prepared(
        sql=compiled.string,
        positions=tuple(compiled.positiontup or ()),
        processors=dict(compiled._bind_processors),
        extracts=tuple(extracts),
        record_class=record_class,
    )


def _relabelled(compiled: Any, at: int, keys: tuple[str, ...]) -> bool:
    """True when the result columns from ``at`` on are ``keys``' columns, some under labels
    of their own (``id_1``: a later entity whose column names an earlier one took)."""
    columns = compiled._result_columns[at : at + len(keys)]
    return len(columns) == len(keys) and all(
        any(isinstance(named, ColumnElement) and named.key == key for named in column[2])
        for column, key in zip(columns, keys, strict=True)
    )


#: What asyncpg's ``Record`` already answers to: a column of that name gets a named tuple.
_RECORD_NAMES = frozenset(dir(asyncpg.Record))


def _record_class(
    layout: Layout, converters: tuple[Callable[[Any], Any] | None, ...]
) -> type[asyncpg.Record]:
    """An ``asyncpg.Record`` subclass reading ``layout``'s columns by attribute (asyncpg's
    ``record_class``): the records asyncpg makes are the rows, with nothing copied."""
    found = _record_classes.get((layout, converters))
    if found is not None:
        return found
    namespace: dict[str, Any] = {"__slots__": ()}
    for key, index in layout:
        if index is None:
            namespace[key] = OMITTED  # a class attribute: the same for every row
        elif converters[index] is None:
            namespace[key] = property(itemgetter(index))  # C-level, the common case
        else:
            namespace[key] = property(_column(index, converters[index]))
    found = _record_classes[(layout, converters)] = type("Row", (asyncpg.Record,), namespace)
    return found


def _column(index: int, convert: Callable[[Any], Any] | None) -> Extract:
    if convert is None:
        return lambda record: record[index]
    return lambda record: convert(record[index])


def _entity(layout: Layout, converters: tuple[Callable[[Any], Any] | None, ...]) -> Extract:
    """A second entity of a statement, as a named tuple copied from the record."""
    make = partial(tuple.__new__, _row_type(tuple(key for key, _ in layout)))
    pairs = tuple((index, None if index is None else converters[index]) for _, index in layout)
    return lambda record: make(
        [
            OMITTED
            if index is None
            else record[index]
            if convert is None
            else convert(record[index])
            for index, convert in pairs
        ]
    )


def is_projected(statement: Select[Any]) -> bool:
    """True when ``statement`` selects a ``Projection`` (which only ``fetch`` reads)."""
    return any(isinstance(d["expr"], Projection) for d in statement.column_descriptions)


#: Per pool, how many more checkouts take the greenlet path because an idle connection may
#: need reconnecting (``start``); a pool is watched from its first checkout here.
_suspect: weakref.WeakKeyDictionary[Pool, int] = weakref.WeakKeyDictionary()


def _watch(pool: Pool) -> None:
    """Count ``pool`` suspect for its size in checkouts whenever a connection of it is
    invalidated (the pool's own invalidation, after a restart, comes with one)."""

    def invalidated(*_: Any) -> None:
        _suspect[pool] = _size(pool)

    event.listen(pool, "invalidate", invalidated)
    event.listen(pool, "soft_invalidate", invalidated)
    _suspect[pool] = 0


def _size(pool: Pool) -> int:
    return pool.size() if isinstance(pool, QueuePool) else 1


async def start(connection: AsyncConnection) -> None:
    """Check ``connection`` (not started yet) out of the pool, as ``AsyncConnection.start``
    does, but in the event loop's own thread when that needs no I/O.

    ``AsyncConnection.start`` runs the pool's checkout in a greenlet (``greenlet_spawn``), in
    case it must wait for a connection or open one; here that cost 28 µs a checkout and
    checkin, more than three times the checkout itself. Handing out an idle pooled
    connection does no I/O, so when the pool has one, the checkout runs directly. It does
    not when a checkout may do I/O all the same: with pre-ping or recycling, or for as many
    checkouts as the pool holds after a connection of it was invalidated (an idle one may
    then need reconnecting). Should I/O be needed anyway, SQLAlchemy raises
    ``MissingGreenlet`` before it starts, with the pool as it was (a record taken for
    reconnecting is invalidated and put back), and the checkout runs in a greenlet.
    Source: SQLAlchemy ``util/concurrency.py`` (``await_only`` raising ``MissingGreenlet``)
    and ``pool/base.py`` (``_ConnectionRecord.checkout``, ``get_connection``).
    """
    engine = connection.sync_engine
    pool: Any = engine.pool
    suspect = _suspect.get(pool)
    if suspect is None:
        _watch(pool)
        suspect = 0
    if suspect == 0 and not pool._pre_ping and pool._recycle < 0 and pool.checkedin() > 0:
        try:
            sync = engine.connect()
        except MissingGreenlet:
            _suspect[pool] = _size(pool)
        else:
            proxied: Any = connection
            connection.sync_connection = proxied._assign_proxied(sync)
            return
    elif suspect:
        _suspect[pool] = suspect - 1
    await connection.start()


def close_at_once(connection: AsyncConnection) -> bool:
    """Return ``connection`` (started by ``start``) to the pool now, with no I/O, when
    nothing needs rolling back (a read on the driver never begins a transaction: the pool's
    reset rolls back only an open one); returns False, doing nothing, otherwise (then
    ``AsyncConnection.close`` closes it, in a greenlet). Raises what closing raises."""
    sync = connection.sync_connection
    if sync is None or sync.in_transaction():
        return False
    sync.close()
    return True


async def fetch(
    connection: AsyncConnection, statement: Select[Any], params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run ``statement`` on ``connection`` (started here if it is not yet) with asyncpg,
    bypassing the ORM; return one tuple per row, of the values the ORM would give (entity
    rows readable by attribute: the first entity's is the record itself, a further one a
    named tuple); ``params`` binds the statement's named parameters.

    A connection the server dropped (a restart) is found out here, not by a pre-ping at
    checkout: the pool is invalidated and the read runs once more, on a new connection.
    ``connection`` must be held exclusively (``Context.read``), be on PostgreSQL and only
    read. Raises ``sqlalchemy.exc.DBAPIError`` for a database error, ``Unreadable`` for a
    statement this module does not run (expanding parameters), before anything is sent.
    """
    try:
        return await _fetch(connection, statement, params)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    # The invalidated connection reconnects on its next use (it is in no transaction).
    return await _fetch(connection, statement, params)


async def _fetch(
    connection: AsyncConnection, statement: Select[Any], params: dict[str, Any] | None
) -> list[tuple[Any, ...]]:
    dialect = connection.engine.dialect
    # SQLAlchemy internals from here on (typed loosely): what Connection.execute does, but
    # a statement object run again (``loaders.shared_statement``) is looked up by identity:
    # statements are immutable, so its cache key, and so the compiled form and extracted
    # bound values, are the same each time; computing the key walks the whole statement.
    known = _by_statement.get(id(statement))
    if known is None or known.statement is not statement or known.dialect is not dialect:
        element: Any = statement
        compiled, extracted, collected, _ = element._compile_w_cache(
            dialect, compiled_cache=_compiled, column_keys=[]
        )
        entry = _prepared.get(id(compiled))
        if entry is None or entry[0] is not compiled:
            try:
                entry = (compiled, _prepare(statement, compiled, dialect))
            except Unreadable as refused:
                entry = (compiled, str(refused))  # remembered: refused at once from now on
            _prepared[id(compiled)] = entry
        known = _Known(statement, dialect, compiled, extracted, collected, entry[1])
        _by_statement[id(statement)] = known
    prepared = known.prepared
    if isinstance(prepared, str):
        raise Unreadable(prepared)
    if connection.sync_connection is None:
        # The operation's first read checks the connection out (after ``Unreadable`` could
        # be raised: a statement the session runs instead never holds two connections).
        await start(connection)
    if params:
        parameters = known.bind(params)
    elif known.unbound is not None:
        parameters = known.unbound
    else:
        # Every value is the statement's own: the same each time (a root page's limit).
        parameters = known.unbound = known.bind(None)
    sync: Any = connection.sync_connection
    # The pooled connection, read as it is: ``get_raw_connection`` would spend a greenlet
    # switch on every statement for what needs I/O only once the connection was invalidated.
    pooled: Any = await connection.get_raw_connection() if sync.invalidated else sync.connection
    events = sync._has_events or sync.engine._has_events
    if events:
        # The engine's cursor events see this statement as they see every other (statement
        # counts, timings); there is no DBAPI cursor or execution context to give them.
        sync.dispatch.before_cursor_execute(sync, None, prepared.sql, parameters, None, False)
    try:
        records = await pooled.driver_connection.fetch(
            prepared.sql, *parameters, record_class=prepared.record_class
        )
    except Exception as error:
        raise await _translated(connection, pooled, prepared.sql, error) from error
    if events:
        sync.dispatch.after_cursor_execute(sync, None, prepared.sql, parameters, None, False)
    extracts = prepared.extracts
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


async def _translated(
    connection: Any, pooled: Any, sql: str, error: Exception
) -> DBAPIError | StatementError:
    """``error`` (asyncpg's) as SQLAlchemy would raise it, invalidating a dead connection."""
    dialect = connection.dialect
    try:
        pooled.dbapi_connection._handle_exception(error)  # raises the DBAPI-level error
    except Exception as dbapi_error:
        adapted = dbapi_error
    else:  # pragma: no cover - the adapter always raises
        adapted = error
    dead = isinstance(adapted, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
        adapted, pooled.dbapi_connection, None
    )
    if dead:
        # As SQLAlchemy does on a disconnect: every connection of the pool predates it (a
        # restarted server dropped them all), so the pool replaces each at its next checkout.
        connection.sync_engine.pool._invalidate(pooled, adapted)
        await connection.invalidate(adapted)
    return DBAPIError.instance(
        sql,
        None,
        adapted,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=dead,
        dialect=dialect,
    )
