"""``nethospital serve``: migrate, seed the demo on first run, then serve HTTP and websockets with uvicorn.

This is how Net Hospital runs, on a laptop (``make run``) and in production alike: uvicorn is a
production ASGI server (Django's ``runserver`` is not, and does not serve websockets without
Daphne). Options fall back to the environment, then to the embedded defaults:

    --host     NETHOSPITAL_HOST     127.0.0.1
    --port     NETHOSPITAL_PORT     8000
    --workers  NETHOSPITAL_WORKERS  1   (more than one needs REDIS_URL so that websockets reach
                                         every process through the channel layer)
    --concurrent-requests  NETHOSPITAL_CONCURRENT_REQUESTS  DB_POOL_MAX_SIZE (8)
               HTTP requests each process computes at once; the others wait in its event loop
               (core.middleware.ConcurrentRequestLimit), none is refused. 0: no limit.
    --backlog  NETHOSPITAL_BACKLOG  2048  connections the kernel queues before they are accepted
    --limit-concurrency  NETHOSPITAL_LIMIT_CONCURRENCY  none
               uvicorn's load shedding: above this many connections and tasks per process it answers
               503 at once. Off by default: a booking rush should queue, not fail.

uvicorn runs with httptools and uvloop when they are installed (uvicorn[standard]), else h11 and asyncio.

Client addresses come from X-Forwarded-For only when NETHOSPITAL_TRUST_X_FORWARDED_FOR is on
(from the proxies uvicorn trusts: FORWARDED_ALLOW_IPS, default 127.0.0.1).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

# A factory, called in each worker process: the project's ASGI application behind the request limit.
ASGI_APPLICATION_FACTORY = "nethospital.core.middleware:served_application"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise CommandError(f"{name} must be a whole number, not {value!r}") from None


class Command(BaseCommand):
    help = (
        "Apply migrations, seed the demo data when the database has no users yet (not in production), "
        "and serve the site (HTTP and websockets) with uvicorn."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="address to bind (NETHOSPITAL_HOST, default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=None, help="port (NETHOSPITAL_PORT, default 8000)")
        parser.add_argument(
            "--workers", type=int, default=None, help="server processes (NETHOSPITAL_WORKERS, default 1)"
        )
        parser.add_argument(
            "--concurrent-requests",
            type=int,
            default=None,
            help="HTTP requests each process computes at once, the others wait (NETHOSPITAL_CONCURRENT_REQUESTS, "
            "default DB_POOL_MAX_SIZE; 0: no limit)",
        )
        parser.add_argument(
            "--backlog", type=int, default=None, help="pending connections (NETHOSPITAL_BACKLOG, default 2048)"
        )
        parser.add_argument(
            "--limit-concurrency",
            type=int,
            default=None,
            help="answer 503 above this many connections and tasks per process (NETHOSPITAL_LIMIT_CONCURRENCY, "
            "default: never)",
        )
        parser.add_argument("--no-demo", action="store_true", help="do not seed the demo data, even on first run")
        parser.add_argument("--no-migrate", action="store_true", help="do not apply migrations before serving")
        parser.add_argument(
            "--no-tick", action="store_true", help="do not run the time-driven work (reminders, expiry) every minute"
        )
        parser.add_argument(
            "--access-log", action="store_true", help="log every request (paths can carry search words)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"] or os.environ.get("NETHOSPITAL_HOST", "").strip() or "127.0.0.1"
        port = options["port"] if options["port"] is not None else _env_int("NETHOSPITAL_PORT", 8000)
        workers = options["workers"] if options["workers"] is not None else _env_int("NETHOSPITAL_WORKERS", 1)
        if not 0 < port < 65536:
            raise CommandError(f"port {port} is out of range")
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        backlog = options["backlog"] if options["backlog"] is not None else _env_int("NETHOSPITAL_BACKLOG", 2048)
        limit_concurrency = (
            options["limit_concurrency"]
            if options["limit_concurrency"] is not None
            else _env_int("NETHOSPITAL_LIMIT_CONCURRENCY", 0)
        )
        if backlog < 1 or limit_concurrency < 0:
            raise CommandError("--backlog must be at least 1 and --limit-concurrency at least 0")
        concurrent_requests = options["concurrent_requests"]
        if concurrent_requests is not None:
            if concurrent_requests < 0:
                raise CommandError("--concurrent-requests must be at least 0")
            # The worker processes read it from their settings, and so from the environment they inherit.
            os.environ["NETHOSPITAL_CONCURRENT_REQUESTS"] = str(concurrent_requests)
            settings.NETHOSPITAL_CONCURRENT_REQUESTS = concurrent_requests
        concurrent_requests = int(getattr(settings, "NETHOSPITAL_CONCURRENT_REQUESTS", 0))

        if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            # The embedded default keeps its database under NETHOSPITAL_VAR_DIR (./var).
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=max(0, options["verbosity"] - 1))
        if not options["no_demo"]:
            self.seed_demo_on_first_run()
        if workers > 1 and not getattr(settings, "REDIS_URL", ""):
            self.stderr.write(
                self.style.WARNING(
                    "Several workers with the in-memory channel layer: live events reach only the process "
                    "that sent them. Set REDIS_URL."
                )
            )

        # Forked or spawned server processes must not share this process's database connections.
        connections.close_all()
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        at_once = f"{concurrent_requests} requests at once each" if concurrent_requests else "no request limit"
        pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
        if isinstance(pool, dict):
            at_once += f", database pool of {pool['min_size']}-{pool['max_size']} connections each"
        self.stdout.write(
            f"Net Hospital: http://{host}:{port}/ (uvicorn, {workers} worker(s), {at_once}, {http}, {loop}; "
            "Ctrl-C stops)"
        )
        self.stdout.flush()

        import uvicorn

        if not options["no_tick"] and settings.TASKS["default"]["BACKEND"].endswith("ImmediateBackend"):
            # Embedded mode has no worker process: this process runs the time-driven work itself.
            from nethospital.core import periodic

            periodic.start()

        trust_forwarded = bool(getattr(settings, "TRUST_X_FORWARDED_FOR", False))
        uvicorn.run(
            ASGI_APPLICATION_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http=http,
            loop=loop,
            backlog=backlog,
            limit_concurrency=limit_concurrency or None,
            lifespan="off",  # Django's ASGI handler does not implement the lifespan protocol
            proxy_headers=trust_forwarded,
            log_level="info" if options["verbosity"] >= 1 else "warning",
            # Off by default: query strings can carry health words (symptom search), R23.
            access_log=options["access_log"],
        )

    def seed_demo_on_first_run(self) -> None:
        if getattr(settings, "IS_PRODUCTION", False):
            return
        if "demo" not in get_commands():
            self.stdout.write("No 'demo' command in this build: starting without demo data.")
            return
        from django.contrib.auth import get_user_model

        if get_user_model().objects.exists():
            self.stdout.write(
                "Existing data found: not seeding the demo ('nethospital demo' seeds it and prints the logins)."
            )
            return
        self.stdout.write("First run: seeding the demo data.")
        # ``demo`` prints the demo logins itself.
        call_command("demo")
