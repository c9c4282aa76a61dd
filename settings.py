"""Inkwell's settings: one place, read from environment variables.

Every field has a safe development default, so ``python server.py serve`` works on a fresh
checkout with no configuration at all. Field names map to upper-case environment variables
(``database_url`` ← ``DATABASE_URL``); a ``.env`` file in the working directory is read too.
The README's configuration table lists them; keep the two in step.

Source: pydantic-settings, https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./inkwell.db"


class Settings(BaseSettings):
    """Validated configuration.

    Raises ``pydantic.ValidationError`` at construction when a variable has the wrong type or is
    out of range (for example ``PORT=abc`` or ``DB_POOL_SIZE=0``).
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path.db or "
        "postgresql+asyncpg://user@host:port/db.",
    )
    # An operation holds its connection from its first statement to its end (one unit of
    # work), so the pool bounds concurrent operations per process: size it for the load.
    db_pool_size: int = Field(10, ge=1, le=200, description="Connections kept in the pool.")
    db_max_overflow: int = Field(20, ge=0, le=200, description="Extra connections under load.")
    db_pool_timeout: float = Field(
        10.0, gt=0, description="Seconds a request waits for a pooled connection."
    )
    db_echo: bool = Field(False, description="Log every SQL statement (noisy).")

    host: str = Field("127.0.0.1", description="Interface the serve command binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the serve command binds.")
    environment: Literal["development", "production"] = "development"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"

    graphiql: bool | None = Field(
        None, description="Serve GraphiQL on GET /graphql; default: on in development only."
    )
    sql_stats: bool | None = Field(
        None,
        description="Add extensions.sql {statements, durationMs} to each response; "
        "default: on in development only.",
    )
    max_page_size: int = Field(100, ge=1, le=1000, description="Cap on first/last.")
    default_page_size: int = Field(20, ge=1, description="Page size when first/last are absent.")
    dataloader_batching: bool = Field(
        True,
        description="Batch DataLoader loads; false loads one key per statement "
        "(for benchmarks that show what batching buys).",
    )

    @model_validator(mode="after")
    def _page_sizes_agree(self) -> Settings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE")
        return self

    @property
    def is_production(self) -> bool:
        """True in production: development conveniences are off."""
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def graphiql_enabled(self) -> bool:
        """Whether GET /graphql from a browser serves GraphiQL."""
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def sql_stats_enabled(self) -> bool:
        """Whether responses carry ``extensions.sql``."""
        return self.sql_stats if self.sql_stats is not None else not self.is_production


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
