"""Rate-limit counters: one window per scope and identity, counted across threads, and kept through
one cache client per process. Under ASGI every request runs in its own context, where Django's
``cache`` is a new object with (for Redis) a new connection pool; the counters must not open a new
Redis connection per request."""

from __future__ import annotations

import contextvars
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.core.cache import caches

from nethospital.core import ratelimit


def test_the_limit_holds_across_threads() -> None:
    scope = f"test-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _i: ratelimit.hit(scope, "10.0.0.1", limit=3, window_seconds=60), range(5)))
    assert answers.count(None) == 3
    assert all(isinstance(wait, int) and 1 <= wait <= 60 for wait in answers if wait is not None)
    assert ratelimit.hit(scope, "10.0.0.2", limit=3, window_seconds=60) is None  # another identity


def test_one_client_per_process_while_each_thread_gets_its_own_django_cache() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        clients = list(pool.map(lambda _i: ratelimit.counters(), range(8)))
        fresh = list(pool.map(lambda _i: contextvars.Context().run(lambda: caches["default"]), range(8)))
    assert len({id(client) for client in clients}) == 1
    assert len({id(c) for c in fresh}) > 1  # why: Django's own cache object differs from one context to the next


@pytest.mark.redis
def test_counting_in_many_contexts_keeps_one_redis_connection_pool(settings, redis_url: str) -> None:
    name = f"nh-ratelimit-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "OPTIONS": {"client_name": name},
        }
    }
    scope = f"test-{uuid.uuid4().hex}"

    def request(_index: int) -> int | None:  # each "request" in a new context, as ASGI runs them
        return contextvars.Context().run(ratelimit.hit, scope, "10.0.0.3", limit=30, window_seconds=60)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(request, range(40)))
    assert answers.count(None) == 30
    connections = [c for c in redis.Redis.from_url(redis_url).client_list() if c.get("name") == name]
    # One pool: about one connection per thread using it at once (10), not one per request (40).
    assert 1 <= len(connections) <= 15, len(connections)
