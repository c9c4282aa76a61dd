"""HTTP's answer to an operation over a rate limit: 429 Too Many Requests with ``Retry-After``.

A ``RATE_LIMITED`` error (``schema.engine.rate_limits``) carries the wait in whole seconds
(``extensions.retryAfterSeconds``); the response gets status 429 and that wait as
``Retry-After``, whatever the media type, so HTTP clients, proxies and load balancers that
know nothing of GraphQL back off too. (An operation over the limit ran nothing; a ``login``
or ``register`` over its attempts' limit is a field error, and the mutation is rolled back.)
Source: RFC 6585 §4 (429 Too Many Requests); RFC 9110 §10.2.3 (Retry-After, delay-seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

CODE = "RATE_LIMITED"


def retry_after(response_data: Mapping[str, Any]) -> int | None:
    """The longest ``retryAfterSeconds`` of the response's ``RATE_LIMITED`` errors, or
    ``None`` when it has none."""
    waits = [
        int(extensions.get("retryAfterSeconds") or 1)
        for error in response_data.get("errors") or ()
        if (extensions := error.get("extensions") or {}).get("code") == CODE
    ]
    return max(waits) if waits else None


def too_many_requests(response_data: Mapping[str, Any], response: Response) -> None:
    """Make ``response`` a 429 with ``Retry-After`` when ``response_data`` was refused by a
    rate limit (``schema.transport.media`` gives a request error of that code 429 too)."""
    wait = retry_after(response_data)
    if wait is not None:
        response.status_code = 429
        response.headers["retry-after"] = str(wait)
