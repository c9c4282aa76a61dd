"""Limits on request bodies, before anything parses them: their size and how long a client
may take to send them."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.transport.http_errors import send_error


class BodySizeLimit:
    """ASGI middleware refusing HTTP request bodies over ``max_bytes`` with ``413``, and bodies
    not received whole within ``timeout_seconds`` of the request's headers with ``408``, each
    with a GraphQL-shaped error (``extensions.code``: ``REQUEST_TOO_LARGE``, ``BODY_TIMEOUT``).

    A declared ``Content-Length`` over the cap is refused before a byte is read; otherwise the
    body is read up to the cap (chunked uploads included) and handed on whole, so the app
    never sees a truncated body. The deadline bounds the whole body, not the wait between two
    reads (nginx's ``client_body_timeout``), so a client trickling a byte at a time cannot hold
    the request open either; the 408 says ``Connection: close`` and uvicorn closes the
    connection, whose unread body would otherwise be taken for the next request. uvicorn has
    no such deadline of its own (issue 19: half-sent bodies stayed open indefinitely). A
    client that leaves while sending its body gets nothing: the app is not called (logged
    as 499 by ``ObserveRequests``).

    Source: RFC 9110 §15.5.14 (413 Content Too Large) and §15.5.9 (408 Request Timeout: "the
    server ... intends to close the connection"); RFC 9112 §9.6 (``Connection: close``).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, declared.isdigit())
            return
        try:
            async with asyncio.timeout(self.timeout_seconds):
                whole = await self._read(receive, send)
        except TimeoutError:
            message = f"The request body was not received within {self.timeout_seconds:g} s."
            extensions = {"code": "BODY_TIMEOUT", "limit": self.timeout_seconds}
            await send_error(send, 408, message, extensions, close=True)
            return
        if whole is not None:
            await self.app(scope, _replay([whole], receive), send)

    async def _read(self, receive: Receive, send: Send) -> Message | None:
        """The whole body as one message; ``None`` when it was refused or the client left."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, True)
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def _refuse(self, send: Send, too_large: bool) -> None:
        if too_large:
            message = f"The request body is over {self.max_bytes:,} bytes."
            await send_error(
                send, 413, message, {"code": "REQUEST_TOO_LARGE", "limit": self.max_bytes}
            )
        else:
            await send_error(
                send, 400, "The Content-Length header is malformed.", {"code": "BAD_REQUEST"}
            )


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first hands out ``messages``, then defers to the real one (which
    reports the client's disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
