"""Stop the work of a request whose client has gone away."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CancelOnDisconnect:
    """ASGI middleware cancelling an HTTP request's handling when its client disconnects.

    Once the app has read the whole body it has no reason to call ``receive`` again, so
    nothing would notice the client leaving: a mutation would run on and commit for nobody.
    Here a watcher waits for ``http.disconnect`` and cancels the app; the transaction
    extension then rolls the operation back, and ``UnitOfWork`` returns its connection to the
    pool (a statement in flight finishes first: ``Context.run``). If the app calls
    ``receive`` itself afterwards, it gets the message the watcher saw.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = asyncio.Event()
        after_body: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        async def app_receive() -> Message:
            if body_read.is_set():
                return await asyncio.shield(after_body)
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read.set()
            return message

        handler = asyncio.ensure_future(self.app(scope, app_receive, send))

        async def watch() -> None:
            await body_read.wait()
            message = await receive()
            after_body.set_result(message)
            if message["type"] == "http.disconnect":
                handler.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await handler
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if handler.cancelled() and not after_body.done():
            raise asyncio.CancelledError  # we were cancelled ourselves, not by the client
