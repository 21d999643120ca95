"""Fixed-window rate limits kept in the cache (Redis in production, so all processes share them).

The counters go through one cache client per process. Django's ``cache`` is a new object in each
request context under ASGI, and a new Redis cache object builds a new connection pool: every
rate-limited request would open a new connection to Redis (seen in the booking rush's profile).
Redis clients share their connection pool safely across threads."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed
from django.dispatch import receiver

_shared: BaseCache | None = None
_lock = threading.Lock()


def counters() -> BaseCache:
    """The process-wide client of the default cache, made on first use."""
    global _shared
    if _shared is None:
        with _lock:
            if _shared is None:
                _shared = caches.create_connection("default")
    return _shared


@receiver(setting_changed)
def _forget_client(*, setting: str, **kwargs: Any) -> None:
    global _shared
    if setting == "CACHES":
        _shared = None


def hit(scope: str, identity: str, *, limit: int, window_seconds: int) -> int | None:
    """Count one request; return None if within ``limit`` per window, else the seconds to wait."""
    cache = counters()
    now = time.time()
    window = int(now // window_seconds)
    key = f"ratelimit:{scope}:{identity}:{window}"
    if cache.add(key, 1, timeout=window_seconds + 5):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window_seconds + 5)
            count = 1
    if count > limit:
        return max(1, int((window + 1) * window_seconds - now))
    return None
