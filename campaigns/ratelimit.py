"""A token bucket per provider account, shared by every worker on every machine.

`reserve(n)` takes n tokens at once and answers how long to wait before using them: the
bucket may go into debt, so a batch of 500 never starves behind smaller ones. A 429 halves
the rate (and blocks everyone until the provider's Retry-After); successes win it back a
little at a time, so the workers settle just under what the provider accepts.

Redis (a Lua script, atomic) when the broker is Redis; a row locked in the database
otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

MIN_FACTOR = 0.05
RECOVER_STEP = 0.02  # of the full rate, per successful batch
THROTTLE_PAUSE_SECONDS = 1.0

# KEYS[1] the bucket; ARGV: rate, burst, n, mode (reserve|throttle|recover), retry_after
_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local mode = ARGV[4]
local after = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', key, 'tokens', 'stamp', 'factor', 'blocked')
local tokens = tonumber(s[1]) or burst
local stamp = tonumber(s[2]) or now
local factor = tonumber(s[3]) or 1
local blocked = tonumber(s[4]) or 0
local wait = 0
if mode == 'throttle' then
  factor = math.max(%(min)s, factor / 2)
  if now + after > blocked then blocked = now + after end
elseif mode == 'recover' then
  factor = math.min(1, factor + %(step)s)
else
  local r = rate * factor
  tokens = math.min(burst, tokens + (now - stamp) * r)
  stamp = now
  tokens = tokens - n
  if tokens < 0 then wait = -tokens / r end
  if blocked > now and blocked - now > wait then wait = blocked - now end
end
redis.call('HSET', key, 'tokens', tokens, 'stamp', stamp, 'factor', factor, 'blocked', blocked)
redis.call('EXPIRE', key, 3600)
return tostring(wait) .. ' ' .. tostring(factor)
""" % {"min": MIN_FACTOR, "step": RECOVER_STEP}


@dataclass
class RateLimiter:
    key: str
    rate: float  # messages per second at full speed; <= 0: no limit
    burst: float
    # The bucket's rate factor as this limiter last saw it: at 1 a success has nothing to
    # win back, so recover() skips its round trip (one per batch sent; 1.5% of a send
    # worker's samples). Seen low, every success goes to the bucket again until it is 1.
    factor: float = field(default=1.0, compare=False)

    def reserve(self, n: int) -> float:
        """Take n tokens; the seconds to wait before sending them."""
        if self.rate <= 0:
            return self._blocked_wait()
        return self._run("reserve", n)

    def acquire(self, n: int) -> float:
        """reserve() and sleep as long as it says; returns the time slept."""
        wait = self.reserve(n)
        if wait > 0:
            time.sleep(wait)
        return wait

    def throttle(self, retry_after: float | None) -> None:
        """The provider said slow down: halve everyone's rate and pause them for its
        Retry-After, or for THROTTLE_PAUSE_SECONDS when it gave none (SES never does):
        without a pause an unlimited rate would go on at full speed."""
        self._run("throttle", 0, retry_after or THROTTLE_PAUSE_SECONDS)

    def recover(self) -> None:
        if self.factor < 1:
            self._run("recover", 0)

    def _blocked_wait(self) -> float:
        # Even unlimited, a Retry-After from the provider holds every worker.
        return self._run("reserve", 0, rate=1e9)

    def _run(self, mode: str, n: int, after: float = 0.0, rate: float | None = None) -> float:
        rate = self.rate if rate is None else rate
        client = _redis()
        if client is not None:
            answer = client.eval(_LUA, 1, f"offerlab:rate:{self.key}", rate, self.burst, n, mode, after).split()
            wait, self.factor = float(answer[0]), float(answer[1])
            return wait
        wait, self.factor = _db_run(self.key, rate, self.burst, n, mode, after)
        return wait


_client = None
_client_url = None


def _redis():
    """A Redis client when the broker is Redis (the bucket lives next to the queue)."""
    global _client, _client_url
    url = settings.CAMPAIGN_RATE_REDIS_URL or settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    if _client is None or _client_url != url:
        import redis

        _client, _client_url = redis.Redis.from_url(url), url
    return _client


def _db_run(key: str, rate: float, burst: float, n: int, mode: str, after: float) -> tuple[float, float]:
    """What the Lua script does, on a locked row: (seconds to wait, the rate factor)."""
    from .models import RateBucket

    now = time.time()
    with transaction.atomic():
        bucket, _ = RateBucket.objects.select_for_update().get_or_create(
            key=key, defaults={"tokens": burst, "stamp": now}
        )
        wait = 0.0
        if mode == "throttle":
            bucket.factor = max(MIN_FACTOR, bucket.factor / 2)
            bucket.blocked_until = max(bucket.blocked_until, now + after)
        elif mode == "recover":
            bucket.factor = min(1.0, bucket.factor + RECOVER_STEP)
        else:
            r = rate * bucket.factor
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * r) - n
            bucket.stamp = now
            if bucket.tokens < 0:
                wait = -bucket.tokens / r
            wait = max(wait, bucket.blocked_until - now)
        bucket.save()
    return max(0.0, wait), bucket.factor


def limiter_for(account_key: str) -> RateLimiter:
    rate = float(settings.CAMPAIGN_RATE_LIMIT)
    return RateLimiter(key=account_key, rate=rate, burst=max(rate, 1.0))
