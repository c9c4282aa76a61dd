"""One CORS policy for ``/graphql`` over HTTP and WebSocket.

Browsers ask before a cross-origin request that carries a header outside the CORS-safelisted
few (a preflight ``OPTIONS``), and refuse the request unless the answer lists every header it
means to send: so the allowed headers must cover what mainstream GraphQL clients and tracing
tools add on their own, or every request from such an app fails as an opaque "Failed to
fetch". WebSocket handshakes get no preflight; the same origins are checked on them
(Strawberry's ``allowed_origins``), so an app allowed over HTTP can subscribe too.
Source: Fetch standard, "CORS protocol"; W3C Trace Context (``traceparent``, ``tracestate``);
W3C Baggage; Apollo Client docs (``apollo-require-preflight``, client awareness headers).
Response headers a page may read are exposed (Fetch standard, "Access-Control-Expose-Headers").
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from settings import Settings

#: Request headers any allowed origin may send (lower case): credentials and content types,
#: the CSRF-preflight headers (``schema.transport.csrf``), Apollo's operation and client-awareness
#: headers, and distributed tracing's (W3C Trace Context and Baggage, Sentry).
DEFAULT_ALLOWED_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "graphql-require-preflight",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "apollographql-client-name",
    "apollographql-client-version",
    "traceparent",
    "tracestate",
    "baggage",
    "sentry-trace",
    "x-request-id",
    "inkwell-read-after",
)
#: Response headers cross-origin pages may read (none is CORS-safelisted): the request id, a
#: mutation's commit position (``schema.transport.read_after``), which a browser app sends
#: back, and a 429's wait (``schema.transport.rate_limited``).
EXPOSED_HEADERS = ("x-request-id", "inkwell-read-after", "retry-after")


def allowed_headers(settings: Settings) -> list[str]:
    """``DEFAULT_ALLOWED_HEADERS`` and ``CORS_ALLOWED_HEADERS``, without repeats."""
    return list(dict.fromkeys([*DEFAULT_ALLOWED_HEADERS, *settings.cors_allowed_headers]))


def cors_middleware(settings: Settings) -> Middleware | None:
    """Starlette's ``CORSMiddleware`` for ``CORS_ALLOWED_ORIGINS`` (answering preflights
    itself), or ``None`` when no origin is allowed: then browsers refuse cross-origin calls."""
    if not settings.cors_allowed_origins:
        return None
    return Middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allowed_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["GET", "POST"],
        allow_headers=allowed_headers(settings),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=settings.cors_max_age_seconds,
    )
