"""The GraphQL HTTP/WebSocket endpoint: Strawberry's ASGI view with Inkwell's context."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.http.streaming import HTTPStreamTransport
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context
from schema.errors import AuthenticationFailed
from schema.transport import graphiql, media, read_after
from schema.transport.cached_responses import fill, lookup_of, response_headers, serve_cached
from schema.transport.http_caching import NO_STORE
from schema.transport.media import (
    GRAPHQL_RESPONSE,
    is_authentication_failure,
    is_request_error,
    negotiate,
    request_error_status,
)
from schema.transport.rate_limited import too_many_requests
from schema.transport.streams import ResumableSSE, names_a_stream, streams
from schema.transport.ws import (
    LegacyWSHandler,
    TextWebSocketAdapter,
    TransportWSHandler,
    operation_context,
)
from settings import Settings

logger = logging.getLogger("inkwell.ws")

#: Where subscriptions run, for the error that refuses one sent any other way.
SUBSCRIPTION_TRANSPORTS = (
    "Subscriptions run over a WebSocket (graphql-transport-ws or graphql-ws) or as a POST "
    "asking for a stream: `Accept: multipart/mixed;subscriptionSpec=1.0` (Apollo's multipart "
    "subscriptions) or `Accept: text/event-stream` (GraphQL over Server-Sent Events)."
)
#: The refusal of a JSON body that is not an object (or a batch's list).
NOT_A_REQUEST = "The request body must be a JSON object: one GraphQL request."
#: The challenge of a 401: the bearer token was refused (RFC 6750 §3).
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI GraphQL app, creating one ``Context`` per operation: per HTTP
    request, and over a WebSocket per operation on the connection (``schema.transport.ws``).

    The engine's session factory and the event broker come from ``app.state`` (set by the
    lifespan), so the view holds no database state of its own. A WebSocket's credentials come
    from its ``connection_init`` payload (``schema.auth.connection_init``: browsers cannot
    set headers on a WebSocket); bad ones close the connection with 4403 before any
    operation runs.
    """

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    #: Server-Sent Events name each result's event (``id:``), so a browser resumes after it.
    stream_transport_classes_by_protocol: Mapping[str, type[HTTPStreamTransport]] = (
        MappingProxyType(
            {**GraphQL.stream_transport_classes_by_protocol, GRAPHQL_SSE_PROTOCOL: ResumableSSE}
        )
    )
    websocket_adapter_class = TextWebSocketAdapter

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
            keep_alive=settings.ws_keepalive_seconds > 0,
            keep_alive_interval=settings.ws_keepalive_seconds,
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            # The CORS origins (schema.transport.cors): a page allowed over HTTP may subscribe too.
            allowed_origins=settings.cors_allowed_origins,
            # Subscriptions over WebSocket, and over HTTP as Apollo's multipart responses or
            # GraphQL over Server-Sent Events (graphql-sse's "distinct connections" mode).
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
            ),
        )
        self.settings = settings
        # GraphiQL from Inkwell's own vendored files (schema.transport.graphiql), no CDN.
        self._ide_html = graphiql.page_html(graphiql.DEFAULT_QUERY)

    @property
    def graphql_ide_html(self) -> str:
        return self._ide_html

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.graphql_ide_html, headers=graphiql.PAGE_HEADERS)

    def should_render_graphql_ide(self, request: Any) -> bool:
        return graphiql.asks_for_page(request)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        replicas = request.app.state.replicas  # with read replicas: the request's position
        return Context(
            settings=self.settings,
            sessionmaker=request.app.state.sessionmaker,
            read_sessions=request.app.state.read_sessions,
            replicas=replicas,
            read_after=read_after.carried(request) if replicas is not None else None,
            request=request,
            response=response,
            broker=request.app.state.broker,
            viewers=request.app.state.viewers,
            response_cache=request.app.state.response_cache,
            cache_lookup=lookup_of(request),
            authorization=request.headers.get("authorization"),
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Check the ``connection_init`` credentials (in a unit of work of its own); raise
        ``ConnectionRejectionError`` (close code 4403) for bad ones."""
        try:
            check = operation_context(context)  # refuses credentials it cannot read
        except AuthenticationFailed as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from None
        try:
            await authenticate(check, bearer_token(check.authorization))
        except AuthenticationFailed as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from None
        except Exception:
            logger.exception("checking a WebSocket's credentials failed")
            raise ConnectionRejectionError({"message": "Unexpected error."}) from None
        finally:
            await check.close()
        return UNSET

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            # orjson refuses some JSON that json reads (an escaped lone surrogate, which a
            # JavaScript client may send and the input checks turn into a field error); a
            # body json cannot read either is still Strawberry's 400.
            return json.loads(data)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's handling, with its HTTP-level refusals (a body that is not JSON, a
        batch, a mutation over GET, no query) answered as GraphQL errors with a code instead
        of plain text, so every client reads errors the same way. An anonymous query the
        response cache holds is answered from it first (``schema.transport.cached_responses``)."""
        if isinstance(request, Request):
            cached = await serve_cached(request, self.settings)
            if cached is not None:
                return cached
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            body = {"errors": [{"message": exc.reason, "extensions": {"code": "BAD_REQUEST"}}]}
            headers = {"allow": "POST"} if exc.status_code == 405 else None
            return JSONResponse(body, status_code=exc.status_code, headers=headers)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Strawberry's, reading the common request directly: a POST of one operation as
        ``Content-Type: application/json`` (with or without parameters such as a charset),
        whose Accept names no stream type (``names_a_stream``). Strawberry parses each
        Content-Type and Accept with ``email.message``. Anything else, or a body that does
        not hold one well-formed operation, is Strawberry's to read (and to refuse); the
        request keeps its body, so it is read once either way. A JSON body that is neither
        an object nor a list is a 400 (``NOT_A_REQUEST``).

        A request whose Accept names a stream type gets a stream only for a subscription,
        or when it accepts no JSON (``schema.transport.streams``): Strawberry picks a stream
        transport from Accept alone."""
        accept = request.headers.get("accept")
        # The media type as Strawberry reads it (parameters dropped, case kept).
        media = (request.content_type or "").partition(";")[0].strip()
        if request.method == "POST" and media == "application/json":
            data = self.parse_json(await request.get_body())
            if not isinstance(data, dict | list):
                # Strawberry fails on a JSON string or number with an AttributeError (a 500).
                raise HTTPException(400, NOT_A_REQUEST)
            if isinstance(data, dict) and not names_a_stream(accept):
                query, variables = data.get("query"), data.get("variables")
                extensions = data.get("extensions")
                if (
                    isinstance(query, str | None)
                    and isinstance(variables, dict | None)
                    and isinstance(extensions, dict | None)
                ):
                    return GraphQLRequestData(
                        query=query,
                        variables=variables,
                        operation_name=data.get("operationName"),
                        extensions=extensions,
                        protocol="http",
                    )
        parsed = await super().parse_http_body(request)
        if (
            isinstance(parsed, GraphQLRequestData)
            and parsed.protocol != "http"
            and not streams(parsed.query, parsed.operation_name, accept, self.settings.max_tokens)
        ):
            # A query from a client that reads JSON too (schema.transport.streams).
            parsed.protocol = "http"
        return parsed

    async def create_streaming_response(
        self, request: Request | WebSocket, stream: Any, sub_response: Response, headers: Any
    ) -> Response:
        # A stream is never cached; its transport sets its own Cache-Control.
        for name in ("cache-control", "vary"):
            del sub_response.headers[name]
        return await super().create_streaming_response(request, stream, sub_response, headers)

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        """Strawberry's, with the status of an operation the method may not run: a mutation
        over GET is 405 with ``Allow: POST`` (GraphQL over HTTP, "GET"); a subscription
        anywhere but a stream is 400 naming the transports that run subscriptions.
        It waits for its turn first (``schema.transport.admission``)."""
        try:
            async with kwargs["request"].app.state.admission.place():
                return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            refused = exc.__cause__
            if not isinstance(refused, InvalidOperationTypeError):
                raise
            if refused.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, SUBSCRIPTION_TRANSPORTS) from refused
            if kwargs["request_adapter"].method == "GET":
                raise HTTPException(405, exc.reason) from refused
            raise

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        # The media type (from Accept) and the caching headers the response will have if it
        # succeeds (http_caching), with X-Cache: MISS for a look-up in the response cache.
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        if isinstance(request, Request):
            sub_response.headers.update(response_headers(request, self.settings))
        return sub_response

    async def process_result(self, request: Request, result: Any) -> Any:
        processed = await super().process_result(request, result)
        await fill(request, result)  # the response cache's, if it may keep it
        media = negotiate(request.headers.get("accept"))
        if media == GRAPHQL_RESPONSE and is_request_error(processed):
            processed.pop("data", None)  # it never executed: no data entry at all
        return processed

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """JSON in the negotiated media type; with ``application/graphql-response+json`` a
        request error (no ``data`` entry) is 400, or 5xx when the server failed
        (``schema.transport.media``). Under either media type, refused credentials are 401 with a
        ``WWW-Authenticate`` challenge (RFC 6750 §3.1), so a client's auth link can refresh
        the token or sign out, and a refusal by a rate limit 429 (``rate_limited``); a
        response with errors is never cached."""
        response = super().create_response(response_data, sub_response)
        if isinstance(response_data, dict):
            if self.settings.database_replica_urls:  # a commit's position, as a header too
                read_after.send_back(response, response_data)
            if response_data.get("errors") and "cache-control" in response.headers:
                response.headers["cache-control"] = NO_STORE
            if is_authentication_failure(response_data):
                response.status_code = 401
                response.headers["www-authenticate"] = INVALID_TOKEN_CHALLENGE
                return response
            too_many_requests(response_data, response)
        if sub_response.media_type == GRAPHQL_RESPONSE:
            response.headers["content-type"] = media.GRAPHQL_RESPONSE_CONTENT_TYPE
            if isinstance(response_data, dict) and "data" not in response_data:
                response.status_code = request_error_status(response_data)
        return response
