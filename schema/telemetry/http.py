"""The ASGI middleware that observes each request to the GraphQL endpoint.

Outermost in the app's middleware, so it sees every request to ``/graphql``, including those
the other middleware refuse (413, a CSRF refusal): it gives the request its id (the client's
or proxy's ``X-Request-ID`` when it is a safe one, else a new one; echoed in the response's
``X-Request-ID``), makes its ``Operation`` current, records the status the response
starts with and, once the response has ended, hands the record to the log and the metrics
(``schema.telemetry.report``). A WebSocket gets an id for the connection (echoed in the
handshake's response), which each of its operations' records carries
(``schema.telemetry.extension``). Other paths (``/healthz``, ``/metrics``) and CORS
preflights pass straight through.

Its cost per request: an ``Operation``, a context variable set and reset, a wrapper around
``send``, the log line and the metrics (the README's "Logs and metrics" has the figures).
Source: ASGI spec, "HTTP & WebSocket" (``http.response.start``, ``websocket.accept``
headers).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.telemetry.operation import Operation, request_id
from schema.telemetry.report import finish

HEADER = b"x-request-id"
#: The status of a request whose client left before the response started (nginx's).
CLIENT_CLOSED = 499


def _offered_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return str(value.decode("latin-1"))
    return None


class ObserveRequests:
    """ASGI middleware: requests to ``path`` observed as operations (see the module)."""

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (
            kind == "lifespan"
            or scope["path"] != self.path
            or (kind == "http" and scope["method"] == "OPTIONS")
        ):
            await self.app(scope, receive, send)
            return
        rid = request_id(_offered_id(scope))
        header = (HEADER, rid.encode())
        if kind == "websocket":
            await self._websocket(
                Operation(rid, "ws", connection=True), header, scope, receive, send
            )
            return
        operation = Operation(rid, "http")

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                operation.status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = operation.enter()
        try:
            await self.app(scope, receive, observed_send)
        except BaseException:
            if operation.status is None:
                operation.status = 500  # what the server's error handler will answer
            raise
        finally:
            if operation.status is None:
                operation.status = CLIENT_CLOSED  # the request was dropped as the client left
            finish(operation)
            Operation.leave(token)

    async def _websocket(
        self,
        connection: Operation,
        header: tuple[bytes, bytes],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        async def observed_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = connection.enter()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            Operation.leave(token)
