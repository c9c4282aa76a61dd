"""Content negotiation of GraphQL over HTTP: ``application/graphql-response+json`` and
``application/json``.

With ``application/graphql-response+json`` the status code says what kind of failure a
response is: a request error (the document does not parse or validate, the variables do not
coerce, a limit refused it), with no ``data`` entry at all, is 400; anything that executed is
200, errors or not. With ``application/json`` (the legacy type, and what a client that sends
no Accept gets) every well-formed response is 200.
Source: GraphQL over HTTP spec (graphql/graphql-over-http), "Body", "Status Codes".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
#: The Content-Type header of a ``GRAPHQL_RESPONSE`` answer (the spec's examples name the charset).
GRAPHQL_RESPONSE_CONTENT_TYPE = f"{GRAPHQL_RESPONSE}; charset=utf-8"


def negotiate(accept: str | None) -> str:
    """The media type to answer with for an ``Accept`` header: ``GRAPHQL_RESPONSE`` when the
    client ranks it at least as high as JSON, else ``JSON``."""
    if not accept:
        return JSON
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranks.setdefault(media.lower(), quality)
    wanted = ranks.get(GRAPHQL_RESPONSE, 0.0)
    return GRAPHQL_RESPONSE if wanted > 0 and wanted >= ranks.get(JSON, 0.0) else JSON


def is_request_error(response: Mapping[str, Any]) -> bool:
    """True for a response that never executed: ``data`` null and every error without a
    ``path`` (parse, validation, variable coercion, a refused limit)."""
    errors = response.get("errors") or []
    return bool(errors) and response.get("data") is None and all("path" not in e for e in errors)


def is_authentication_failure(response: Mapping[str, Any]) -> bool:
    """True for a response refused because its credentials were bad (an invalid or expired
    token, a deactivated account): no data, and an ``UNAUTHENTICATED`` error."""
    errors = response.get("errors") or []
    return response.get("data") is None and any(
        (e.get("extensions") or {}).get("code") == "UNAUTHENTICATED" for e in errors
    )


#: Status codes of request errors that are the server's fault (or worth retrying), by
#: ``extensions.code``: a client must not read them as "your request was wrong".
SERVER_ERROR_STATUS = {
    "SERVICE_UNAVAILABLE": 503,
    "TRANSACTION_CONFLICT": 503,
    "REQUEST_TIMEOUT": 504,
    "INTERNAL_SERVER_ERROR": 500,
    "RATE_LIMITED": 429,  # with Retry-After (schema.transport.rate_limited)
}


def request_error_status(response: Mapping[str, Any]) -> int:
    """The status of a request error (``is_request_error``) in ``GRAPHQL_RESPONSE``: 5xx
    when the server failed or the request may simply be retried, else 400 (the request was
    at fault)."""
    codes = [str((e.get("extensions") or {}).get("code")) for e in response.get("errors") or []]
    return max((SERVER_ERROR_STATUS.get(code, 400) for code in codes), default=400)
