"""The rows ``db.reader`` gives: shaped like the ORM's, without ORM instances.

For each selected entity (``select(User)``, an ``aliased`` one) a row of that entity's loaded
columns, readable by attribute like the mapped object (``row.name``); the same for a
``Projection`` of the entity, the columns it left out holding ``OMITTED``; for each other
selected column its value. The first entity's row is asyncpg's record itself, of a
``Record`` subclass with a property per column (asyncpg's ``record_class``), so a row costs
nothing beyond what the driver makes; a later entity's is a named tuple.
Source: asyncpg docs, ``Connection.fetch`` (``record_class``); SQLAlchemy docs, "Bundle".
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

import asyncpg
from sqlalchemy import inspect
from sqlalchemy.orm import Bundle
from sqlalchemy.orm.util import AliasedClass

#: Builds one result value from a record: an entity's row or a single column's value.
Extract = Callable[[Any], Any]
#: A column's result converter (``TypeEngine.result_processor``), ``None`` when there is none.
Convert = Callable[[Any], Any] | None
#: A selected entity's columns in its rows: (attribute key, index in the record or ``None``
#: for a column left out by a ``Projection``, result converter).
Layout = tuple[tuple[str, int | None, Convert], ...]

#: What asyncpg's ``Record`` already answers to: a column of that name needs a named tuple.
RECORD_NAMES = frozenset(dir(asyncpg.Record))

_row_types: dict[tuple[str, ...], type] = {}
_record_classes: dict[Layout, type[asyncpg.Record]] = {}
_entity_rows: dict[Any, Callable[[Sequence[Any]], Any]] = {}


def entity_columns(element: Any) -> tuple[Any, ...] | None:
    """The column attributes (``ColumnProperty``) a selected ORM entity expands to: its
    non-deferred ones, in mapper order, the order SQLAlchemy renders them in; ``None`` for
    anything but a mapped class or an ``aliased`` one."""
    if isinstance(element, AliasedClass) or (
        isinstance(element, type) and hasattr(element, "__mapper__")
    ):
        return tuple(prop for prop in inspect(element).mapper.column_attrs if not prop.deferred)
    return None


def entity_keys(entity: Any) -> tuple[str, ...]:
    """The attribute keys of the columns read for mapped class ``entity`` (its non-deferred
    column attributes, in mapper order). Raises ``ValueError`` for anything else."""
    props = entity_columns(entity)
    if props is None:
        raise ValueError(f"{entity!r} is not a mapped entity")
    return tuple(prop.key for prop in props)


def _row_type(names: tuple[str, ...]) -> type:
    """A named tuple type with ``names`` as attributes (one per distinct column list)."""
    found = _row_types.get(names)
    if found is None:
        found = _row_types[names] = namedtuple("Row", names)
    return found


def entity_row(entity: Any) -> Callable[[Sequence[Any]], Any]:
    """Makes, from the values of ``entity``'s columns in ``entity_keys`` order, the row a
    later entity of a statement gets (a named tuple)."""
    found = _entity_rows.get(entity)
    if found is None:
        found = _entity_rows[entity] = partial(tuple.__new__, _row_type(entity_keys(entity)))
    return found


class _Omitted:
    """The value of a column a statement left out (``Projection``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<column not read>"


#: What a ``Projection``'s row holds for each column left out.
OMITTED = _Omitted()


class Projection(Bundle):
    """Selects ``entity``'s columns except ``omit`` (attribute keys); ``db.reader`` reads each
    row as the entity's row all the same, each left-out column holding ``OMITTED`` (column
    pruning, ``schema.reads.pruning``). Only ``db.reader`` reads it: the ORM would give a
    ``Bundle``'s row of the selected columns alone."""

    def __init__(self, entity: Any, omit: frozenset[str]) -> None:
        props = entity_columns(entity)
        assert props is not None, f"{entity!r} is not a mapped entity"
        self.kept = tuple(prop for prop in props if prop.key not in omit)
        self.omitted = tuple(prop.key for prop in props if prop.key in omit)
        super().__init__("inkwell_projection", *(getattr(entity, p.key) for p in self.kept))


def record_class(layout: Layout) -> type[asyncpg.Record]:
    """An ``asyncpg.Record`` subclass reading ``layout``'s columns by attribute: the records
    asyncpg makes are the rows, with nothing copied. The layout's keys must not be in
    ``RECORD_NAMES``."""
    found = _record_classes.get(layout)
    if found is not None:
        return found
    namespace: dict[str, Any] = {"__slots__": ()}
    for key, index, convert in layout:
        if index is None:
            namespace[key] = OMITTED  # a class attribute: the same for every row
        elif convert is None:
            namespace[key] = property(itemgetter(index))  # C-level, the common case
        else:
            namespace[key] = property(column(index, convert))
    found = _record_classes[layout] = type("Row", (asyncpg.Record,), namespace)
    return found


def column(index: int, convert: Convert) -> Extract:
    """Reads the value at ``index`` of a record, converted."""
    if convert is None:
        return itemgetter(index)
    return lambda record: convert(record[index])


def entity(layout: Layout) -> Extract:
    """Reads a later entity of a statement from a record, as a named tuple."""
    make = partial(tuple.__new__, _row_type(tuple(key for key, *_ in layout)))
    pairs = tuple((index, convert) for _, index, convert in layout)
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
