"""Where automatic persisted queries are remembered: in the process, or in Redis, shared by
every worker and instance.

In-process (no ``REDIS_URL``), each worker keeps its own LRU of documents by hash, so a client
whose requests are spread over workers and instances is answered ``PersistedQueryNotFound``
once by each of them. With ``REDIS_URL`` the documents live in Redis (redis-py's asyncio
client), each key expiring ``ttl`` seconds after its last registration, so one registration
serves every process. Redis being unreachable never fails a request: the process falls back
to its own LRU (every document is kept there too), skips Redis for a while after a failure
(``RedisLink.available``) and logs one warning line a minute while it lasts
(``schema.engine.redis_link``: the client, the outage and the warning are the process's,
shared with the response cache and the rate limits).
Source: Apollo docs, "Automatic persisted queries" ("Cache configuration": a shared cache
such as Redis for several server instances); redis-py docs, "Asyncio" (``redis.asyncio``,
``Redis.from_url``, ``aclose``); Redis docs, ``SET`` with ``EX``.
"""

from __future__ import annotations

from collections import OrderedDict

from schema.engine.redis_link import UNANSWERED, RedisLink

#: Every key Inkwell writes for persisted queries starts with this.
PREFIX = "inkwell:apq:"


class ProcessStore:
    """Documents by SHA-256 hex digest in this process: an LRU of ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._documents: OrderedDict[str, str] = OrderedDict()

    async def get(self, digest: str) -> str | None:
        """The document registered under ``digest``, or ``None``."""
        return self.recall(digest)

    async def put(self, digest: str, document: str) -> None:
        """Remember ``document`` under ``digest`` (forgetting the least recently used)."""
        self.keep(digest, document)

    def recall(self, digest: str) -> str | None:
        document = self._documents.get(digest)
        if document is not None:
            self._documents.move_to_end(digest)
        return document

    def keep(self, digest: str, document: str) -> None:
        self._documents[digest] = document
        self._documents.move_to_end(digest)
        while len(self._documents) > self.size:
            self._documents.popitem(last=False)

    async def close(self) -> None:
        """Nothing to release."""


class RedisStore(ProcessStore):
    """Documents in Redis under ``PREFIX`` + digest, each expiring ``ttl`` seconds
    after it was last registered, and in the process's own LRU of ``size`` entries, which
    answers first (a hash names one text) and alone while Redis cannot (see the module's
    docstring). ``link`` is the process's Redis client (``schema.engine.redis_link``)."""

    def __init__(self, link: RedisLink, ttl: int, size: int) -> None:
        super().__init__(size)
        self.ttl = ttl
        self._link = link

    async def get(self, digest: str) -> str | None:
        # A hash names one text forever: what this process holds needs no round trip.
        document = self.recall(digest)
        if document is not None:
            return document
        found = await self._link.ask(lambda redis: redis.get(PREFIX + digest))
        if found is UNANSWERED or found is None:
            return None
        document = found.decode()
        self.keep(digest, document)
        return document

    async def put(self, digest: str, document: str) -> None:
        self.keep(digest, document)
        await self._link.ask(lambda redis: redis.set(PREFIX + digest, document, ex=self.ttl))
