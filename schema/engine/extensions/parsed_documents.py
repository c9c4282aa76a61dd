"""Parsing once per document text, in a cache bounded in characters as well as entries.

Strawberry's ``ParserCache`` is an ``lru_cache`` of ``parse`` bounded by entries only: with
graphql-core keeping every token of a document (its nodes' locations point into the token
list), a document costs 100 to 300 bytes of memory per character of text, so 1,024 unique
documents of a few kilobytes each could hold gigabytes. ``TextCache`` bounds the text it keeps
(and so what was built from it), and keeps no document longer than a client's real ones are.

A document the limits refuse is not kept (``keep``): unique hostile documents would push
clients' documents out. A text it has not seen, unless short, is parsed off the event loop, in
one thread per process (``PARSER``), and ``keep`` (measuring the limits' ``Shape``) runs there
too: parsing is linear, but 29 KB of one field repeated costs 45 to 100 ms, and 60 of
them in flight would hold each worker's event loop for seconds, ``/healthz`` included. In the
thread, the loop still gets the GIL at least every switch interval (5 ms); one thread keeps
the parsing of one process to one core's worth, as it was; a request that goes away before its
turn is not parsed (its future is cancelled). A repeated text is found in the cache, on the
loop, as before.
Source: Strawberry ``extensions/parser_cache.py``; graphql-core ``language/parser.py``
(``no_location`` would save memory but drops the ``locations`` of validation errors);
Python ``sys.setswitchinterval``, ``asyncio.loop.run_in_executor``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from graphql import DocumentNode, parse
from strawberry.extensions import SchemaExtension

V = TypeVar("V")

#: Distinct documents whose parse and validation results are kept, per cache.
DOCUMENTS = 1024
#: Characters of document text each cache keeps at most, all entries together: about 25 to
#: 80 MB of syntax trees at worst (100 to 300 bytes per character, measured with tracemalloc).
CHARACTERS = 256 * 1024
#: The longest text a cache keeps: clients' documents are a few kilobytes; a longer one is
#: parsed (and validated) each time it is sent.
LONGEST = 16 * 1024
#: Texts shorter than this are parsed on the event loop (a fraction of a millisecond): the
#: hop to the thread would cost more. The 1.2 KB fragment fan-out of issue 19 is longer.
INLINE = 512
#: The thread that parses texts of ``INLINE`` characters or more (made on first use, so
#: each worker process has its own).
PARSER: ThreadPoolExecutor | None = None


class TextCache(Generic[V]):
    """An LRU of values by key (a document's text, with whatever else decides the value),
    bounded by ``entries`` and by ``characters`` of text over all entries; a value whose
    text is longer than ``longest`` characters is not kept. Not thread-safe: one per event
    loop's schema."""

    def __init__(
        self, entries: int = DOCUMENTS, characters: int = CHARACTERS, longest: int = LONGEST
    ) -> None:
        self.entries, self.characters, self.longest = entries, characters, longest
        self.size = 0  # characters of text kept
        self._values: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable) -> V | None:
        """The value kept for ``key`` (now the most recently used), or ``None``."""
        found = self._values.get(key)
        if found is None:
            return None
        self._values.move_to_end(key)
        return found[0]

    def put(self, key: Hashable, value: V, characters: int) -> None:
        """Keep ``value`` for ``key``, made from ``characters`` of text, dropping the least
        recently used entries until both bounds hold (nothing if the text is too long)."""
        if characters > self.longest:
            return
        old = self._values.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._values[key] = (value, characters)
        self.size += characters
        while len(self._values) > self.entries or self.size > self.characters:
            _, (_, dropped) = self._values.popitem(last=False)
            self.size -= dropped


class ParsedDocuments(SchemaExtension):
    """Parses the operation's text once (with the ``parse_options`` other extensions set,
    which are the same for every operation of one schema: ``QueryLimits``' ``max_tokens``),
    off the event loop unless it is short; keeps the document in ``documents`` (shared by
    every operation of one schema) if ``keep`` says so (called where it was parsed), and
    hands it to Strawberry, which then does not parse. A syntax error is raised each time."""

    def __init__(
        self,
        documents: TextCache[DocumentNode],
        keep: Callable[[DocumentNode], bool] = lambda _: True,
    ) -> None:
        self.documents = documents
        self.keep = keep

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        text = context.query
        if text is not None and context.graphql_document is None:
            document = self.documents.get(text)
            if document is None:
                options = dict(context.parse_options)
                if len(text) < INLINE:
                    document, kept = self._parse(text, options)
                else:
                    loop = asyncio.get_running_loop()
                    parsing = loop.run_in_executor(_parser(), self._parse, text, options)
                    document, kept = await parsing
                if kept:
                    self.documents.put(text, document, len(text))
            context.graphql_document = document
        yield

    def _parse(self, text: str, options: dict[str, Any]) -> tuple[DocumentNode, bool]:
        document = unlink_tokens(parse(text, **options))
        return document, self.keep(document)


def unlink_tokens(document: DocumentNode) -> DocumentNode:
    """``document`` with its tokens no longer linked to each other; returns it.

    graphql-core's lexer links every token to the one before and the one after it, and the
    nodes' locations keep the chain (``Location.start_token``), so each parsed document is one
    big reference cycle. Dropped, it waits for the cyclic garbage collector, and one
    generation-0 collection of the tokens of a few hundred refused documents was measured at
    125 to 250 ms, with the whole process stopped (``bench/hostile.py``); kept in a cache, it
    holds every token of its text. Nothing reads the links once the parser is done (errors
    take their line and column from the token a location names), so here each token lets go
    of its neighbours: a token no location names is freed at once, and the document is freed
    by reference counting when its last user lets go.
    Source: graphql-core ``language/ast.py`` (``Token.prev``/``next``, ``Location``);
    Python docs, ``gc`` ("objects in reference cycles" are the collector's only work).
    """
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:
        token.prev, token.next, token = None, None, token.next
    return document


def _parser() -> ThreadPoolExecutor:
    global PARSER  # one per process, made when first needed
    if PARSER is None:
        PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inkwell-parse")
    return PARSER
