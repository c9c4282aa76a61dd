"""A parsed document's shape, measured before validation in time linear in its size.

Validation costs more than linear time on some documents: graphql-core's
``OverlappingFieldsCanBeMerged`` compares the fields of a selection set pairwise, with
fragments expanded, so a kilobyte of fragments spreading each other twice
(``fragment F0 on Query { ...F1 ...F1 }`` ... ``F30``) or the same field thousands of times
keeps a worker busy for a third of a second each. What those documents have in common shows
on the syntax tree alone: the number of selections once fragments are expanded. It is
counted here without expanding anything, one pass over each definition and then a memoised
sum per fragment over the graph of spreads (each fragment's total counted once however often
it is spread), so a 2^30-field expansion costs what its 1 KB of text costs; a spread that
closes a cycle is found on the way. Depth and aliases are measured the same way, by the rules
``schema.engine.limits.measure`` uses (introspection fields and what is under them are not
measured), so the limits on them can refuse a document before validation too; a field the
schema does not have counts like any other (validation reports it, if the document gets there).
Source: graphql-core ``validation/validate.py`` (``FragmentNestingVisitor``, the same walk
without recursion), ``validation/rules/overlapping_fields_can_be_merged.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

#: Sums stop growing here: an exponential expansion stays a small number.
CAP = 1 << 40


@dataclass
class Shape:
    """What ``shape`` found in a document.

    ``selections``: field selections, fragment spreads and inline fragments with fragments
    expanded: all operations together, or the largest fragment's if that is more (validation
    walks every fragment, used or not). ``depth``, ``aliases``: the largest of any operation
    (as ``measure`` counts them). ``cycle``: the name of a fragment that spreads itself,
    directly or through others, else ``None`` (then the other numbers are partial).
    """

    selections: int = 0
    depth: int = 0
    aliases: int = 0
    cycle: str | None = None


@dataclass
class _Own:
    """One definition's own numbers, its spreads not followed: selections, field depth and
    aliases, and its spreads, each as (fragment name, fields around it, measured)."""

    selections: int = 0
    depth: int = 0
    aliases: int = 0
    spreads: list[tuple[str, int, bool]] = field(default_factory=list)


def _own(selection_set: SelectionSetNode) -> _Own:
    """One walk of a definition's selections (a stack, not recursion: a deep document must
    not exhaust the interpreter's recursion limit here)."""
    own = _Own()
    # (selection set, fields around it, whether it is measured: not under ``__schema``...)
    stack = [(selection_set, 0, True)]
    while stack:
        selections, depth, measured = stack.pop()
        for node in selections.selections:
            own.selections += 1
            if isinstance(node, FieldNode):
                counted = measured and not node.name.value.startswith("__")
                if counted:
                    own.depth = max(own.depth, depth + 1)
                    own.aliases += node.alias is not None
                if node.selection_set is not None:
                    stack.append((node.selection_set, depth + 1, counted))
            elif isinstance(node, InlineFragmentNode):
                stack.append((node.selection_set, depth, measured))
            elif isinstance(node, FragmentSpreadNode):
                own.spreads.append((node.name.value, depth, measured))
    return own


def shape(document: DocumentNode) -> Shape:
    """The ``Shape`` of ``document`` (any document the parser accepted, valid or not): time
    and memory linear in its size, whatever its fragments expand into."""
    found = Shape()
    owns: dict[str, _Own] = {}
    operations: list[_Own] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            owns.setdefault(definition.name.value, _own(definition.selection_set))
        elif isinstance(definition, OperationDefinitionNode):
            operations.append(_own(definition.selection_set))
    totals = _expand(owns, found)
    if found.cycle is not None:
        return found
    in_operations = 0
    for own in operations:
        total = _total(own, totals)
        in_operations = min(CAP, in_operations + total.selections)
        found.depth = max(found.depth, total.depth)
        found.aliases = max(found.aliases, total.aliases)
    largest_fragment = max((t.selections for t in totals.values()), default=0)
    found.selections = max(in_operations, largest_fragment)
    return found


def _total(own: _Own, totals: dict[str, _Own]) -> _Own:
    """``own``'s numbers with its spreads expanded, from the fragments' ``totals`` (a spread
    of a fragment the document lacks adds nothing: validation reports it)."""
    total = _Own(own.selections, own.depth, own.aliases)
    for name, depth, measured in own.spreads:
        spread = totals.get(name)
        if spread is None:
            continue
        total.selections = min(CAP, total.selections + spread.selections)
        if measured:
            total.depth = max(total.depth, depth + spread.depth)
            total.aliases = min(CAP, total.aliases + spread.aliases)
    return total


def _expand(owns: dict[str, _Own], found: Shape) -> dict[str, _Own]:
    """Each fragment's totals, children before parents (a depth-first walk of the spreads
    with an explicit stack); sets ``found.cycle`` and stops at a spread back onto the path."""
    totals: dict[str, _Own] = {}
    for root in owns:
        if root in totals:
            continue
        path = [(root, iter(owns[root].spreads))]
        on_path = {root}
        while path:
            name, spreads = path[-1]
            for spread, _depth, _measured in spreads:
                if spread in on_path:
                    found.cycle = spread
                    return totals
                if spread in owns and spread not in totals:
                    path.append((spread, iter(owns[spread].spreads)))
                    on_path.add(spread)
                    break
            else:
                path.pop()
                on_path.remove(name)
                totals[name] = _total(owns[name], totals)
    return totals
