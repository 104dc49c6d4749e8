"""Request rates the API pullers keep to, shared by every reader of a process.

AWS limits some APIs per account and region (CloudTrail LookupEvents: 2 requests
per second), whoever calls them. ``RateLimiter`` spaces the calls of everyone
holding it; ``SharedLimits`` hands the same limiter to every DoFn of a worker
process that asks for the same key, through Beam's ``Shared`` handle (made when
the pipeline is built, so it travels with the DoFns). A throttled call halves the
rate for a while (adaptive backoff); calls that succeed bring it back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from apache_beam.utils.shared import Shared


class RateLimiter:
    """At most ``rate`` calls per second, with bursts of ``burst``."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.current = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._tokens = burst
        self._at = time.monotonic()
        self._ok_since_throttle = 0

    def acquire(self, stopped: Callable[[], bool] = lambda: False) -> bool:
        """Wait for a call's turn; False if ``stopped`` became true meanwhile."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.current)
                self._at = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return True
                wait = (1 - self._tokens) / self.current
            if stopped():
                return False
            time.sleep(min(wait, 0.5))

    def throttled(self) -> None:
        """AWS said slow down: halve the rate (down to a tenth) and drop the burst."""
        with self._lock:
            self.current = max(self.rate / 10, self.current / 2)
            self._tokens = 0
            self._ok_since_throttle = 0

    def succeeded(self) -> None:
        """Every 10 calls without throttling, a step back toward the full rate."""
        with self._lock:
            self._ok_since_throttle += 1
            if self.current < self.rate and self._ok_since_throttle >= 10:
                self.current = min(self.rate, self.current * 1.5)
                self._ok_since_throttle = 0


class SharedLimits:
    """Limiters by key, one per key in each worker process."""

    def __init__(self) -> None:
        self._shared = Shared()
        self._held: dict[str, _Held] = {}  # Shared keeps an object while someone holds it

    def get(self, key: str, rate: float, burst: float = 1.0) -> RateLimiter:
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = self._shared.acquire(lambda: _Held(rate, burst), tag=key)
        return held.limiter

    def __getstate__(self) -> dict:
        return {"_shared": self._shared}

    def __setstate__(self, state: dict) -> None:
        self._shared = state["_shared"]
        self._held = {}


class _Held:
    """What Shared stores (it needs an object it can weakly reference)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.limiter = RateLimiter(rate, burst)
