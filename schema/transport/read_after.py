"""Read your writes over HTTP: a mutation's commit position sent back in a response header
(``Inkwell-Read-After``, beside ``extensions.readAfter``), and the position a request carries
in the same header, for ``db.replicas.Replicas.choose``: a replica that has replayed it, else
the primary. Browsers may send and read it across origins (``schema.transport.cors``)."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from db.replicas import READ_AFTER_HEADER, parse_lsn


def carried(request: Request | WebSocket) -> int | None:
    """The WAL position an HTTP request carries (``None``: none, or a WebSocket, whose
    operations count on the process's pin). Raises ``HTTPException`` (400) for a header that
    is not a ``pg_lsn`` (``"16/B374D848"``)."""
    if not isinstance(request, Request):
        return None
    header = request.headers.get(READ_AFTER_HEADER)
    if header is None:
        return None
    try:
        return parse_lsn(header)
    except ValueError as exc:
        raise HTTPException(400, f"{READ_AFTER_HEADER}: {exc}") from None


def send_back(response: Response, response_data: dict[str, Any]) -> None:
    """Copy a committed mutation's position (``extensions.readAfter``) into its header."""
    position = (response_data.get("extensions") or {}).get("readAfter")
    if position:
        response.headers[READ_AFTER_HEADER] = position
