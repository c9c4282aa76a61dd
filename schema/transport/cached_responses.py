"""Anonymous queries answered from the response cache, before anything else runs.

The view (``GraphQLApp.run``) asks ``serve_cached`` first. A request is looked up when it has
no ``Authorization`` header at all (any credentials, even bad ones, go the normal way: they
must be checked) nor ``Inkwell-Read-After`` (a read at a WAL position, whose malformed value
is a 400), and is a GET, or a POST of ``application/json``, not asking for a stream, that
sends a document's text or a persisted query's hash, not both (the miss registers the hash).
Its key comes from the raw request: the document's SHA-256 (of the text, or the persisted
query's hash when only that is sent), the operation name and the variables; nothing is
parsed, validated or executed, and the one Redis round trip (or none, per process) is the
whole cost of a hit (``schema.engine.response_cache``). A hit is answered as the miss was:
the same body, media type (``Accept``, ``schema.transport.media``) and caching headers, plus
``X-Cache: HIT``; with ``SQL_STATS`` its ``extensions.sql`` says no statement ran. A miss
goes on with ``X-Cache: MISS``, its look-up kept on the request (``request.state``) for the
fill once the response is known to be an error-free query's (``GraphQLApp.process_result``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from db.replicas import READ_AFTER_HEADER
from schema.engine.response_cache import ResponseCache
from schema.engine.response_entries import Lookup
from schema.telemetry.operation import MAX_NAME, current
from schema.transport.http_caching import cache_headers
from schema.transport.media import GRAPHQL_RESPONSE, GRAPHQL_RESPONSE_CONTENT_TYPE, JSON, negotiate
from schema.transport.streams import names_a_stream
from settings import Settings

#: A hit's ``extensions.sql`` (``SQL_STATS``): it ran no statement.
NO_STATEMENTS = b',"extensions":{"sql":{"statements":0,"durationMs":0.0}}}'
#: Where a miss keeps its look-up, on ``request.state``.
STATE = "response_cache"
#: A header saying whether the response came from the cache: for operators and tests.
X_CACHE = "x-cache"


def _request(request: Request) -> tuple[Any, Any, Any, Any] | None:
    """``(query, variables, operationName, extensions)`` of a GET's parameters; ``None``
    when the variables or extensions are not JSON (Strawberry then says so)."""
    params = request.query_params
    try:
        variables = orjson.loads(params["variables"]) if "variables" in params else None
        extensions = orjson.loads(params["extensions"]) if "extensions" in params else None
    except orjson.JSONDecodeError:
        return None
    return params.get("query"), variables, params.get("operationName"), extensions


async def _body(request: Request) -> tuple[Any, Any, Any, Any] | None:
    """The same of a JSON POST's body (read once: Starlette keeps it for Strawberry)."""
    media = (request.headers.get("content-type") or "").partition(";")[0].strip()
    if media != "application/json":
        return None
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    return (
        data.get("query"),
        data.get("variables"),
        data.get("operationName"),
        data.get("extensions"),
    )


def _document(query: Any, extensions: Any) -> tuple[str, str] | None:
    """``(mode, SHA-256 hex digest)`` of the document a request names: ``text`` with its
    text alone, ``hash`` with a persisted query's hash alone (``version`` 1); ``None`` for
    anything else, such as the text and its hash together: the miss registers the hash
    (``schema.engine.extensions.persisted_queries``), which a hit would skip."""
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if isinstance(query, str) and query:
        return ("text", hashlib.sha256(query.encode()).hexdigest()) if persisted is None else None
    if query is None and isinstance(persisted, dict) and persisted.get("version") == 1:
        digest = persisted.get("sha256Hash")
        if isinstance(digest, str) and len(digest) == 64:
            return "hash", digest
    return None


def lookup_of(request: Request | WebSocket) -> Lookup | None:
    """The look-up ``serve_cached`` left on ``request`` (a miss that may be filled)."""
    return getattr(request.state, STATE, None)


def response_headers(request: Request, settings: Settings) -> dict[str, str]:
    """The caching headers of a response to ``request`` (``cache_headers``), with
    ``X-Cache: MISS`` when it was looked up in the response cache."""
    headers = cache_headers(
        request.method, request.query_params, request.headers.get("authorization"), settings
    )
    if lookup_of(request) is not None:
        headers[X_CACHE] = "MISS"
    return headers


async def fill(request: Request, result: Any) -> None:
    """Cache ``result`` (an ``ExecutionResult``) for ``request`` if its look-up was marked
    cacheable (``schema.engine.extensions.cacheable``) and it has no errors: its whole body
    as sent, ``{"data": ...}`` (the extensions, SQL statistics, are the execution's own; a
    hit writes its own)."""
    lookup = lookup_of(request)
    if lookup is not None and lookup.tables is not None and not result.errors:
        cache: ResponseCache = request.app.state.response_cache
        await cache.fill(lookup, orjson.dumps({"data": result.data}))


async def serve_cached(request: Request, settings: Settings) -> Response | None:
    """The cached response to ``request``, or ``None`` to execute it (then, if it may be
    cached, with its look-up on ``request.state``); ``None`` too when the cache is off.
    Never raises for a malformed request: Strawberry refuses it."""
    cache: ResponseCache | None = request.app.state.response_cache
    if cache is None:
        return None
    headers = request.headers
    method = request.method
    if (
        "authorization" in headers
        or READ_AFTER_HEADER in headers
        or names_a_stream(headers.get("accept"))
    ):
        return None
    if method == "GET":
        parts = _request(request)
    elif method == "POST":
        parts = await _body(request)
    else:
        return None
    if parts is None:
        return None
    query, variables, operation_name, extensions = parts
    document = _document(query, extensions)
    if (
        document is None
        or not isinstance(variables, dict | None)
        or not isinstance(operation_name, str | None)
    ):
        return None
    key = cache.key(document[0], document[1], operation_name, variables or {})
    body, lookup = await cache.lookup(key, document[1])
    if body is None:
        if lookup is not None:
            setattr(request.state, STATE, lookup)
        return None
    return _hit(request, body, operation_name, settings)


def _hit(request: Request, body: bytes, operation_name: str | None, settings: Settings) -> Response:
    if settings.sql_stats_enabled:
        body = body[:-1] + NO_STATEMENTS
    operation = current()
    if operation is not None:
        operation.kind = "query"
        operation.name = operation_name[:MAX_NAME] if operation_name else None
    media = negotiate(request.headers.get("accept"))
    headers = cache_headers(request.method, request.query_params, None, settings)
    headers[X_CACHE] = "HIT"
    media_type = GRAPHQL_RESPONSE_CONTENT_TYPE if media == GRAPHQL_RESPONSE else JSON
    return Response(body, headers=headers, media_type=media_type)
