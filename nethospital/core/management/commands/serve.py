"""``nethospital serve``: migrate, seed the demo on first run, then serve HTTP and websockets with uvicorn.

This is how Net Hospital runs, on a laptop (``make run``) and in production alike: uvicorn is a
production ASGI server (Django's ``runserver`` is not, and does not serve websockets without
Daphne). Options fall back to the environment, then to the embedded defaults:

    --host     NETHOSPITAL_HOST     127.0.0.1
    --port     NETHOSPITAL_PORT     8000
    --workers  NETHOSPITAL_WORKERS  1   (more than one needs REDIS_URL so that websockets reach
                                         every process through the channel layer)

Client addresses come from X-Forwarded-For only when NETHOSPITAL_TRUST_X_FORWARDED_FOR is on
(from the proxies uvicorn trusts: FORWARDED_ALLOW_IPS, default 127.0.0.1).
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

ASGI_APPLICATION = "nethospital.asgi:application"


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
        self.stdout.write(f"Net Hospital: http://{host}:{port}/ (uvicorn, {workers} worker(s); Ctrl-C stops)")
        self.stdout.flush()

        import uvicorn

        if not options["no_tick"] and settings.TASKS["default"]["BACKEND"].endswith("ImmediateBackend"):
            # Embedded mode has no worker process: this process runs the time-driven work itself.
            from nethospital.core import periodic

            periodic.start()

        trust_forwarded = bool(getattr(settings, "TRUST_X_FORWARDED_FOR", False))
        uvicorn.run(
            ASGI_APPLICATION,
            host=host,
            port=port,
            workers=workers,
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
