"""Per-client-IP token buckets for the public verification endpoints (in-process, no shared store)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Beyond this many tracked clients, buckets that have refilled completely are dropped: a full bucket
# is the same as no bucket, so this bounds memory without ever forgiving a client mid-burst.
MAX_TRACKED = 50_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """`rate_per_minute` requests per client on average, bursts of up to `burst`; 0 disables it.

    Each worker process keeps its own buckets, so with N workers a client may get up to N times the
    rate: a bound on abuse, not an accounting system."""

    def __init__(self, rate_per_minute: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """Spend one token of `key`'s bucket: 0.0 when allowed, else the seconds until one is back."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_TRACKED:
                    self._forget_full(now)
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        self._buckets = {k: b for k, b in self._buckets.items()
                         if b.tokens + (now - b.updated) * self.rate < self.burst}


def retry_after_header(wait: float) -> str:
    """Retry-After takes whole seconds; round up so a client that obeys it is never refused again."""
    return str(max(1, math.ceil(wait)))
