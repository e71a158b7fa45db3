"""Token buckets and sliding windows, on a fake clock."""

from __future__ import annotations

import pytest

from hubbub.core.errors import RateLimited
from hubbub.core.ratelimit import TokenBucket, WindowCounter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_burst_then_refill() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        bucket.take("a")
    with pytest.raises(RateLimited) as caught:
        bucket.take("a")
    assert caught.value.retry_after == pytest.approx(0.5)
    assert caught.value.status == 429
    bucket.take("b")  # keys are independent
    clock.now += 0.5
    bucket.take("a")
    with pytest.raises(RateLimited):
        bucket.take("a")
    clock.now += 100  # never more than the burst saved up
    for _ in range(3):
        bucket.take("a")
    with pytest.raises(RateLimited):
        bucket.take("a")


def test_bucket_forgets_least_recent_keys() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, max_keys=2, clock=Clock())
    bucket.take("a")
    bucket.take("b")
    bucket.take("c")  # "a" is forgotten, and with it its empty bucket
    bucket.take("a")
    with pytest.raises(RateLimited):
        bucket.take("c")


def test_window_counts_within_window() -> None:
    clock = Clock()
    window = WindowCounter(limit=3, window=60.0, clock=clock)
    for _ in range(3):
        window.check("k")
        window.hit("k")
        clock.now += 10
    with pytest.raises(RateLimited) as caught:
        window.check("k")
    # the first hit (at 1000) leaves the window at 1060; now is 1030
    assert caught.value.retry_after == pytest.approx(30.0)
    window.check("other")
    clock.now += 30.5
    window.check("k")  # one slot free again
    window.hit("k")
    with pytest.raises(RateLimited):
        window.check("k")


def test_window_undo_and_reset() -> None:
    window = WindowCounter(limit=2, window=60.0, clock=Clock())
    window.hit("k")
    window.hit("k")
    with pytest.raises(RateLimited):
        window.check("k")
    window.undo("k")
    window.check("k")
    window.undo("k")
    window.undo("k")  # nothing left: harmless
    window.undo("never seen")
    window.hit("k")
    window.hit("k")
    window.reset("k")
    window.check("k")


def test_window_memory_is_bounded() -> None:
    window = WindowCounter(limit=1, window=60.0, max_keys=100, clock=Clock())
    for i in range(1000):
        window.hit(i)
    assert len(window._hits) == 100
    window.check(0)  # forgotten
    with pytest.raises(RateLimited):
        window.check(999)
