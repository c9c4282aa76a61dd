"""Who pays what: the buckets of operations, sign-ins and registrations, from the settings.

- Every operation (``RATE_LIMIT_POINTS``, refilled at ``RATE_LIMIT_POINTS_PER_SECOND``;
  off at 0) costs one point plus its estimated rows (``schema.engine.limits``: ``Context.cost``),
  at most the whole bucket (so the largest operation ``MAX_QUERY_COST`` allows still runs, on
  a full bucket), charged to the signed-in viewer's bucket, or an anonymous client's address's.
- Each ``login`` costs one attempt from the account's bucket (by normalised email) and one
  from the address's (``LOGIN_ATTEMPTS_PER_ACCOUNT``, ``LOGIN_ATTEMPTS_PER_ADDRESS``); each
  ``register`` one from the address's (``REGISTER_ATTEMPTS_PER_ADDRESS``); each such bucket
  refills over ``AUTH_ATTEMPTS_WINDOW_SECONDS``. A guesser of one account's password is held
  to a few guesses per window, one address guessing many accounts to more, and both before
  Argon2 spends any CPU on them.

A client's address is the connection's peer as the server gives it: ``serve`` has uvicorn
replace it with the ``X-Forwarded-For`` address, read right to left, only when the peer is one
of ``TRUSTED_PROXIES``. IPv6 addresses count by their /64 network, the block one subscriber
is usually given (a client could otherwise pick a new address per request).
Over the limit, ``RateLimited`` (``RATE_LIMITED``, ``extensions.retryAfterSeconds``; HTTP
429 with ``Retry-After``: ``schema.transport.rate_limited``) and nothing runs.
Source: OWASP Authentication Cheat Sheet, "Protect against automated attacks" (throttling
per account and per address); RFC 6585 §4 (429 Too Many Requests); RFC 9110 §10.2.3
(Retry-After); RFC 6177 (an IPv6 end site is given a /48 to /64).
"""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from schema.engine.rate_limits.buckets import Bucket, Charge, ProcessBuckets
from schema.engine.rate_limits.redis_buckets import RedisBuckets
from schema.engine.redis_link import RedisLink
from schema.errors import RateLimited
from settings import Settings

if TYPE_CHECKING:
    from schema.context import Context

REFUSED = Counter(
    "inkwell_rate_limited",
    "Operations and sign-in or registration attempts refused by a rate limit (RATE_LIMITED, "
    "HTTP 429), by limit: operation, login, register.",
    ["limit"],
)


@lru_cache(maxsize=4096)
def address_key(host: str) -> str:
    """The bucket name of a client at ``host``: the IP address, an IPv6 one's /64 network (an
    IPv4-mapped one as IPv4), or ``host`` itself when it is no IP address (a Unix socket)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return str(address)


def client_address(request: Any) -> str:
    """``address_key`` of the peer of ``request`` (a Starlette ``Request`` or ``WebSocket``),
    ``"unknown"`` when it has none."""
    client = getattr(request, "client", None)
    return address_key(client.host) if client is not None and client.host else "unknown"


def _per_window(attempts: int, window: float) -> Bucket | None:
    return Bucket(attempts, attempts / window) if attempts else None


class RateLimits:
    """The process's rate limits (``app.state.rate_limits``): the buckets ``settings`` ask
    for, kept in ``buckets`` (``ProcessBuckets`` or ``RedisBuckets``). A limit set to 0 is
    never charged, and with every limit off nothing is kept anywhere."""

    def __init__(self, settings: Settings, buckets: ProcessBuckets | RedisBuckets) -> None:
        self.buckets = buckets
        window = settings.auth_attempts_window_seconds
        points = settings.rate_limit_points
        self.operation = Bucket(points, settings.rate_limit_points_per_second) if points else None
        self.login_account = _per_window(settings.login_attempts_per_account, window)
        self.login_address = _per_window(settings.login_attempts_per_address, window)
        self.register_address = _per_window(settings.register_attempts_per_address, window)

    async def charge_operation(self, context: Context) -> None:
        """Charge the operation of ``context`` (its viewer set, its ``cost`` measured) to its
        bucket. Raises ``RateLimited`` when it does not fit."""
        bucket = self.operation
        if bucket is None:
            return
        viewer = context.viewer
        key = f"op:user:{viewer.id}" if viewer else f"op:addr:{client_address(context.request)}"
        await self._charge(
            "operation", [Charge(key, bucket, min(1 + context.cost, bucket.capacity))]
        )

    async def charge_login(self, context: Context, email: str) -> None:
        """Charge a sign-in attempt as ``email`` (normalised) to the account's and the
        address's buckets. Raises ``RateLimited`` when either is empty (neither is charged)."""
        charges = []
        if self.login_account is not None:
            account = hashlib.sha256(email.encode()).hexdigest()[:32]  # no email kept in Redis
            charges.append(Charge(f"login:account:{account}", self.login_account, 1))
        if self.login_address is not None:
            address = client_address(context.request)
            charges.append(Charge(f"login:addr:{address}", self.login_address, 1))
        await self._charge("login", charges)

    async def charge_register(self, context: Context) -> None:
        """Charge a registration attempt to the address's bucket. Raises ``RateLimited`` when
        it is empty."""
        if self.register_address is not None:
            address = client_address(context.request)
            await self._charge(
                "register", [Charge(f"register:addr:{address}", self.register_address, 1)]
            )

    async def _charge(self, limit: str, charges: list[Charge]) -> None:
        if not charges:
            return
        wait = await self.buckets.charge(charges)
        if wait > 0:
            REFUSED.labels(limit).inc()
            raise RateLimited(wait)


def rate_limits(settings: Settings, link: RedisLink | None) -> RateLimits:
    """The rate limits ``settings`` ask for, in the Redis of ``link`` (``REDIS_URL``) when
    any limit is on, else in the process."""
    on = (
        settings.rate_limit_points
        or settings.login_attempts_per_account
        or settings.login_attempts_per_address
        or settings.register_attempts_per_address
    )
    if link is not None and on:
        return RateLimits(settings, RedisBuckets(link, settings.rate_limit_key_prefix))
    return RateLimits(settings, ProcessBuckets())


def limits_of(context: Context) -> RateLimits | None:
    """The process's rate limits (``app.state.rate_limits``, made by the lifespan) for an
    operation's ``context``; ``None`` for one made without an app (a test's, a command's)."""
    app = getattr(context.request, "app", None)  # a Starlette Request or WebSocket
    return getattr(app.state, "rate_limits", None) if app is not None else None
