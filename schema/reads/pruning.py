"""Column pruning: a planned query reads only the columns its selection uses.

Decoding a ``timestamptz`` costs asyncpg about 0.6 µs a value here, more than the rest of a
narrow row, and a post's ``content`` is most of its bytes; a nested read that selects titles
and bodies would pay for thousands of them. So each entity declares its *prunable* columns
(``prunable``): wide or costly ones, and the narrow ones few selections read (a role, a
version), each with the GraphQL fields that read it. While the breadth-first executor
resolves a field, ``SELECTED`` holds the fields its plan selects on each entity type below
it (``schema.engine.executor.plan.FieldPlan.reads``), and the statements built for it
(``listing.root_connection``, ``loaders.by_id``, ``loaders.pages``) leave out every prunable
column no selected field reads (``omitted``), except the ordering's column, which cursors
encode (``keep``).

Rows come back with the left-out columns holding ``db.reader.OMITTED``, so ``from_row`` is
unchanged; a field that read one by mistake would fail loudly (no scalar serialises it),
never answer with a wrong value. Keys, foreign keys and the columns visibility reads are
never prunable. Only reads on the driver prune (``Context.reads_on_driver``); the unit of
work's ORM instances are always whole.

Each set of left-out columns is a statement (and a DataLoader) of its own: two fields at one
level reading the same entity with different selections now run two statements, not one.
Source: the idea is PostGraphile's and Hasura's (SQL selecting only what the query asks).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schema.context import Context


class Reads(dict[str, frozenset[str]]):
    """GraphQL type name -> the Python names of the fields a selection reads on that type.

    ``folded`` holds, for each relationship field the selection reads that may be read in
    its parents' statement (``schema.reads.folding``), keyed ``"Type.field"``, that field's own
    reads.
    """

    __slots__ = ("derived", "folded")

    def __init__(
        self,
        types: Mapping[str, frozenset[str]] | None = None,
        folded: Mapping[str, Reads] | None = None,
    ) -> None:
        super().__init__(types or {})
        self.folded: Mapping[str, Reads] = folded or {}
        #: What is worked out from these reads alone, kept with them (they belong to a
        #: cached plan, and every operation of that plan asks the same): by what asks.
        self.derived: dict[Hashable, Any] = {}

    # Equal when both parts are: ``dict``'s comparison alone would ignore ``folded``.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reads) and dict.__eq__(self, other) and self.folded == other.folded

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # mutable, like dict


#: What the field being resolved selects below it (``None``: not known, nothing is pruned).
SELECTED: ContextVar[Reads | None] = ContextVar("inkwell_selected", default=None)

_NOTHING: frozenset[str] = frozenset()

#: model -> (its GraphQL type's name, prunable column key -> the fields that read it).
_PRUNABLE: dict[Any, tuple[str, dict[str, frozenset[str]]]] = {}


def prunable(model: Any, type_name: str, **columns: Iterable[str]) -> None:
    """Declare ``model``'s prunable columns: each keyword is a column attribute key, its value
    the Python names of ``type_name``'s fields that read it (``content=("content",)``)."""
    _PRUNABLE[model] = (type_name, {key: frozenset(fields) for key, fields in columns.items()})


def is_prunable_type(type_name: str) -> bool:
    """True when ``type_name`` is an entity type with prunable columns."""
    return any(name == type_name for name, _ in _PRUNABLE.values())


def omitted(ctx: Context, model: Any, keep: Iterable[str] = ()) -> frozenset[str]:
    """The columns of ``model`` a statement for the field being resolved may leave out: its
    prunable columns that no selected field reads, except ``keep`` (e.g. the ordering's
    column, which cursors encode). Empty outside a planned read on the driver."""
    selected = SELECTED.get()
    declared = _PRUNABLE.get(model)
    if selected is None or declared is None or not ctx.reads_on_driver:
        return _NOTHING
    memo_key = ("omitted", model, tuple(keep))
    found: frozenset[str] | None = selected.derived.get(memo_key)
    if found is None:
        type_name, columns = declared
        # A type the selection never reaches has nothing read from its rows (a connection
        # whose only selected field is `totalCount`).
        fields = selected.get(type_name, _NOTHING)
        kept = set(keep)
        found = selected.derived[memo_key] = frozenset(
            key for key, readers in columns.items() if key not in kept and not readers & fields
        )
    return found
