"""The GraphQL HTTP/WebSocket endpoint: Strawberry's ASGI view with Inkwell's context."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.types.unset import UNSET, UnsetType

from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context
from schema.errors import AuthenticationFailed
from schema.media import GRAPHQL_RESPONSE, is_request_error, negotiate, request_error_status
from schema.ws import LegacyWSHandler, TextWebSocketAdapter, TransportWSHandler
from settings import Settings

logger = logging.getLogger("inkwell.ws")

#: What GraphiQL shows on first open: a nested read that exercises every relationship.
DEFAULT_QUERY = """\
# Welcome to Inkwell. Press the run button (or Ctrl-Enter).
# extensions.sql in the response shows the SQL statements this query cost:
# one per level of nesting, however many rows come back.
query RecentWriting {
  users(first: 3) {
    totalCount
    edges {
      node {
        name
        posts(first: 2, orderBy: {field: CREATED_AT, direction: DESC}) {
          edges {
            node {
              title
              status
              tags { name }
              comments(first: 2) {
                totalCount
                nodes { body author { name } }
              }
            }
          }
        }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI GraphQL app, creating one ``Context`` per operation: per HTTP
    request, and over a WebSocket per operation on the connection (``schema.ws``).

    The engine's session factory and the event broker come from ``app.state`` (set by the
    lifespan), so the view holds no database state of its own. A WebSocket's credentials come
    from its ``connection_init`` payload (``schema.auth.connection_init``: browsers cannot
    set headers on a WebSocket); bad ones close the connection with 4403 before any
    operation runs.
    """

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
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
            # The CORS origins (schema.cors): a page allowed over HTTP may subscribe too.
            allowed_origins=settings.cors_allowed_origins,
        )
        self.settings = settings
        # Strawberry's page with our default query (JSON-encoded into its JS template literal).
        self._ide_html = super().graphql_ide_html.replace(
            "parameters.q || EXAMPLE_QUERY", f"parameters.q || {json.dumps(DEFAULT_QUERY)}"
        )

    @property
    def graphql_ide_html(self) -> str:
        return self._ide_html

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(
            settings=self.settings,
            sessionmaker=request.app.state.sessionmaker,
            read_sessionmaker=request.app.state.read_sessionmaker,
            request=request,
            response=response,
            broker=request.app.state.broker,
            viewers=request.app.state.viewers,
            authorization=request.headers.get("authorization"),
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Check the ``connection_init`` credentials (in a unit of work of its own); raise
        ``ConnectionRejectionError`` (close code 4403) for bad ones."""
        try:
            check = context.for_operation()
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
        of plain text, so every client reads errors the same way."""
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
        ``Content-Type: application/json`` exactly, asking for no streamed response.
        Strawberry parses every Content-Type with ``email.message`` first. Anything else,
        or a body that does not hold one well-formed operation, is Strawberry's to read (and
        to refuse); the body is read once either way (the request keeps it)."""
        if (
            request.method == "POST"
            and request.content_type == "application/json"
            and self._get_stream_transport_from_headers(request.headers) is None
        ):
            data = self.parse_json(await request.get_body())
            if isinstance(data, dict):
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
        return await super().parse_http_body(request)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        # The media type the response will have, chosen from the request's Accept.
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def process_result(self, request: Request, result: Any) -> Any:
        processed = await super().process_result(request, result)
        if negotiate(request.headers.get("accept")) == GRAPHQL_RESPONSE and is_request_error(
            processed
        ):
            processed.pop("data", None)  # it never executed: no data entry at all
        return processed

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """JSON in the negotiated media type; with ``application/graphql-response+json`` a
        request error (no ``data`` entry) is 400, or 5xx when the server failed
        (``schema.media``)."""
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
            if isinstance(response_data, dict) and "data" not in response_data:
                response.status_code = request_error_status(response_data)
        return response
