"""Persisted queries: Apollo's automatic persisted queries, and an allow-list for production.

Automatic persisted queries (APQ): a client sends ``extensions.persistedQuery = {version: 1,
sha256Hash}`` without the query text; if this process knows the hash it runs that document,
otherwise it answers ``PersistedQueryNotFound`` and the client sends the text with the hash
once, which is checked and remembered. A hash-only request can go over GET, so a CDN can cache
it by URL. With an operation manifest (``OPERATION_MANIFEST``) only the manifest's documents
run, whether sent by hash or in full: an allow-list, for a production API whose clients are
known.
Source: Apollo docs, "Automatic persisted queries" (protocol, error messages) and "Persisted
query manifests" (the manifest format).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from schema.engine.persisted_store import ProcessStore

MANIFEST_FORMAT = "apollo-persisted-query-manifest"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256(document: str) -> str:
    """The hex SHA-256 of a document's UTF-8 text: its persisted-query id."""
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


def load_manifest(path: Path) -> dict[str, str]:
    """The ``{id: body}`` of an Apollo persisted query manifest. Raises ``ValueError`` for a
    file that is not one, or an operation whose id is not the SHA-256 of its body."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the operation manifest {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not an {MANIFEST_FORMAT} (format, version, operations)")
    operations: dict[str, str] = {}
    for operation in manifest.get("operations", []):
        body, id_ = operation.get("body"), operation.get("id")
        if not isinstance(body, str) or id_ != sha256(body):
            raise ValueError(f"{path}: operation {operation.get('name')!r}: id is not sha256(body)")
        operations[id_] = body
    return operations


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class PersistedQueries(SchemaExtension):
    """Resolves ``extensions.persistedQuery`` to the document to run, before parsing.

    ``store`` is where APQ documents are remembered (``schema.engine.persisted_store``: the
    process's LRU, or Redis shared by every process), shared by every operation; ``allowed``
    (from a manifest) makes it an allow-list. Errors, each with
    ``extensions.code``: ``PERSISTED_QUERY_NOT_FOUND`` (send the text too),
    ``PERSISTED_QUERY_HASH_MISMATCH``, ``PERSISTED_QUERY_NOT_SUPPORTED`` (APQ turned off),
    ``BAD_REQUEST`` (a malformed ``persistedQuery``), ``OPERATION_NOT_ALLOWED``.
    """

    def __init__(
        self, store: ProcessStore, *, enabled: bool, allowed: dict[str, str] | None
    ) -> None:
        self.store = store
        self.enabled, self.allowed = enabled, allowed

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context
        persisted = (context.operation_extensions or {}).get("persistedQuery")
        if persisted is not None:
            context.query = await self._resolve(persisted, context.query)
        query = context.query
        if self.allowed is not None and query is not None and sha256(query) not in self.allowed:
            raise _error(
                "This operation is not in the server's allow-list.", "OPERATION_NOT_ALLOWED"
            )
        yield

    async def _resolve(self, persisted: object, query: str | None) -> str:
        if not self.enabled and self.allowed is None:
            raise _error("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        version = persisted.get("version") if isinstance(persisted, dict) else None
        if version != 1 or not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise _error(
                "extensions.persistedQuery must be {version: 1, sha256Hash: <64 hex digits>}.",
                "BAD_REQUEST",
            )
        if query is None:
            if self.allowed is not None:
                known = self.allowed.get(digest)
            else:
                known = await self.store.get(digest)
            if known is None:
                raise _error("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            return known
        if sha256(query) != digest:
            raise _error("provided sha does not match query", "PERSISTED_QUERY_HASH_MISMATCH")
        if self.allowed is None:
            await self.store.put(digest, query)
        return query
