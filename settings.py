"""Inkwell's settings: one place, read from environment variables.

Every field has a safe development default, so ``python server.py serve`` works on a fresh
checkout with no configuration at all. Field names map to upper-case environment variables
(``database_url`` ← ``DATABASE_URL``); a ``.env`` file in the working directory is read too.
The README's configuration table lists them; keep the two in step.

Source: pydantic-settings, https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./inkwell.db"
#: Shortest JWT secret accepted in production: 32 bytes of entropy for HS256 (RFC 7518 §3.2
#: requires a key at least as long as the hash output, 256 bits).
MIN_SECRET_LENGTH = 32
#: Words of secrets copied from examples and templates ("change-me-to-a-long-random-value");
#: production refuses a secret containing one.
PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "example",
    "replace",
    "your-secret",
    "your_secret",
    "yoursecret",
    "secret-key",
    "todo",
    "xxxx",
)
#: Fewest distinct characters a production secret may have ("aaaa...", "1234123412341234...").
MIN_DISTINCT_CHARACTERS = 10
#: Ports an origin leaves out, as browsers write it in the Origin header.
DEFAULT_PORTS = {"http": 80, "https": 443}

#: Database URL schemes mapped to the async driver Inkwell uses for them.
ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}

#: A list setting written as JSON (``["a", "b"]``) or, as most tools hand them out, comma
#: separated (``a,b``); pydantic-settings would otherwise accept JSON only.
ListSetting = Annotated[list[str], NoDecode]


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
    # Connections beyond the pool size are closed when returned, and opening one costs several
    # round trips: under a steady load above the pool size, every operation would pay them.
    db_pool_size: int = Field(20, ge=1, le=200, description="Connections kept in the pool.")
    db_max_overflow: int = Field(10, ge=0, le=200, description="Extra connections under load.")
    db_pool_pre_ping: bool = Field(
        False,
        description="Test each connection (three round trips) when an operation checks it out. "
        "Off: a connection found dead when used invalidates the pool, and a read retries once.",
    )
    db_pool_timeout: float = Field(
        10.0, gt=0, description="Seconds a request waits for a pooled connection."
    )
    database_replica_urls: ListSetting = Field(
        default_factory=list,
        description="PostgreSQL read replicas (streaming standbys of DATABASE_URL), "
        "comma-separated or a JSON list: query operations read from one of them; mutations, "
        "subscription events and everything else use the primary. Empty: the primary only.",
    )
    max_replica_lag_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="A replica further behind the primary than this (or down) is skipped "
        "until it catches up; its reads go to the other replicas or the primary.",
    )
    replica_check_seconds: float = Field(
        1.0,
        gt=0,
        le=600,
        description="How often each process checks every replica's replay position and lag.",
    )
    db_echo: bool = Field(
        False,
        description="Log every SQL statement once at INFO (`inkwell.sql`: the statement, its "
        "time, the request id; parameters in development only), reads on the driver included.",
    )
    db_slow_statement_ms: float | None = Field(
        None,
        gt=0,
        description="Log each SQL statement taking at least this many milliseconds at "
        "WARNING (as DB_ECHO writes it); unset: none.",
    )
    worker_healthcheck_timeout_seconds: int = Field(
        30,
        ge=1,
        le=600,
        description="Seconds a `serve` worker may take to answer uvicorn's health check: a "
        "new worker imports and builds the app first, which takes seconds on a busy machine.",
    )
    migrate_on_start: bool = Field(
        False,
        description="`serve` applies migrations before serving (as `serve --migrate`); off, "
        "it refuses an unmigrated database. The embedded SQLite file is always migrated.",
    )

    host: str = Field("127.0.0.1", description="Interface the serve command binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the serve command binds.")
    environment: Literal["development", "production"] = "development"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text for a person, or `json` (one object per line) for a "
        "log collector; the same in every worker process.",
    )
    log_repeat_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Identical warnings (a database outage) are logged once per this many "
        "seconds, the next line carrying how many were left out (`repeated`); 0: all of them.",
    )
    metrics_operation_names: int = Field(
        100,
        ge=0,
        le=10_000,
        description="Distinct operation names each worker uses as metric labels (besides "
        "OPERATION_MANIFEST's); later names are counted as `other`.",
    )
    metrics_sample_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often each worker records its runtime and connection-pool gauges "
        "for /metrics.",
    )

    graphiql: bool | None = Field(
        None, description="Serve GraphiQL on GET /graphql; default: on in development only."
    )
    sql_stats: bool | None = Field(
        None,
        description="Add extensions.sql {statements, durationMs} to each response; "
        "default: on in development only.",
    )
    tracing: bool = Field(
        False,
        description="OpenTelemetry spans per operation, executor level and SQL statement, "
        "continuing a request's traceparent; configured by the standard OTEL_* variables.",
    )
    otel_traces_exporter: Literal["otlp", "console", "none"] = Field(
        "otlp",
        description="OpenTelemetry's standard variable, when TRACING is on: OTLP over "
        "HTTP/protobuf (OTEL_EXPORTER_OTLP_*), JSON lines on stdout, or no export.",
    )
    max_page_size: int = Field(100, ge=1, le=1000, description="Cap on first/last.")
    default_page_size: int = Field(20, ge=1, description="Page size when first/last are absent.")
    dataloader_batching: bool = Field(
        True,
        description="Batch DataLoader loads; false loads one key per statement "
        "(for benchmarks that show what batching buys).",
    )
    workers: int | None = Field(
        None,
        ge=1,
        description="Worker processes for `server.py serve`; default one per CPU core on "
        "PostgreSQL. SQLite always serves with one (its event broker is in-process).",
    )
    gc_thresholds: tuple[int, int, int] | None = Field(
        (500_000, 20, 100),
        description="After start-up, freeze the heap and set these garbage-collector "
        "thresholds (`gc.set_threshold`), as JSON: `[500000, 20, 100]`; `null` leaves "
        "CPython's defaults. Chosen by measurement (bench/README.md).",
    )
    query_executor: Literal["breadth-first", "graphql-core"] = Field(
        "breadth-first",
        description="How query operations run: from a cached plan, one batch per field per "
        "level (`breadth-first`), or on graphql-core's own executor (`graphql-core`; "
        "operations a plan cannot express take that path anyway).",
    )

    request_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="Longest a query or mutation may run (REQUEST_TIMEOUT)."
    )
    db_statement_timeout_seconds: float = Field(
        30.0,
        ge=0.01,
        le=3600,
        description="PostgreSQL's statement_timeout: the longest one statement may run.",
    )
    max_query_depth: int = Field(
        12, ge=1, le=100, description="Deepest nesting of fields an operation may have."
    )
    max_aliases: int = Field(30, ge=0, le=10_000, description="Most aliased fields per operation.")
    max_tokens: int = Field(
        5_000, ge=100, le=1_000_000, description="Most tokens a GraphQL document may have."
    )
    max_selections: int = Field(
        2_000,
        ge=10,
        le=100_000,
        description="Most selections (fields, fragment spreads, inline fragments) a document may "
        "have once its fragments are expanded; checked before validation.",
    )
    max_query_cost: int = Field(
        20_000,
        ge=1,
        description="Most rows an operation may ask for, estimated from first/last multiplied "
        "through its nesting.",
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest HTTP request body, in bytes (413 above)."
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest a client may take to send a request's whole body after its "
        "headers: 408 (`BODY_TIMEOUT`) and the connection closed (uvicorn has no such deadline).",
    )
    max_connections: int = Field(
        2000,
        ge=0,
        le=1_000_000,
        description="`serve`: most connections each worker serves at once (WebSockets "
        "included); a request beyond them (or beyond as many in flight) gets 503 (uvicorn's "
        "`limit_concurrency`, set to one more: uvicorn counts the new connection too); "
        "`0`: no cap.",
    )
    max_concurrent_operations: int = Field(
        8,
        ge=0,
        le=10_000,
        description="GraphQL operations over HTTP each process runs at once; the rest wait "
        "their turn, first come first served, once their request is read "
        "(`schema/transport/admission.py`): past a busy CPU more at once only adds latency, to "
        "subscription events and health checks too. `0`: no cap.",
    )
    keep_alive_timeout_seconds: int = Field(
        5,
        ge=1,
        le=3600,
        description="`serve`: seconds an idle keep-alive connection stays open (uvicorn's "
        "`timeout_keep_alive`); behind a proxy that reuses connections, above the proxy's own "
        "idle timeout for them.",
    )
    max_variables_bytes: int = Field(
        512 * 1024, ge=1024, description="Largest variables object, as JSON bytes."
    )
    introspection: bool | None = Field(
        None, description="Answer introspection queries; default: on in development only."
    )

    persisted_queries: bool = Field(
        True, description="Automatic persisted queries (Apollo's protocol), over POST and GET."
    )
    persisted_queries_cache_size: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Documents each process keeps for APQ (with `REDIS_URL`: those it read or "
        "registered, for while Redis is unreachable).",
    )
    persisted_queries_ttl_seconds: int = Field(
        86_400,
        ge=1,
        le=31_536_000,
        description="With `REDIS_URL`: seconds a persisted query stays in Redis after its "
        "last registration.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for state shared by every worker and instance (`redis://host:port/db`"
        "): the persisted-query store, the response cache and the rate limits. Unset, or "
        "unreachable: each process keeps its own (one warning line a minute while unreachable).",
    )
    rate_limit_points: int = Field(
        0,
        ge=0,
        le=1_000_000_000,
        description="Token bucket of each signed-in viewer (each client address when "
        "anonymous), in cost points: an operation costs 1 plus its estimated rows (as "
        "MAX_QUERY_COST counts them), over the limit 429 (`RATE_LIMITED`); shared through "
        "`REDIS_URL`. 0: no limit.",
    )
    rate_limit_points_per_second: float = Field(
        1000.0,
        gt=0,
        le=1_000_000_000,
        description="Points each RATE_LIMIT_POINTS bucket gets back per second.",
    )
    login_attempts_per_account: int = Field(
        10,
        ge=0,
        le=1_000_000,
        description="`login` attempts per account (email) per AUTH_ATTEMPTS_WINDOW_SECONDS, "
        "as a token bucket (a burst of this many, then one per window/N); 0: no limit.",
    )
    login_attempts_per_address: int = Field(
        100,
        ge=0,
        le=1_000_000,
        description="`login` attempts per client address per AUTH_ATTEMPTS_WINDOW_SECONDS; "
        "0: no limit.",
    )
    register_attempts_per_address: int = Field(
        20,
        ge=0,
        le=1_000_000,
        description="`register` attempts per client address per AUTH_ATTEMPTS_WINDOW_SECONDS; "
        "0: no limit.",
    )
    auth_attempts_window_seconds: float = Field(
        300.0,
        ge=1,
        le=86_400,
        description="The window of the LOGIN_ and REGISTER_ATTEMPTS limits, in seconds.",
    )
    rate_limit_key_prefix: str = Field(
        "inkwell:rate:",
        min_length=1,
        description="With `REDIS_URL`: the start of every rate-limit key in Redis (instances "
        "sharing a Redis and a prefix share their limits).",
    )
    trusted_proxies: ListSetting = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="`serve`: addresses or networks (`10.0.0.0/8`) of reverse proxies whose "
        "`X-Forwarded-For` (read right to left, through trusted hops only) and "
        "`X-Forwarded-Proto` name the client (uvicorn's `forwarded_allow_ips`; its default, "
        "loopback, is this one's; unset, `serve` reads `FORWARDED_ALLOW_IPS` when that is set); "
        "`*` trusts every hop, so a client names its own address: only when nothing but the "
        "proxies can reach the server; comma-separated or a JSON list. Empty: none, the "
        "connection's peer is the client.",
    )
    public_cache_max_age_seconds: int = Field(
        60,
        ge=0,
        le=31_536_000,
        description="Seconds browsers and CDNs may keep an anonymous persisted query's GET "
        "response (with RESPONSE_CACHE, any anonymous query's GET) "
        "(`Cache-Control: public, max-age=...`); 0: never cached.",
    )
    response_cache: bool = Field(
        False,
        description="Cache the responses of anonymous queries (no Authorization header), "
        "served without executing anything and invalidated by every commit that changes a "
        "table they read (`schema/engine/response_cache.py`); shared in Redis with "
        "`REDIS_URL`. Turn it on for every instance on the database at once.",
    )
    response_cache_ttl_seconds: int = Field(
        300,
        ge=1,
        le=86_400,
        description="Seconds a cached response is kept at most: the bound for changes no "
        "commit through the API reports (SQL run by hand, `seed`, `create-user`).",
    )
    response_cache_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        le=16 * 1024**3,
        description="Bytes of responses each process keeps (without Redis, or while it is "
        "unreachable); a response above a sixteenth of it is never cached.",
    )
    response_cache_redis_prefix: str = Field(
        "inkwell:responses:",
        min_length=1,
        max_length=200,
        description="With `REDIS_URL`: what the cache's Redis keys start with; one prefix "
        "per database.",
    )
    operation_manifest: Path | None = Field(
        None,
        description="An Apollo persisted query manifest (JSON); when set, only its operations "
        "run (an allow-list).",
    )
    cors_allowed_origins: ListSetting = Field(
        default_factory=list,
        description="Origins browsers may call the API from, over HTTP and WebSocket (CORS), "
        "comma-separated or as a JSON list, e.g. `https://app.example.com,http://localhost:3000`"
        "; `*` for any; empty: no cross-origin access.",
    )
    cors_allowed_headers: ListSetting = Field(
        default_factory=list,
        description="Request headers cross-origin pages may send, besides the ones mainstream "
        "clients and tracing tools send (`schema.transport.cors.DEFAULT_ALLOWED_HEADERS`); "
        "comma-separated or a JSON list.",
    )
    cors_allow_credentials: bool = Field(
        False,
        description="Let cross-origin pages send cookies (Inkwell reads none; the "
        "Authorization header needs no such permission).",
    )
    cors_max_age_seconds: int = Field(
        600,
        ge=0,
        le=86_400,
        description="How long a browser may reuse a CORS preflight's answer, in seconds.",
    )
    csrf_protection: bool = Field(
        True,
        description="Refuse operations sent as POSTs a browser makes cross-site without a "
        "preflight (form and text bodies) unless they carry GraphQL-Require-Preflight; "
        "GETs (queries only) pass. Reasoning: `schema/transport/csrf.py`.",
    )

    subscription_queue_size: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Events a subscription may fall behind in memory. Past that, a subscriber "
        "whose client is reading reads what it missed from the event outbox; one whose client "
        "stopped reading is ended (SUBSCRIPTION_OVERFLOW), so it never delays the others.",
    )
    subscription_stall_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds a subscriber's client may leave a result unread (its socket "
        "full) before an overflowing queue ends the subscription (SUBSCRIPTION_OVERFLOW) "
        "rather than being read back from the outbox.",
    )
    event_retention_seconds: float = Field(
        3600.0,
        ge=60,
        le=30 * 86_400,
        description="Seconds the event outbox keeps an event: how far back a subscription "
        "may resume (afterEventId), and a process whose LISTEN connection was down catch up. "
        "Older events are pruned (EVENTS_EXPIRED for a resume from one).",
    )
    max_subscriptions_per_connection: int = Field(
        20, ge=1, le=1000, description="Operations one WebSocket connection may run at once."
    )
    ws_keepalive_seconds: float = Field(
        15.0,
        ge=0,
        le=3600,
        description="Seconds between server pings (graphql-transport-ws) or keep-alive "
        "messages (graphql-ws) on a WebSocket; 0 turns them off.",
    )
    ws_per_message_deflate: bool = Field(
        False,
        description="Offer permessage-deflate compression on WebSockets: smaller frames for "
        "large results, for about 300 KB of zlib state per connection and CPU per message.",
    )
    ws_init_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a new WebSocket has to send connection_init before it is "
        "closed (4408).",
    )

    jwt_secret: SecretStr | None = Field(
        None,
        description="HS256 key signing access tokens; required in production (at least 32 "
        "characters, not a placeholder). In development, unset means a generated key kept in "
        "JWT_SECRET_FILE.",
    )
    jwt_secret_file: Path = Field(
        Path(".inkwell-jwt-secret"),
        description="Development only: where the generated JWT key is kept, so tokens "
        "survive a restart.",
    )
    jwt_ttl_seconds: int = Field(
        900,
        ge=60,
        le=30 * 86_400,
        description="Lifetime of an access token (a JWT), in seconds; a session's client "
        "gets a new one with its refresh token (`refreshSession`). It is also how long a "
        "token issued before sessions existed (no `sid` claim) keeps working.",
    )
    refresh_token_ttl_seconds: int = Field(
        30 * 86_400,
        ge=300,
        le=365 * 86_400,
        description="How long a sign-in session lasts without being refreshed, in seconds: "
        "each refresh token expires this long after it was issued, and each `refreshSession` "
        "issues a new one.",
    )
    viewer_cache_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="PostgreSQL: seconds a process may remember a signed-in viewer's role "
        "and status instead of reading them per request. Any change to the account is "
        "reported by a trigger's NOTIFY and forgets it at once; this only bounds what no "
        "notification reports. 0: read per request.",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        # The URL forms psql, managed databases and PaaS hand out name no driver, or a
        # synchronous one: map them to the async drivers Inkwell runs on.
        scheme, separator, rest = url.partition("://")
        if not separator:
            raise ValueError(f"not a database URL: {url!r} (e.g. postgresql://user@host/db)")
        mapped = ASYNC_DRIVERS.get(scheme.lower())
        if mapped is None:
            raise ValueError(
                f"{scheme}:// is not supported: use postgresql://... (asyncpg) or "
                "sqlite:///path.db (aiosqlite)"
            )
        return f"{mapped}://{rest}"

    @field_validator("database_replica_urls")
    @classmethod
    def _replica_drivers(cls, urls: list[str]) -> list[str]:
        mapped = []
        for at, url in enumerate(urls):
            scheme, _, rest = url.partition("://")
            if ASYNC_DRIVERS.get(scheme.lower()) != "postgresql+asyncpg" or not rest:
                # The URL itself may hold a password: name its place and scheme only.
                raise ValueError(
                    f"replica {at} ({scheme or 'no scheme'}://...) is not a PostgreSQL URL: "
                    "use postgresql://user@host:port/db"
                )
            mapped.append(f"postgresql+asyncpg://{rest}")
        return mapped

    @field_validator("jwt_secret")
    @classmethod
    def _production_secret(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # An empty HMAC key signs tokens anyone can forge: treat it as not set (development
        # then generates a key; production refuses to start).
        if secret is not None and not secret.get_secret_value().strip():
            secret = None
        if info.data.get("environment") != "production":
            return secret
        if secret is None:
            raise ValueError(
                "must be set in production (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)"
            )
        value = secret.get_secret_value()
        placeholder = any(word in value.lower() for word in PLACEHOLDER_WORDS)
        if (
            placeholder
            or len(value) < MIN_SECRET_LENGTH
            or len(set(value)) < MIN_DISTINCT_CHARACTERS
        ):
            raise ValueError(
                f"looks like a placeholder: use at least {MIN_SECRET_LENGTH} random "
                "characters in production"
            )
        return secret

    @field_validator(
        "cors_allowed_origins",
        "cors_allowed_headers",
        "database_replica_urls",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _comma_or_json_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"not a JSON list of strings: {text!r}") from None
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins_as_browsers_send_them(cls, origins: list[str]) -> list[str]:
        return [normalize_origin(origin) for origin in origins]

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            if proxy != "*":
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                    ) from None
        return proxies

    @field_validator("cors_allowed_headers")
    @classmethod
    def _header_names(cls, names: list[str]) -> list[str]:
        return [name.lower() for name in names]

    @model_validator(mode="after")
    def _page_sizes_agree(self) -> Settings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE")
        if self.database_replica_urls and self.is_sqlite:
            raise ValueError(
                "DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL (SQLite has no replicas)"
            )
        return self

    def jwt_key(self) -> str:
        """The key that signs and verifies access tokens.

        ``JWT_SECRET`` when set (always, in production: the validator refuses to start
        without it). Otherwise, in development, a random key generated once and kept in
        ``JWT_SECRET_FILE`` (mode 0600), so tokens survive a restart. Raises ``OSError`` when
        that file can be neither read nor created.
        """
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return _development_key(self.jwt_secret_file.resolve())

    @property
    def serve_workers(self) -> int:
        """How many worker processes ``server.py serve`` starts (see ``workers``)."""
        if self.is_sqlite:
            return 1
        return self.workers or os.cpu_count() or 1

    @property
    def breadth_first(self) -> bool:
        """Query operations run on the breadth-first executor (batching on, not disabled)."""
        return self.query_executor == "breadth-first" and self.dataloader_batching

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
    def introspection_enabled(self) -> bool:
        """Whether introspection queries (``__schema``, ``__type``) are answered."""
        return self.introspection if self.introspection is not None else not self.is_production

    @property
    def sql_stats_enabled(self) -> bool:
        """Whether responses carry ``extensions.sql``."""
        return self.sql_stats if self.sql_stats is not None else not self.is_production


def normalize_origin(origin: str) -> str:
    """``origin`` as a browser sends it in the ``Origin`` header: scheme and host in lower
    case, no default port, no trailing slash (``"HTTPS://App.example.com:443/"`` →
    ``"https://app.example.com"``); ``"*"`` stays. Raises ``ValueError`` naming a value that
    is not an origin (a path, a query, no scheme or host).
    Source: RFC 6454, "The Web Origin Concept", section 6.1 (serialization).
    """
    origin = origin.strip()
    if origin == "*":
        return origin
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ValueError(
            f"{origin!r} is not an origin: write the scheme, host and optional port, "
            "like https://app.example.com or http://localhost:3000"
        )
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


@cache
def _development_key(path: Path) -> str:
    """The key kept in ``path``, created with a random value if the file does not exist."""
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if len(kept) >= MIN_SECRET_LENGTH:
        return kept
    # Missing, empty or truncated: a new key (tokens signed with the old one stop working).
    path.unlink(missing_ok=True)
    key = secrets.token_urlsafe(48)
    # Written to a private temporary file, then linked into place: the link either creates
    # the complete file or fails because another process got there first (then its key wins).
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        temporary.unlink()
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
