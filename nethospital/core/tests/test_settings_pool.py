"""The database settings turn on Django's psycopg connection pool for PostgreSQL, sized from the
environment, and leave SQLite alone. Each case imports the settings module afresh in a subprocess
with the environment it names (nothing connects to a database). Then the request limit that goes
with the pool (NETHOSPITAL_CONCURRENT_REQUESTS): requests wait for a place, none is refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

PRINT_DATABASE = (
    "import json; from nethospital import settings as s; d = s.DATABASES['default']; "
    "print(json.dumps({'engine': d['ENGINE'], 'conn_max_age': d.get('CONN_MAX_AGE'), "
    "'options': d.get('OPTIONS', {}), 'concurrent_requests': s.NETHOSPITAL_CONCURRENT_REQUESTS}))"
)


def settings_with(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DB_", "DATABASE_URL", "NETHOSPITAL_", "DJANGO_SETTINGS_MODULE"))
    }
    return subprocess.run(
        [sys.executable, "-c", PRINT_DATABASE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def database_with(**env: str) -> dict[str, object]:
    result = settings_with(**env)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def test_postgresql_gets_a_pool_sized_from_the_environment() -> None:
    database = database_with(
        DATABASE_URL="postgres://nethospital:secret@db.example.org:5432/nethospital",
        DB_POOL_MIN_SIZE="3",
        DB_POOL_MAX_SIZE="12",
        DB_POOL_TIMEOUT="2.5",
    )
    assert database == {
        "engine": "django.db.backends.postgresql",
        "conn_max_age": 0,
        "options": {"pool": {"min_size": 3, "max_size": 12, "timeout": 2.5}},
        "concurrent_requests": 12,  # by default, as many requests at once as the pool has connections
    }


def test_postgresql_pool_defaults() -> None:
    database = database_with(DATABASE_URL="postgres://nethospital@127.0.0.1:5432/nethospital")
    assert database["options"] == {"pool": {"min_size": 2, "max_size": 8, "timeout": 10.0}}
    assert database["concurrent_requests"] == 8


def test_the_pool_can_be_turned_off_for_persistent_connections() -> None:
    database = database_with(
        DATABASE_URL="postgres://nethospital@127.0.0.1:5432/nethospital", DB_POOL="0", DB_CONN_MAX_AGE="60"
    )
    assert database["options"] == {}
    assert database["conn_max_age"] == 60


def test_persistent_connections_with_the_pool_are_refused() -> None:
    result = settings_with(DATABASE_URL="postgres://nethospital@127.0.0.1:5432/nethospital", DB_CONN_MAX_AGE="60")
    assert result.returncode != 0
    assert "DB_CONN_MAX_AGE must be 0 with the connection pool" in result.stderr


def test_sqlite_has_no_pool() -> None:
    database = database_with()  # no DATABASE_URL: the embedded SQLite file
    assert database["engine"] == "django.db.backends.sqlite3"
    assert "pool" not in database["options"]  # type: ignore[operator]
    assert database["concurrent_requests"] == 8


def test_a_sqlite_url_has_no_pool_either() -> None:
    database = database_with(DATABASE_URL="sqlite:////tmp/nethospital-settings-test.sqlite3")
    assert database["engine"] == "django.db.backends.sqlite3"
    assert database["options"] == {}


# --- NETHOSPITAL_CONCURRENT_REQUESTS: the limit ``nethospital serve`` puts in front of Django -------


def run_limited(limit: int, requests: int, *, failing: frozenset[int] = frozenset()) -> tuple[list[int], int]:
    """``requests`` HTTP requests at once through ConcurrentRequestLimit(limit) in front of an app
    that takes a little while; returns the statuses answered and the most requests computed at once."""
    from nethospital.core.middleware import ConcurrentRequestLimit

    computing = 0
    most = 0

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        nonlocal computing, most
        message = await receive()  # type: ignore[operator]
        assert message["type"] == "http.request"
        computing += 1
        most = max(most, computing)
        try:
            await asyncio.sleep(0.01)
            if scope["path"] in {f"/{i}" for i in failing}:
                raise RuntimeError("the view failed")
        finally:
            computing -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    async def main() -> list[int]:
        limited = ConcurrentRequestLimit(app, limit)

        async def one(index: int) -> int:
            sent: list[dict[str, object]] = []

            async def receive() -> dict[str, object]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, object]) -> None:
                sent.append(message)

            try:
                await limited({"type": "http", "path": f"/{index}"}, receive, send)
            except RuntimeError:
                return 500
            return int(str(sent[0]["status"]))

        # A place that is never given back would leave the others waiting: fail instead of hanging.
        return list(await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(requests))), timeout=20))

    statuses = asyncio.run(main())
    return statuses, most


def test_the_request_limit_queues_and_never_refuses() -> None:
    statuses, most = run_limited(3, 20)
    assert statuses == [200] * 20
    assert most == 3


def test_a_failing_request_gives_its_place_back() -> None:
    statuses, most = run_limited(2, 10, failing=frozenset({0, 1, 2}))
    assert statuses == [500, 500, 500] + [200] * 7  # the places of the failures were given back
    assert most == 2


def test_no_limit_lets_every_request_in() -> None:
    statuses, most = run_limited(0, 10)
    assert statuses == [200] * 10
    assert most == 10
