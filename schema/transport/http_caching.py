"""HTTP caching of GraphQL GETs: which responses a browser or a CDN may keep.

A persisted query sent as a GET names its document by hash in a short, stable URL, so an
anonymous one is what a CDN can serve from cache (Apollo's "automatic persisted queries over
GET" exist for this). Everything else must not be shared: a signed-in viewer's answer is
theirs alone, an error (a persisted-query miss above all, which the client follows at once
with the document) is not worth keeping, and a POST is never cached by default. With the
response cache on (``schema.engine.response_cache``), every anonymous query's GET is public:
Inkwell serves it from its own cache too. ``Vary`` names
the request headers the answer depends on: ``Authorization`` (who asks) and ``Accept`` (the
media type, ``schema.transport.media``).
Source: RFC 9111, "HTTP Caching" (``Cache-Control``, ``Vary``); Apollo Server docs, "Caching
with a CDN" and "Automatic persisted queries" (GET).
"""

from __future__ import annotations

from collections.abc import Mapping

from settings import Settings

#: A response no cache may keep.
NO_STORE = "no-store"
#: The request headers a GraphQL GET's response depends on.
VARY = "Accept, Authorization"


def cache_headers(
    method: str, params: Mapping[str, str], authorization: str | None, settings: Settings
) -> dict[str, str]:
    """The caching headers for a request's response if it succeeds: for a GET, ``Vary`` and
    a ``Cache-Control`` of ``public, max-age=PUBLIC_CACHE_MAX_AGE_SECONDS`` for an anonymous
    persisted query (hash only, no document; with ``RESPONSE_CACHE``, any anonymous query),
    ``private, no-store`` for a signed-in one, else ``no-store``; nothing for other methods.
    ``params`` are the request's query parameters."""
    if method != "GET":
        return {}
    public = settings.response_cache or ("extensions" in params and not params.get("query"))
    if authorization:
        policy = f"private, {NO_STORE}"
    elif public and settings.public_cache_max_age_seconds > 0:
        policy = f"public, max-age={settings.public_cache_max_age_seconds}"
    else:
        policy = NO_STORE
    return {"Cache-Control": policy, "Vary": VARY}
