"""The GraphQL schema: the domains' root fields merged into one ``Query``, plus extensions."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.comments import Comment
from schema.extensions import MaskUnexpectedErrors, SqlStatsExtension, UnitOfWork
from schema.node import BIGINT_SCALAR, BigInt
from schema.node_queries import NodeQueries
from schema.posts import Post, PostQueries
from schema.tags import Tag, TagQueries
from schema.users import User, UserQueries
from settings import Settings

Query = merge_types("Query", (NodeQueries, UserQueries, PostQueries, TagQueries))


def build_schema(settings: Settings) -> strawberry.Schema:
    """The Strawberry schema for ``settings`` (which extensions are on depends on them)."""
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        UnitOfWork,
        MaskUnexpectedErrors,
    ]
    if settings.sql_stats_enabled:
        extensions.append(SqlStatsExtension)
    return strawberry.Schema(
        query=Query,
        config=StrawberryConfig(scalar_map={BigInt: BIGINT_SCALAR}),
        types=[User, Post, Comment, Tag],
        extensions=extensions,
    )


__all__ = ["Query", "build_schema"]
