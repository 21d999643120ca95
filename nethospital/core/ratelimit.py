"""Fixed-window rate limits kept in the cache (Redis in production, so all processes share them)."""

from __future__ import annotations

import time

from django.core.cache import cache


def hit(scope: str, identity: str, *, limit: int, window_seconds: int) -> int | None:
    """Count one request; return None if within ``limit`` per window, else the seconds to wait."""
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
