"""The per-client token bucket of the public verification endpoints, on a clock the test moves."""

from __future__ import annotations

import pytest

from controlplane.web.public import ratelimit
from controlplane.web.public.ratelimit import TokenBucketLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate_per_client() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate_per_minute=60, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("a")
    assert wait == 1.0 and retry_after_header(wait) == "1"
    assert limiter.take("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert 0 < limiter.take("a") <= 0.5  # half a token back: still refused, and told how long
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refills up to the burst, never beyond


def test_zero_rate_means_no_limit_and_retry_after_rounds_up() -> None:
    limiter = TokenBucketLimiter(rate_per_minute=0, burst=1)
    assert not limiter.enabled and all(limiter.take("a") == 0.0 for _ in range(1000))
    assert retry_after_header(0.01) == "1" and retry_after_header(9.2) == "10"


def test_memory_is_bounded_by_forgetting_full_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate_per_minute=60, burst=2, clock=clock)
    monkeypatch.setattr(ratelimit, "MAX_TRACKED", 10)  # a bound the test can reach
    limiter.take("busy")
    limiter.take("busy")
    for n in range(9):
        limiter.take(f"once-{n}")
    clock.now += 1.5  # the one-off clients' buckets are full again; "busy" is still refilling
    limiter.take("newcomer")
    assert "newcomer" in limiter._buckets and "once-0" not in limiter._buckets
    assert "busy" in limiter._buckets and limiter.take("busy") == 0.0
    assert limiter.take("busy") > 0  # its partial bucket was kept, not forgiven
