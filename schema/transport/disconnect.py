"""Stop the work of a request whose client has gone away."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CancelOnDisconnect:
    """ASGI middleware cancelling an HTTP request's handling when its client disconnects.

    Once the app has read the whole body it has no reason to call ``receive`` again, so
    nothing would notice the client leaving: a mutation would run on and commit for nobody.
    Here a watcher task, started once the body is read, waits for ``http.disconnect`` and
    cancels the request's task; the transaction extension then rolls the operation back,
    and ``UnitOfWork`` returns its connection to the pool (a statement in flight finishes
    first: ``Context.run``). If the app calls ``receive`` itself afterwards, it gets the
    message the watcher saw. The app runs in the request's own task: one task more per
    request, the watcher.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_task = asyncio.current_task()
        assert request_task is not None
        watcher: asyncio.Task[Message] | None = None
        client_left = finished = False

        async def watch() -> Message:
            nonlocal client_left
            message = await receive()
            # Once the app has returned, the request task runs our cleanup and then the
            # server's code: a cancellation must never reach those.
            if message["type"] == "http.disconnect" and not finished:
                client_left = True
                request_task.cancel()
            return message

        async def app_receive() -> Message:
            nonlocal watcher
            if watcher is not None:
                return await asyncio.shield(watcher)
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                # Eager: it runs to its wait for the next message at once.
                watcher = asyncio.Task(watch(), loop=asyncio.get_running_loop(), eager_start=True)
            return message

        try:
            await self.app(scope, app_receive, send)
        except asyncio.CancelledError:
            if not client_left:
                raise  # cancelled for another reason (shutdown): let it through
            request_task.uncancel()
        finally:
            finished = True  # before any await: see watch()
            if watcher is not None and not watcher.done():
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
