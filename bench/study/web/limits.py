"""Rate limits of the participant server (docs/PROTOCOLS.md §7): token buckets in this
process's memory, keyed by the client's address (and by participant for answers).

With ``W`` server processes a client may get up to ``W`` times a limit (each process
counts its own); the limits are there to stop a flood, not to meter. Defaults, per
address: 20 new participants per minute (burst 20), 50 answers per second (burst 200:
a lab or a school behind one address); per participant 4 answers per second (burst 8:
no person answers faster). ``$BENCH_STUDY_RATE_NEW`` (per minute),
``$BENCH_STUDY_RATE_ANSWERS`` (per second per address) and
``$BENCH_STUDY_RATE_PARTICIPANT`` (per second per participant) change them (the
load test of benchmarks/bench_study_load.py runs hundreds of participants from
127.0.0.1 and raises them).
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["Bucket", "Limits"]


class Bucket:
    """Token buckets: *rate* tokens per second, at most *burst*, one bucket per key."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000):
        self.rate, self.burst, self.max_keys = float(rate), float(burst), max_keys
        self._d: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when a token was taken; else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._d.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._d[key] = (tokens - 1, now)
                if len(self._d) > self.max_keys:
                    self._prune(now)
                return 0.0
            self._d[key] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate > 0 else 60.0

    def _prune(self, now: float) -> None:
        full = [k for k, (t, last) in self._d.items()
                if t + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._d[k]
        while len(self._d) > self.max_keys:
            self._d.pop(next(iter(self._d)))


def _env(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return v if v > 0 else default


class Limits:
    """The server's limits (see the module docstring)."""

    def __init__(self):
        per_min = _env("BENCH_STUDY_RATE_NEW", 20.0)
        per_s = _env("BENCH_STUDY_RATE_ANSWERS", 50.0)
        self.new = Bucket(per_min / 60.0, max(per_min, 1.0))
        self.answers_address = Bucket(per_s, max(4 * per_s, 1.0))
        per_p = _env("BENCH_STUDY_RATE_PARTICIPANT", 4.0)
        self.answers_participant = Bucket(per_p, max(2 * per_p, 1.0))
        self.requests_address = Bucket(max(4 * per_s, 20.0), max(8 * per_s, 40.0))
