"""Token buckets in Redis, shared by every worker and instance: one atomic script per charge.

Each charge is one round trip: a Lua script (redis-py's ``register_script``: ``EVALSHA``,
loading the script once when the server does not have it yet) reads the buckets' TATs,
decides on Redis's own clock (``TIME``, so instances whose clocks disagree still agree), and
takes every charge or none (``schema.engine.rate_limits.buckets`` describes the algorithm).
Times are whole microseconds, which a Lua number (a double) holds exactly; a key expires when
its bucket is full again, so idle buckets cost Redis nothing.

Redis being unreachable (or slower than ``schema.engine.redis_link.TIMEOUT``) never fails a
request: the charge is made in the process's own buckets instead, the process's one outage
warning says so (``RedisLink.unreachable``: a line a minute, whichever user of Redis noticed),
and no user of Redis asks it again until ``RedisLink.available`` (``RETRY_SECONDS`` later: a
Redis that stopped answering costs at most one timeout a second per process, not one per
request).
Source: Redis docs, "Scripting with Lua" (scripts run atomically; ``redis.call``; effects
replication, Redis 5 or newer), ``TIME``, ``SET`` with ``PX``; redis-py docs, "Lua
Scripting" (``register_script``); ``schema.engine.persisted_store`` for the fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

from schema.engine.rate_limits.buckets import Charge, ProcessBuckets
from schema.engine.redis_link import UNANSWERED, RedisLink

#: KEYS: the buckets. ARGV, three per key: microseconds per point, capacity (points), cost
#: (points). Returns 0 (every charge taken) or the microseconds to wait (none taken); a
#: wait of a microsecond or less is rounding (stored TATs are whole microseconds) and passes.
GCRA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local wait, tats = 0, {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or 0), now)
  tats[i] = tat + tonumber(ARGV[3 * i]) * interval
  wait = math.max(wait, tats[i] - now - tonumber(ARGV[3 * i - 1]) * interval)
end
if wait > 1 then
  return math.ceil(wait)
end
for i = 1, #KEYS do
  -- At least a millisecond: a bucket refilled within one would ask for PX 0, an error.
  local ttl = math.max(1, math.ceil((tats[i] - now) / 1000))
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl)
end
return 0
"""


class RedisBuckets:
    """Buckets in the Redis of ``link`` (the process's one client), each under ``prefix`` +
    its key, with this process's own buckets (``ProcessBuckets``) standing in while Redis
    cannot answer."""

    def __init__(self, link: RedisLink, prefix: str) -> None:
        self.prefix = prefix
        self._link = link
        self._script = link.client.register_script(GCRA)
        self._fallback = ProcessBuckets()

    async def charge(self, charges: Sequence[Charge]) -> float:
        """Take every charge, or none: ``0.0`` when all of them fit, else the seconds to
        wait until they would. Never raises for Redis's sake."""
        args: list[float] = []
        for charge in charges:
            args += (1e6 / charge.bucket.per_second, charge.bucket.capacity, charge.cost)
        keys = [self.prefix + c.key for c in charges]
        waited = await self._link.ask(lambda _: self._script(keys=keys, args=args))
        if waited is UNANSWERED:
            return self._fallback.take(charges)
        return int(waited) / 1e6
