"""Redis rate-limit stores (extra ``apisec[redis]``): one round trip per decision.

Every decision — one limit or several, hit or peek, headers included — is
one ``EVALSHA`` of the script below, which mirrors the Python algorithms
(reloaded on ``NOSCRIPT``, e.g. after a restart). Keys carry the
caller's key as a hash tag, so the limits of one key live on one Redis
Cluster slot and the script stays atomic there. Unless the limiter was given
a ``clock``, the script reads the Redis server's ``TIME``, so app servers
with skewed clocks still agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, RedisError

from apisec._redis import redis_errors, store_error
from apisec.errors import ConfigurationError
from apisec.ratelimit._algorithms import Algorithm, Outcome
from apisec.ratelimit._store import LimitRequest

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    import redis.cluster

__all__ = ["AsyncRedisStore", "RedisStore"]

# The script is assembled from these parts. Each algorithm returns allowed,
# remaining, reset_after, retry_after, queue_delay and a function that writes
# the new state (called only when everything passed).
_HELPERS = r"""
local function up(s)
  if s <= 0 then return 0 end
  return math.ceil(s / 1e-6 - 1e-9) * 1e-6
end
local function ms(s)
  return math.max(1, math.ceil(s * 1000))
end
"""

_ALGORITHMS = {
    1: r"""
local function fixed(key, now, cost, limit, window)
  local start = math.floor(now / window) * window
  local st = redis.call('HMGET', key, 'w', 'c')
  local count, same = 0, false
  -- A stored window newer than now (the clock stepped back) stays current.
  if st[1] and tonumber(st[1]) >= start then
    start = tonumber(st[1])
    count = tonumber(st[2])
    same = true
  end
  local reset = start + window - now
  if count + cost <= limit then
    return 1, limit - count - cost, reset, -1, -1, function()
      if same and count + cost < 1e15 then
        -- The window's state and expiry were written when it began: one command.
        redis.call('HINCRBY', key, 'c', cost)
      else
        redis.call('HSET', key, 'w', start, 'c', count + cost)
        redis.call('PEXPIRE', key, ms(reset))
      end
    end
  end
  return 0, limit - count, reset, up(reset), -1, nil
end
""",
    2: r"""
local function sliding(key, now, cost, limit, window)
  local floor = now - window
  local count = redis.call('ZCOUNT', key, '(' .. string.format('%.17g', floor), '+inf')
  local newest = nil
  if count > 0 then
    newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  end
  if count + cost <= limit then
    local last = newest
    if cost > 0 and (last == nil or now > last) then last = now end
    local reset = 0
    if last ~= nil then reset = math.max(last + window - now, 0) end
    return 1, limit - count - cost, reset, -1, -1, function()
      redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', floor))
      local card = redis.call('ZCARD', key)
      for j = 1, cost do
        redis.call('ZADD', key, string.format('%.17g', now),
                   string.format('%.17g', now) .. ':' .. card .. ':' .. j)
      end
      if last ~= nil then redis.call('PEXPIRE', key, ms(last + window - now)) end
    end
  end
  local excess = count + cost - limit
  local oldest = redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%.17g', floor), '+inf',
                            'WITHSCORES', 'LIMIT', excess - 1, 1)
  local retry = math.max(tonumber(oldest[2]) + window - now, 0)
  return 0, limit - count, math.max(newest + window - now, 0), up(retry), -1, nil
end
""",
    3: r"""
local function token(key, now, cost, capacity, rate)
  local st = redis.call('HMGET', key, 't', 'l')
  local tokens = capacity
  if st[1] then
    tokens = math.min(capacity, tonumber(st[1]) + math.max(now - tonumber(st[2]), 0) * rate)
  end
  if tokens >= cost then
    local left = tokens - cost
    local reset = (capacity - left) / rate
    return 1, math.floor(left), reset, -1, -1, function()
      redis.call('HSET', key, 't', left, 'l', now)
      redis.call('PEXPIRE', key, ms(reset))
    end
  end
  return 0, math.floor(tokens), (capacity - tokens) / rate, up((cost - tokens) / rate), -1, nil
end
""",
    4: r"""
local function leaky(key, now, cost, capacity, rate)
  local st = redis.call('HMGET', key, 'v', 'l')
  local level = 0
  if st[1] then
    level = math.max(tonumber(st[1]) - math.max(now - tonumber(st[2]), 0) * rate, 0)
  end
  local delay = level / rate
  if level + cost <= capacity then
    local after = level + cost
    return 1, math.floor(capacity - after), after / rate, -1, delay, function()
      redis.call('HSET', key, 'v', after, 'l', now)
      redis.call('PEXPIRE', key, ms(after / rate))
    end
  end
  return 0, math.floor(capacity - level), level / rate, up((level + cost - capacity) / rate),
         delay, nil
end
""",
    5: r"""
local function counter(key, now, cost, limit, window)
  local start = math.floor(now / window) * window
  local st = redis.call('HMGET', key, 'w', 'c', 'p')
  local current, previous, same = 0, 0, false
  if st[1] then
    local stored = tonumber(st[1])
    if stored >= start then
      start = stored
      current, previous = tonumber(st[2]), tonumber(st[3])
      same = true
    elseif stored == start - window then
      previous = tonumber(st[2])
    end
  end
  local function keep(cur, prev)
    if cur > 0 then return start + 2 * window - now end
    if prev > 0 then return start + window - now end
    return 0
  end
  local weight = (window - math.max(now - start, 0)) / window
  local estimate = previous * weight + current
  if estimate + cost <= limit then
    local after = current + cost
    local reset = keep(after, previous)
    return 1, math.floor(limit - (previous * weight + after)), reset, -1, -1, function()
      if same and current > 0 and after < 1e15 then
        -- Same window, already counting: the expiry (two windows on) stands.
        redis.call('HINCRBY', key, 'c', cost)
      else
        redis.call('HSET', key, 'w', start, 'c', after, 'p', previous)
        redis.call('PEXPIRE', key, ms(reset))
      end
    end
  end
  local retry
  local room = limit - cost - current
  local next_start = start + window - now
  if room >= 0 and previous > 0 and next_start - room * window / previous < next_start then
    retry = math.max(next_start - room * window / previous, 0)
  elseif current + cost <= limit then
    retry = next_start
  else
    retry = next_start + window - (limit - cost) * window / current
  end
  return 0, math.max(math.floor(limit - estimate), 0), keep(current, previous), up(retry), -1, nil
end
""",
    # Give back `cost` units of a sliding window: its oldest live admissions go.
    6: r"""
local function sliding_release(key, now, cost, limit, window)
  local floor = '(' .. string.format('%.17g', now - window)
  local gone = redis.call('ZRANGEBYSCORE', key, floor, '+inf', 'LIMIT', 0, cost)
  local count = redis.call('ZCOUNT', key, floor, '+inf') - #gone
  local reset = 0
  if count > 0 then
    reset = math.max(tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]) + window - now, 0)
  end
  return 1, limit - count, reset, -1, -1, function()
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', now - window))
    if #gone > 0 then redis.call('ZREM', key, unpack(gone)) end
  end
end
""",
}
_NAMES = {1: "fixed", 2: "sliding", 3: "token", 4: "leaky", 5: "counter", 6: "sliding_release"}

_NOW = r"""
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
"""

#: Any decision: KEYS are the limits' keys, ARGV is now ('' for the server's
#: clock), peek ('1' or '0') and, per key, the algorithm's id, cost and two
#: parameters.
SCRIPT = (
    _HELPERS
    + "".join(_ALGORITHMS.values())
    + "local algorithms = {fixed, sliding, token, leaky, counter, sliding_release}\n"
    + _NOW
    + r"""
local peek = ARGV[2] == '1'

if not peek and #KEYS == 1 then
  -- One limit (the usual): no tables, one format.
  local ok, rem, reset, retry, delay, write = algorithms[tonumber(ARGV[3])](
    KEYS[1], now, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
  if ok == 1 then write() end
  return string.format('%d %.17g %.17g %.17g %.17g', ok, rem, reset, retry, delay)
end

local results, writes, all = {}, {}, true
for i, key in ipairs(KEYS) do
  local base = 3 + (i - 1) * 4
  local run = algorithms[tonumber(ARGV[base])]
  local cost, p1, p2 = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local ok, rem, reset, retry, delay, write
  if peek then
    local unit_ok, unit_rem, unit_reset, unit_retry = run(key, now, 1, p1, p2)
    local _, cur_rem, cur_reset, _, cur_delay = run(key, now, 0, p1, p2)
    ok, rem, reset, retry, delay = unit_ok, cur_rem, cur_reset, unit_retry, cur_delay
  else
    ok, rem, reset, retry, delay, write = run(key, now, cost, p1, p2)
  end
  if ok == 0 then all = false end
  writes[i] = write
  local n = #results
  results[n + 1] = tostring(ok)
  results[n + 2] = tostring(rem)
  results[n + 3] = string.format('%.17g', reset)
  results[n + 4] = string.format('%.17g', retry)
  results[n + 5] = string.format('%.17g', delay)
end
if all and not peek then
  for i = 1, #KEYS do writes[i]() end
end
-- One bulk string: cheaper to send and to parse than a nested reply.
return table.concat(results, ' ')
"""
)

_ONE_DRIVER = r"""
local ok, rem, reset, retry, delay, write = run(
  KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
if ok == 1 then write() end
return string.format('%d %.17g %.17g %.17g %.17g', ok, rem, reset, retry, delay)
"""

#: A one-limit hit, one script per algorithm with only its own function (a
#: shorter script runs faster: Lua makes every function again on each call).
#: KEYS[1] is the limit's key, ARGV is now, cost and the two parameters.
ONE_SCRIPTS = {
    lua_id: _HELPERS + _ALGORITHMS[lua_id] + f"local run = {_NAMES[lua_id]}\n" + _NOW + _ONE_DRIVER
    for lua_id in (1, 2, 3, 4, 5)
}


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
        raise ConfigurationError("a store prefix is a string without braces (hash tags)")
    return prefix


def _now_arg(now: float | None) -> bytes:
    return b"" if now is None else repr(float(now)).encode()


def _outcome(
    allowed: bytes | str,
    remaining: bytes | str,
    reset: bytes | str,
    retry_after: bytes | str,
    delay: bytes | str,
) -> Outcome:
    retry = float(retry_after)
    queue = float(delay)
    return Outcome(
        allowed in (b"1", "1"),
        int(float(remaining)),
        float(reset),
        None if retry < 0 else retry,
        None if queue < 0 else queue,
    )


def _outcomes(reply: bytes | str) -> list[Outcome]:
    fields = reply.split()
    return [_outcome(*fields[i : i + 5]) for i in range(0, len(fields), 5)]


#: Unit-hit arguments remembered per algorithm (cleared when full).
_UNITS = 256
#: Every script by its number: 0 is :data:`SCRIPT`, the others the one-limit scripts.
_SCRIPTS = {0: SCRIPT, **ONE_SCRIPTS}
#: A command: which script, then ``EVALSHA``'s arguments after the script's name.
_Command = tuple[int, tuple[Any, ...]]


def _sha(script: str) -> str:
    # Redis names a script by its SHA-1 (not a security use).
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


class _ScriptCore:
    """The ``EVALSHA`` command of a decision, shared by both twins.

    redis-py's ``Script`` object is skipped: the command goes straight to
    ``execute_command`` with its arguments encoded once per algorithm, and
    the twins load a script themselves on ``NOSCRIPT``.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = _check_prefix(prefix)
        self._execute = client.execute_command
        self._shas = {which: _sha(script) for which, script in _SCRIPTS.items()}
        self._units: dict[Algorithm, tuple[int, bytes, bytes, bytes]] = {}

    def _one_command(
        self, key: str, algorithm: Algorithm, cost: int, now: float | None
    ) -> _Command:
        now_arg = b"" if now is None else repr(float(now)).encode()
        unit = self._units.get(algorithm) if cost == 1 else None
        if unit is None:
            _, p1, p2 = algorithm.lua_arguments()
            which = algorithm.lua_id
            if which not in ONE_SCRIPTS:
                request = LimitRequest(key=key, algorithm=algorithm, cost=cost)
                return self._command([request], now, False)
            if cost != 1:
                return which, (1, self._prefix + key, now_arg, cost, p1, p2)
            unit = (which, b"1", p1, p2)
            if len(self._units) >= _UNITS:
                self._units.clear()
            self._units[algorithm] = unit
        which, cost_arg, p1, p2 = unit
        return which, (1, self._prefix + key, now_arg, cost_arg, p1, p2)

    def _command(self, requests: Sequence[LimitRequest], now: float | None, peek: bool) -> _Command:
        args: list[Any] = [len(requests), *(self._prefix + r.key for r in requests)]
        args += [_now_arg(now), b"1" if peek else b"0"]
        for request in requests:
            lua_id, p1, p2 = request.algorithm.lua_arguments()
            args += [lua_id, request.cost, p1, p2]
        return 0, tuple(args)


class RedisStore(_ScriptCore):
    """Rate-limit state in Redis or Redis Cluster, shared by every process.

    Args:
        client: ``redis.Redis`` or ``redis.cluster.RedisCluster``.
        prefix: a namespace put before every key (e.g. ``"myapp:"``).
    """

    def __init__(
        self, client: redis.Redis | redis.cluster.RedisCluster, *, prefix: str = ""
    ) -> None:
        super().__init__(client, prefix)

    def _run(self, command: _Command) -> Any:
        which, args = command
        try:
            try:
                return self._execute("EVALSHA", self._shas[which], *args)
            except NoScriptError:  # a restart or SCRIPT FLUSH: load it and retry, once
                self._shas[which] = self._client.script_load(_SCRIPTS[which])
                return self._execute("EVALSHA", self._shas[which], *args)
        except (RedisError, OSError) as exc:
            raise store_error("rate limit", exc) from exc

    def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]:
        return _outcomes(self._run(self._command(requests, now, peek)))

    def evaluate_one(self, key: str, algorithm: Algorithm, cost: int, now: float | None) -> Outcome:
        """One limit, one round trip (the limiter's shortcut)."""
        return _outcome(*self._run(self._one_command(key, algorithm, cost, now)).split())

    def clear(self, keys: Sequence[str]) -> None:
        with redis_errors("rate limit reset"):
            for key in keys:  # one key per call: keys may sit on different Cluster slots
                self._client.delete(self._prefix + key)


class AsyncRedisStore(_ScriptCore):
    """The ``redis.asyncio`` twin of :class:`RedisStore`."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "") -> None:
        super().__init__(client, prefix)

    async def _run(self, command: _Command) -> Any:
        which, args = command
        try:
            try:
                return await self._execute("EVALSHA", self._shas[which], *args)
            except NoScriptError:
                self._shas[which] = await self._client.script_load(_SCRIPTS[which])
                return await self._execute("EVALSHA", self._shas[which], *args)
        except (RedisError, OSError) as exc:
            raise store_error("rate limit", exc) from exc

    async def evaluate(
        self, requests: Sequence[LimitRequest], now: float | None, peek: bool
    ) -> list[Outcome]:
        return _outcomes(await self._run(self._command(requests, now, peek)))

    async def evaluate_one(
        self, key: str, algorithm: Algorithm, cost: int, now: float | None
    ) -> Outcome:
        return _outcome(*(await self._run(self._one_command(key, algorithm, cost, now))).split())

    async def clear(self, keys: Sequence[str]) -> None:
        with redis_errors("rate limit reset"):
            for key in keys:
                await self._client.delete(self._prefix + key)
