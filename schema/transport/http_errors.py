"""GraphQL-shaped error responses for requests refused before they reach GraphQL."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Send


async def send_error(
    send: Send, status: int, message: str, extensions: dict[str, Any], *, close: bool = False
) -> None:
    """Answer ``status`` with ``{"errors": [{"message", "extensions"}]}`` as JSON, the shape
    GraphQL clients already read errors from; with ``close``, ``Connection: close`` too (the
    server closes the connection once the answer is sent: uvicorn does on that header)."""
    body = orjson.dumps({"errors": [{"message": message, "extensions": extensions}]})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
