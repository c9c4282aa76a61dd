"""Folding a relationship into the statement that reads its parents.

A post has one author and a few tags. Reading posts and then, one level down, their authors
and tags costs a round trip per field; the rows could have come with the posts. So entities
declare the relationship fields that may be read in their own statements (``foldable``):
when the plan shows that the field being resolved selects one of them
(``pruning.Reads.folded``, with that field's own selection), the statement reading the
parents reads the field's rows too:

- a to-one field (``(target, foreign key)``) joins its target and selects its columns (only
  those the field's selection uses: ``pruning.omitted``);
- a to-many field through a link table (``Linked``) selects, per parent, an array of its
  target rows (``ARRAY(SELECT ROW(...) ... ORDER BY id)``, a correlated subquery), which
  asyncpg decodes as a list of tuples.

The rows go to the DataLoader that field's batch reads them with (``loaders.by_id``, or the
``Linked`` declaration's loader; its ``SharedLoader.known``), so when the executor reaches
the field one level down, every key is known and no statement runs.

Only reads on the driver (PostgreSQL's) fold (like pruning, ``Context.reads_on_driver``).
A to-one fold applies no visibility condition, so only targets every viewer may see
(``visibility.is_public``) are folded; a to-many fold reads what its loader reads, every row
linked to a parent that is itself visible. A
field selected twice with different selections (aliases) is not folded. Only reads of
parents by id fold (``loaders.by_id``: a root ``post``, ``node`` or ``nodes``): a page of
children joined to their targets repeats a target's columns on each child's row, and for
2,500 comments of about 1,000 distinct authors that cost 17 % more instructions than reading
each author once.
Source: the one-statement reads of PostGraphile and Hasura (PostGraphile selects to-many
relations as arrays in the parent's row); SQLAlchemy's "joined eager loading" (a to-one
relationship read in the parent's SELECT); PostgreSQL docs, "Array Constructors"
(``ARRAY(subquery)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, Table, TypeDecorator, func, inspect, select
from sqlalchemy.orm import aliased

from db import reader
from schema.reads import fetch, pruning
from schema.reads.pruning import SELECTED, Reads
from schema.reads.visibility import is_public

if TYPE_CHECKING:
    from schema.context import Context


@dataclass(frozen=True, slots=True)
class Linked:
    """A to-many field for ``foldable``: the ``target`` rows linked to the parent through the
    table ``link`` (its ``parent_key`` column holds the parent's id, its ``target_key`` the
    target's), in target id order; ``loader(ctx)`` is the DataLoader (parent id -> list of
    target rows) the field's batch reads them with, whose rows are the ones ``db.reader``
    gives for a later entity of a statement."""

    target: Any
    link: Table
    parent_key: str
    target_key: str
    loader: Callable[[Context], Any]


@dataclass(frozen=True, slots=True)
class ToOne:
    """``parent``'s field ``name`` ("Type.field"): the ``target`` row whose id is in the
    parent's ``foreign_key`` column."""

    name: str
    parent: Any
    target: Any
    foreign_key: str

    def add_to(self, statement: Select[Any], parent: Any, omit: frozenset[str]) -> Select[Any]:
        """``statement`` with the target's columns added (but ``omit``) and its row joined on
        the foreign key (``LEFT OUTER JOIN``: a missing target is a row of nulls, which the
        field's batch then reads as it would have)."""
        target = aliased(self.target)
        return statement.add_columns(fetch.columns_of(target, omit)).outerjoin(
            target, target.id == getattr(parent, self.foreign_key)
        )

    def prime(self, ctx: Context, reads: Reads, rows: Sequence[Sequence[Any]], at: int) -> None:
        """Hand the target rows (``rows[i][at]``) to ``loaders.by_id`` under ``reads``."""
        from schema.reads import loaders

        token = SELECTED.set(reads)
        try:
            known = loaders.by_id(ctx, self.target).known
        finally:
            SELECTED.reset(token)
        for row in rows:
            target = row[at]
            if target.id is not None:
                known[target.id] = target


@dataclass(frozen=True, slots=True)
class ToMany:
    """``parent``'s field ``name`` ("Type.field"): the rows ``linked`` describes."""

    name: str
    parent: Any
    linked: Linked

    @property
    def target(self) -> Any:
        return self.linked.target

    def add_to(self, statement: Select[Any], parent: Any, omit: frozenset[str]) -> Select[Any]:
        """``statement`` with, per parent row, the array of its target rows (every column,
        in mapper order: the field's loader reads whole rows)."""
        linked = self.linked
        target, link = aliased(linked.target), linked.link.alias()
        columns = [getattr(target, key) for key in reader.entity_keys(linked.target)]
        rows = (
            select(func.row(*columns))
            .select_from(link.join(target, target.id == link.c[linked.target_key]))
            .where(link.c[linked.parent_key] == parent.id)
            .order_by(target.id)
            .scalar_subquery()
        )
        array: ColumnElement[Any] = func.array(rows)
        return statement.add_columns(array)

    def prime(self, ctx: Context, reads: Reads, rows: Sequence[Sequence[Any]], at: int) -> None:
        """Hand each parent's target rows (``rows[i][at]``, tuples) to the field's loader."""
        make = reader.entity_row(self.linked.target)
        known = self.linked.loader(ctx).known
        for row in rows:
            known[row[0].id] = [make(values) for values in row[at]]


#: parent model -> its foldable fields.
_FOLDABLE: dict[Any, tuple[ToOne | ToMany, ...]] = {}
_NAMES: set[str] = set()


def foldable(model: Any, type_name: str, **fields: tuple[Any, str] | Linked) -> None:
    """Declare ``model``'s relationship fields that may be read in its statements: each
    keyword is a field of ``type_name`` (Python name), its value ``(target model, foreign-key
    attribute of model)`` for a to-one field, or a ``Linked`` for a to-many one.

    A to-one field's batch must read the target with ``loaders.by_id``, and every viewer
    must be allowed to see the target (the join applies no visibility condition). A to-many
    field's batch must read with the ``Linked`` loader, which must read every row linked to
    a parent it is given, with no condition of its own (what a visible post carries is
    visible: its tags). Raises ``ValueError`` for a to-one target that is not public, and
    for a to-many target with a column the driver does not give as the ORM would (a
    ``TypeDecorator``: array elements get no result processing).
    """
    declared: list[ToOne | ToMany] = []
    for field, how in fields.items():
        name = f"{type_name}.{field}"
        if isinstance(how, Linked):
            target = how.target
            columns = inspect(target).columns
            decorated = [c.key for c in columns if isinstance(c.type, TypeDecorator)]
            if decorated:
                raise ValueError(f"{name}: {target.__name__}.{decorated[0]} needs processing")
            declared.append(ToMany(name, model, how))
        else:
            target, foreign_key = how
            if not is_public(target):
                raise ValueError(f"{name}: {target.__name__} rows are not public")
            declared.append(ToOne(name, model, target, foreign_key))
        _NAMES.add(name)
    _FOLDABLE[model] = tuple(declared)


def is_foldable(type_name: str, field: str) -> bool:
    """True when ``type_name``'s field ``field`` (Python name) was declared ``foldable``."""
    return f"{type_name}.{field}" in _NAMES


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    """One field read in the parents' statement: with its field's ``reads`` and the target's
    columns left out (``omit``)."""

    field: ToOne | ToMany
    reads: Reads
    omit: frozenset[str]

    @property
    def key(self) -> tuple[str, frozenset[str]]:
        """What the statement depends on (for DataLoader and statement keys)."""
        return (self.field.name, self.omit)


def folds(ctx: Context, model: Any) -> tuple[Fold, ...]:
    """The foldable fields of ``model`` to read in the statement being built for the field
    being resolved: those its selection reads (``SELECTED``), on the driver only. Its caller
    (``loaders.by_id``) remembers the answer with the plan's reads."""
    selected = SELECTED.get()
    declared = _FOLDABLE.get(model)
    if selected is None or declared is None or not selected.folded or not ctx.reads_on_driver:
        return ()
    found = []
    for field in declared:
        reads = selected.folded.get(field.name)
        if reads is not None:
            token = SELECTED.set(reads)
            try:
                omit = pruning.omitted(ctx, field.target)
            finally:
                SELECTED.reset(token)
            found.append(Fold(field, reads, omit))
    return tuple(found)


def with_folds(statement: Select[Any], parent: Any, found: Sequence[Fold]) -> Select[Any]:
    """``statement`` (which selects ``parent``, a mapped class or an aliased one, first) with
    one more selected element per fold, in order (``ToOne.add_to``, ``ToMany.add_to``)."""
    for fold in found:
        statement = fold.field.add_to(statement, parent, fold.omit)
    return statement


def prime(ctx: Context, found: Sequence[Fold], rows: Sequence[Sequence[Any]], at: int) -> None:
    """Hand each fold's rows (``rows[i][at + j]`` for fold ``j``; ``rows[i][0]`` is the
    parent) to the DataLoader its field's batch will read them with."""
    for column, fold in enumerate(found, start=at):
        fold.field.prime(ctx, fold.reads, rows, column)
