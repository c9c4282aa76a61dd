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
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.streaming import JSONEncoder, SSETransport

#: Media types that ask for one JSON response.
JSON_TYPES = ("application/json", "application/graphql-response+json")
#: Documents whose operation types are remembered, and the longest one remembered (so the
#: memo holds at most a few megabytes of text).
REMEMBERED = 256
REMEMBERED_LENGTH = 16_384


#: Media types that ask for a stream (Strawberry's multipart and Server-Sent Events transports).
STREAM_TYPES = ("multipart/mixed", "text/event-stream")


def names_a_stream(accept: str | None) -> bool:
    """True when ``accept`` mentions a stream media type at all (a superset of the requests
    Strawberry would stream: it is only a shortcut's guard)."""
    if accept is None:
        return False
    lowered = accept.lower()
    return any(media in lowered for media in STREAM_TYPES)


def accepts_json(accept: str | None) -> bool:
    """True when ``accept`` names a JSON media type with a non-zero quality."""
    for part in (accept or "").lower().split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media in JSON_TYPES and not any(p.replace(" ", "") in ("q=0", "q=0.0") for p in params):
            return True
    return False


def streams(
    query: str | None, operation_name: str | None, accept: str | None, max_tokens: int
) -> bool:
    """Whether a request that named a stream type in ``accept`` gets a stream: always when it
    accepts no JSON; otherwise only for a subscription (a document that does not parse or
    has more than ``max_tokens`` tokens, or a persisted query sent without its text, is
    answered as JSON, which reports the problem)."""
    if not accepts_json(accept):
        return True
    if query is None:
        return False
    find = _remembered_operation_type if len(query) <= REMEMBERED_LENGTH else _operation_type
    return find(query, operation_name, max_tokens) is OperationType.SUBSCRIPTION


def _operation_type(
    query: str, operation_name: str | None, max_tokens: int
) -> OperationType | None:
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None
            or (definition.name is not None and definition.name.value == operation_name)
        ):
            return definition.operation
    return None


_remembered_operation_type = lru_cache(maxsize=REMEMBERED)(_operation_type)


class ResumableSSE(SSETransport):
    """GraphQL over Server-Sent Events whose ``next`` events carry the result's event id
    (``extensions.eventId``) in the event's ``id`` field. A browser's ``EventSource`` keeps
    the last one and, when it reconnects, sends it back in ``Last-Event-ID``, which a
    subscription takes as its ``afterEventId`` (``schema.live.stream.follow``): it resumes
    where it was cut.
    Source: the HTML Standard, "Server-sent events" (the ``id`` field, ``Last-Event-ID``)."""

    def encode_next(self, response: GraphQLHTTPResponse, encode_json: JSONEncoder) -> str:
        event = super().encode_next(response, encode_json)
        event_id = (response.get("extensions") or {}).get("eventId")
        return f"id: {event_id}\r\n{event}" if event_id else event
