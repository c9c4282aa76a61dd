"""The GraphQL HTTP/WebSocket endpoint: Strawberry's ASGI view with Inkwell's context."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from schema.context import Context
from settings import Settings

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
    """Strawberry's ASGI GraphQL app, creating one ``Context`` per operation.

    The engine's session factory comes from ``app.state`` (set by the lifespan), so the view
    holds no database state of its own.
    """

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=True,
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
            request=request,
            response=response,
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)
