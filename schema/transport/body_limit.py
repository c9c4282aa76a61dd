"""A cap on request bodies, before anything parses them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.transport.http_errors import send_error


class BodySizeLimit:
    """ASGI middleware refusing HTTP request bodies over ``max_bytes`` with ``413`` and a
    GraphQL-shaped error (``extensions.code = "REQUEST_TOO_LARGE"``).

    A declared ``Content-Length`` over the cap is refused before a byte is read; otherwise the
    body is read up to the cap (chunked uploads included) and handed on whole, so the app
    never sees a truncated body. Source: RFC 9110 §15.5.14 (413 Content Too Large).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, declared.isdigit())
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, True)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

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
