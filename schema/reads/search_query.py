"""A search text in the web-search syntax, parsed once and written for each database's engine.

The syntax is PostgreSQL's ``websearch_to_tsquery``'s, the one people type into search boxes:

- words: every one must appear (``garden tips``), stemmed (``publish`` finds "published");
- ``"a phrase"``: its words in that order, next to each other;
- ``-word`` or ``-"a phrase"``: no post holding it;
- ``OR`` (any case) between two terms: either suffices. ``AND`` binds tighter than ``OR``:
  ``cat dog OR rat`` is (cat and dog) or rat, and an exclusion belongs to its side of the
  ``OR``.

``parse`` reads the text into groups (the alternatives between ``OR``s, each a list of terms
that must appear and terms that must not) and rejects, with ``InvalidSearch``, a text with
nothing to look for: empty, only punctuation, or an alternative of exclusions alone (which
would list nearly every post, and which SQLite's FTS5 cannot express). A term keeps only its
words (runs of letters, digits and ``_``), so punctuation, quotes and operators of either
engine in the text are never syntax: ``websearch_text`` writes every term quoted for
PostgreSQL, ``fts5_match`` writes every term as an FTS5 string, which the tokenizer splits
into a phrase. Words too common to index (PostgreSQL's English stop words: "the", "a") are
found out by the database (``schema.reads.search``).

Sources: PostgreSQL docs, 12.3.2 "Parsing Queries" (``websearch_to_tsquery``); SQLite docs,
"FTS5", 3 "Full-text Query Syntax" (strings, phrases, ``AND``/``OR``/``NOT`` and their
precedence: ``NOT`` binds tightest, then ``AND``, then ``OR``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from schema.validation import MAX_SEARCH, encodable

_WORD = re.compile(r"\w+")


class Problem(Enum):
    """Why a search text cannot be searched for."""

    EMPTY = "empty"
    NO_WORDS = "no words"
    ONLY_EXCLUSIONS = "only exclusions"
    TOO_LONG = "too long"
    INVALID_CHARACTER = "invalid character"


class InvalidSearch(Exception):
    """A search text with nothing to look for, or one that cannot be stored as text;
    ``problem`` says which, ``message`` says it to a person."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True, slots=True)
class Group:
    """One alternative: posts holding every ``include`` term and none of the ``exclude``
    terms. A term is its words: one word, or a phrase's words in order."""

    include: tuple[tuple[str, ...], ...]
    exclude: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed search text: posts matching any of ``groups``."""

    groups: tuple[Group, ...]

    def websearch_text(self) -> str:
        """The query again in ``websearch_to_tsquery``'s syntax, every term quoted (so no
        word of it is read as an operator: a quoted ``"or"`` stays a word)."""
        return " or ".join(
            " ".join([*map(_quoted, g.include), *("-" + _quoted(t) for t in g.exclude)])
            for g in self.groups
        )

    def fts5_match(self) -> str:
        """The query as an FTS5 MATCH expression: each term an FTS5 string (its words hold
        no quote, so none can end the string early), an alternative's terms joined by
        ``AND``, its exclusions by ``NOT``, alternatives by ``OR``, all parenthesised."""

        def group(g: Group) -> str:
            included = "(" + " AND ".join(map(_quoted, g.include)) + ")"
            return "(" + "".join([included, *(" NOT " + _quoted(t) for t in g.exclude)]) + ")"

        return " OR ".join(map(group, self.groups))


def _quoted(term: tuple[str, ...]) -> str:
    """``term``'s words inside double quotes: a phrase to ``websearch_to_tsquery`` and a
    string to FTS5 alike (its words are runs of word characters: no quote ends it early)."""
    return '"' + " ".join(term) + '"'


def parse(text: str) -> SearchQuery:
    """Parse ``text`` (the syntax in this module's docstring).

    Raises ``InvalidSearch``: ``EMPTY`` for blank text, ``NO_WORDS`` when no term has a word,
    ``ONLY_EXCLUSIONS`` when an alternative excludes without including, ``TOO_LONG`` above
    ``MAX_SEARCH`` characters, ``INVALID_CHARACTER`` for NUL or a lone surrogate.
    """
    if len(text) > MAX_SEARCH:
        raise InvalidSearch(
            Problem.TOO_LONG,
            f"The search text is {len(text)} characters long; the limit is {MAX_SEARCH}.",
        )
    if "\x00" in text or not encodable(text):
        raise InvalidSearch(
            Problem.INVALID_CHARACTER,
            "The search text contains a character that cannot be searched for "
            "(NUL or a lone surrogate).",
        )
    if not text.strip():
        raise InvalidSearch(Problem.EMPTY, "The search text is empty.")
    groups: list[Group] = []
    include: list[tuple[str, ...]] = []
    exclude: list[tuple[str, ...]] = []

    def close() -> None:
        if include:
            groups.append(Group(tuple(include), tuple(exclude)))
        elif exclude:
            raise InvalidSearch(
                Problem.ONLY_EXCLUSIONS,
                "The search text only excludes words; name at least one word to look for "
                "(on each side of an OR).",
            )
        include.clear()
        exclude.clear()

    for negated, phrase, raw in _tokens(text):
        if not phrase and not negated and raw.lower() == "or":
            close()
            continue
        words = tuple(_WORD.findall(raw))
        if words:
            (exclude if negated else include).append(words)
    close()
    if not groups:
        raise InvalidSearch(
            Problem.NO_WORDS, "The search text has no words to look for, only punctuation."
        )
    return SearchQuery(tuple(groups))


def _tokens(text: str) -> list[tuple[bool, bool, str]]:
    """``text``'s terms as (negated, quoted, text): a ``"`` opens a phrase that runs to the
    next ``"`` (or the end); a ``-`` starting a term negates it; whitespace separates."""
    found: list[tuple[bool, bool, str]] = []
    at, end = 0, len(text)
    while at < end:
        if text[at].isspace():
            at += 1
            continue
        negated = text[at] == "-" and at + 1 < end and not text[at + 1].isspace()
        if negated:
            at += 1
        if text[at] == '"':
            close = text.find('"', at + 1)
            stop = end if close < 0 else close
            found.append((negated, True, text[at + 1 : stop]))
            at = stop + 1
            continue
        start = at
        while at < end and not text[at].isspace() and text[at] != '"':
            at += 1
        found.append((negated, False, text[start:at]))
    return found
