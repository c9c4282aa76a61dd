"""Rate limits: token buckets charged with each operation's estimated cost, and with each
sign-in and registration attempt; kept in the process (``buckets``) or in Redis, shared by
every worker and instance (``redis_buckets``); which bucket pays what (``policy``). The
operation's charge is made by ``schema.engine.extensions.rate_limits``; HTTP's 429 by
``schema.transport.rate_limited``."""

from schema.engine.rate_limits.policy import RateLimits, client_address, limits_of, rate_limits

__all__ = ["RateLimits", "client_address", "limits_of", "rate_limits"]
