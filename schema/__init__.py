"""The GraphQL schema: the domains' root fields merged into one ``Query``, plus extensions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from schema.domains.accounts.mutations import AccountMutations
from schema.domains.comments.mutations import CommentMutations
from schema.domains.comments.types import Comment
from schema.domains.posts.mutations import PostMutations
from schema.domains.posts.search import PostSearchQueries
from schema.domains.posts.subscriptions import Subscription
from schema.domains.posts.types import Post, PostQueries
from schema.domains.tags.types import Tag, TagQueries
from schema.domains.users.mutations import UserMutations
from schema.domains.users.types import User, UserQueries
from schema.engine.execution import InkwellExecutor
from schema.engine.extensions import (
    Authentication,
    Deadline,
    MaskUnexpectedErrors,
    QueryLimits,
    SqlStatsExtension,
    TransactionBoundary,
    UnitOfWork,
)
from schema.engine.extensions.cacheable import CacheableResponse
from schema.engine.extensions.limits import shape_refusal
from schema.engine.extensions.masking import drop_tracebacks, is_unexpected, set_default_codes
from schema.engine.extensions.parsed_documents import ParsedDocuments, TextCache
from schema.engine.extensions.persisted_queries import PersistedQueries, load_manifest
from schema.engine.extensions.rate_limits import RateLimit
from schema.engine.extensions.runner import KnownHooksRunner
from schema.engine.extensions.validated_documents import ValidatedDocuments
from schema.engine.naming import RememberingNameConverter
from schema.engine.persisted_store import ProcessStore, RedisStore
from schema.engine.redis_link import RedisLink
from schema.live.event_ids import EventIds
from schema.relay.node import BIGINT_SCALAR, BigInt
from schema.relay.node_queries import NodeQueries
from schema.telemetry.extension import ObserveOperation
from schema.telemetry.names import OperationNames, manifest_names
from schema.telemetry.tracing import Tracing
from schema.writes.results import ERROR_TYPES
from settings import Settings

logger = logging.getLogger("inkwell.errors")

Query = merge_types("Query", (NodeQueries, UserQueries, PostQueries, PostSearchQueries, TagQueries))
Mutation = merge_types(
    "Mutation", (AccountMutations, UserMutations, PostMutations, CommentMutations)
)


class InkwellSchema(strawberry.Schema):
    """Strawberry's schema, without its logging of every error, with a leaner hook runner
    (``schema.engine.extensions.runner``).

    Strawberry logs each error with a traceback before extensions see it; for a client's own
    mistakes (a bad cursor, a syntax error) that is noise, and unexpected errors are logged,
    once and with the id the client sees, by ``MaskUnexpectedErrors``.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Every error, on every transport, passes here: each gets a code (masking.py).
        set_default_codes(errors)
        for error in errors:
            if not is_unexpected(error):
                logger.debug("client error: %s", error.message)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Strawberry's, never for a subscription: executed once, as a query would be, a
        subscription field has no value (Strawberry allows it over HTTP POST). Subscriptions
        run through ``subscribe`` (WebSocket) and ``stream`` (HTTP streams)."""
        allowed = set(allowed_operation_types or (OperationType.QUERY, OperationType.MUTATION))
        allowed.discard(OperationType.SUBSCRIPTION)
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )
        if result.errors:
            drop_tracebacks(result.errors)  # logged already; freed without the collector
        return result

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        # The same hooks, looked up once per extension class instead of per request.
        return KnownHooksRunner(execution_context=execution_context, extensions=extensions)


def build_schema(
    settings: Settings, tracing: Tracing | None = None, persisted: ProcessStore | None = None
) -> strawberry.Schema:
    """The Strawberry schema for ``settings`` (which extensions are on depends on them), with
    ``tracing``'s spans when given (``schema.telemetry.tracing.configure``), remembering
    persisted queries in ``persisted`` (default: ``persisted_store(settings)``).

    Raises ``ValueError`` for an ``OPERATION_MANIFEST`` that cannot be read or is malformed.
    """
    allowed = load_manifest(settings.operation_manifest) if settings.operation_manifest else None
    persisted = persisted if persisted is not None else persisted_store(settings)
    # Documents by text, and their validation errors by text: each cache bounded in entries
    # and in characters of text (a cache of huge unique documents would hold gigabytes).
    parsed: TextCache[DocumentNode] = TextCache()
    validated: TextCache[list[Any]] = TextCache()
    # Operation names as metric labels: the manifest's, then a bounded number more.
    names = OperationNames(
        manifest_names(allowed.values()) if allowed else (), settings.metrics_operation_names
    )
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        # The operation's log line and metrics: outermost, it sees the result sent.
        lambda: ObserveOperation(names),
        UnitOfWork,
        MaskUnexpectedErrors,
        # The document to run, when the request names it by hash.
        lambda: PersistedQueries(persisted, enabled=settings.persisted_queries, allowed=allowed),
        # Clients send the same few documents again and again: parse and validate each once.
        # Suggestions ("Did you mean 'posts'?") name the schema: not when introspection is off.
        lambda: ParsedDocuments(parsed, lambda document: shape_refusal(settings, document) is None),
        lambda: ValidatedDocuments(validated, hide_suggestions=not settings.introspection_enabled),
        # Operations too big to serve are refused before anything touches the database: the
        # document's shape right after parsing (before validation), its cost after validation.
        lambda: QueryLimits(settings),
        # Who is asking, then what they may still spend (RATE_LIMIT_POINTS), then (for
        # mutations) the one transaction around all fields.
        Authentication,
        *([RateLimit] if settings.rate_limit_points else []),
        TransactionBoundary,
        # Innermost, so it bounds the resolvers and not the other hooks' entry (signing in):
        # a timeout then unwinds through the transaction, which rolls back.
        lambda: Deadline(settings.request_timeout_seconds),
        # A subscription's results name their event (``extensions.eventId``), to resume after.
        EventIds,
    ]
    if settings.response_cache:
        # After Authentication: an anonymous query's response may be cached.
        extensions.insert(extensions.index(Authentication) + 1, CacheableResponse)
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    if settings.sql_stats_enabled:
        extensions.append(SqlStatsExtension)
    if tracing is not None:
        # Outermost: the operation's span covers every other hook, closing the session too.
        extensions.insert(0, tracing.extension)
    return InkwellSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(
            scalar_map={BigInt: BIGINT_SCALAR}, name_converter=RememberingNameConverter()
        ),
        types=[User, Post, Comment, Tag, *ERROR_TYPES],
        extensions=extensions,
        execution_context_class=tracing.executor() if tracing is not None else InkwellExecutor,
    )


def persisted_store(settings: Settings, link: RedisLink | None = None) -> ProcessStore:
    """Where ``settings`` say persisted queries are remembered: Redis when ``REDIS_URL`` is
    set (through ``link``, the process's client, or a client of its own), else the process
    (``schema.engine.persisted_store``)."""
    size = settings.persisted_queries_cache_size
    if settings.redis_url:
        link = link if link is not None else RedisLink(settings.redis_url)
        return RedisStore(link, settings.persisted_queries_ttl_seconds, size)
    return ProcessStore(size)


__all__ = ["InkwellSchema", "Mutation", "Query", "Subscription", "build_schema", "persisted_store"]
