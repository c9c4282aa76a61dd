"""When a GraphQL-over-HTTP request gets a stream (multipart or Server-Sent Events) rather
than one JSON response.

Streams are for subscriptions. Some clients list the stream types in ``Accept`` on every
request (urql sends ``application/graphql-response+json, application/graphql+json,
application/json, text/event-stream, multipart/mixed`` even for a query), meaning "I can read
either"; answering their queries with a stream would lose the status code (401, 400) and,
with some parsers, the result. So a request gets a stream only when its operation is a
subscription, or when it accepts no JSON at all.
Source: GraphQL over HTTP spec, "Accept"; graphql-sse PROTOCOL.md ("distinct connections");
Apollo docs, "Multipart HTTP protocol for GraphQL subscriptions".
"""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

#: Media types that ask for one JSON response.
JSON_TYPES = ("application/json", "application/graphql-response+json")
#: Documents whose operation types are remembered (bounded, like the parse cache).
REMEMBERED = 1000


def accepts_json(accept: str | None) -> bool:
    """True when ``accept`` names a JSON media type with a non-zero quality."""
    for part in (accept or "").lower().split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media in JSON_TYPES and not any(p.replace(" ", "") in ("q=0", "q=0.0") for p in params):
            return True
    return False


def streams(query: str | None, operation_name: str | None, accept: str | None) -> bool:
    """Whether a request that named a stream type in ``accept`` gets a stream: always when it
    accepts no JSON; otherwise only for a subscription (a document that does not parse, or a
    persisted query sent without its text, is answered as JSON)."""
    return not accepts_json(accept) or (
        query is not None and _operation_type(query, operation_name) is OperationType.SUBSCRIPTION
    )


@lru_cache(maxsize=REMEMBERED)
def _operation_type(query: str, operation_name: str | None) -> OperationType | None:
    try:
        document = parse(query)
    except GraphQLError:
        return None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None
            or (definition.name is not None and definition.name.value == operation_name)
        ):
            return definition.operation
    return None
