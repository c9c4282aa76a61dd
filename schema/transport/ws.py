"""GraphQL over WebSocket (graphql-transport-ws and the legacy graphql-ws) at ``/graphql``.

Strawberry's protocol handlers run every operation of a connection with the one context
``get_context`` made for the connection. Inkwell's unit of work is per operation, so the
handlers here see the schema through ``PerOperationSchema``, which gives each operation a
context of its own (``operation_context``); a subscription ends its unit of work once
subscribed and reads each event in one of the event's (``schema.live.stream``). The
graphql-transport-ws handler also sends a ``ping`` every ``WS_KEEPALIVE_SECONDS``, so idle
connections survive proxies and dead ones are noticed.
Source: graphql-ws PROTOCOL.md (graphql-transport-ws); apollographql/subscriptions-transport-ws
PROTOCOL.md (graphql-ws); Strawberry docs, "Subscriptions".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, cast

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import PreExecutionError

from schema.auth.connection_init import connection_authorization
from schema.context import Context


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends every message as a text frame, as both protocols require (JSON in text frames):
    the view's ``encode_json`` returns orjson's bytes, which Strawberry would send as binary
    frames that browser clients cannot parse."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        text = encoded.decode() if isinstance(encoded, bytes) else encoded
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


def operation_context(connection: Context) -> Context:
    """A context of its own for one operation over a WebSocket connection's context: the same
    settings, broker, routing and connection, a new unit of work. Raises
    ``AuthenticationFailed`` for ``connection_init`` credentials it cannot read (checked when
    the connection opens: ``GraphQLApp.on_ws_connect``)."""
    authorization = connection_authorization(connection.connection_params)
    return Context(
        settings=connection.settings,
        sessionmaker=connection.sessionmaker,
        read_sessions=connection.read_sessions,
        replicas=connection.replicas,
        read_after=connection.read_after,
        request=connection.request,
        response=connection.response,
        broker=connection.broker,
        viewers=connection.viewers,
        response_cache=connection.response_cache,
        authorization=authorization if authorization is not None else connection.authorization,
        connection_params=connection.connection_params,
    )


class PerOperationSchema:
    """The schema, as a WebSocket protocol handler uses it: ``stream`` and ``subscribe`` run
    each operation with a new context derived from the connection's."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, *args: Any, context_value: Context, **kwargs: Any) -> Any:
        source = await self._schema.stream(
            *args, context_value=operation_context(context_value), **kwargs
        )
        return _errors_as_results(source)

    async def subscribe(self, *args: Any, context_value: Context, **kwargs: Any) -> Any:
        source = await self._schema.subscribe(
            *args, context_value=operation_context(context_value), **kwargs
        )
        return _errors_as_results(source)


async def _errors_as_results(source: Any) -> AsyncIterator[Any]:
    """``source``'s results, and a GraphQL error raised before the first one (an operation
    the allow-list refuses, a persisted query not found: raised from ``on_operation``, which
    Strawberry's stream does not catch) as a pre-execution error result, which the protocol
    handlers send as the operation's ``error`` message."""
    async with aclosing(source):
        try:
            async for result in source:
                yield result
        except GraphQLError as error:
            yield PreExecutionError(data=None, errors=[error])


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, one context per operation, with server pings."""

    def __init__(self, *, schema: Any, **kwargs: Any) -> None:
        super().__init__(schema=cast(Any, PerOperationSchema(schema)), **kwargs)
        self._pinger: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        interval = cast(Any, self.view).settings.ws_keepalive_seconds
        if self.connection_acknowledged and interval and self._pinger is None:
            self._pinger = asyncio.create_task(self._ping(interval))

    async def _ping(self, interval: float) -> None:
        with contextlib.suppress(WebSocketDisconnected, RuntimeError):
            while True:
                await asyncio.sleep(interval)
                await self.send_message({"type": "ping"})

    async def handle_task_exception(self, error: Exception) -> None:
        # A client that went away mid-send is how WebSockets end, not a server error.
        if not isinstance(error, WebSocketDisconnected):
            await super().handle_task_exception(error)

    async def shutdown(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        await super().shutdown()


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (subscriptions-transport-ws), one context per operation; keep-alive
    (``ka``) messages come from Strawberry's handler."""

    def __init__(self, *, schema: Any, **kwargs: Any) -> None:
        super().__init__(schema=cast(Any, PerOperationSchema(schema)), **kwargs)
