"""``nethospital worker``: run background tasks (reminders, timeouts, expiry) from the database queue.

Tasks use Django's tasks API (the django-tasks package). Which backend runs them is a setting
(NETHOSPITAL_TASKS, docs/settings.md):

- ``database`` (the production default): ``enqueue()`` stores the task in the database and one or
  more ``nethospital worker`` processes run it. This command is django-tasks-db's ``db_worker``.
- ``immediate`` (the embedded default of ``nethospital serve``): a task runs in the web process the
  moment it is enqueued, so there is no queue and no worker is needed; this command says so and exits.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

DATABASE_BACKEND = "django_tasks_db.DatabaseBackend"


class Command(BaseCommand):
    help = "Run the background task worker (django-tasks-db's db_worker) for the database task backend."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue-name", default="*", help="queues to process, comma separated; '*' for all")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls of an empty queue")
        parser.add_argument("--batch", action="store_true", help="run the outstanding tasks, then exit")
        parser.add_argument("--max-tasks", type=int, default=None, help="exit after running this many tasks")

    def handle(self, *args: Any, **options: Any) -> None:
        backend = settings.TASKS["default"]["BACKEND"]
        if backend != DATABASE_BACKEND:
            raise CommandError(
                f"The task backend is {backend}: tasks run immediately in the process that enqueues them, "
                "so there is nothing for a worker to do. Set NETHOSPITAL_TASKS=database to queue tasks in "
                "the database and run them here."
            )
        from nethospital.core import periodic

        periodic.start()  # reminders, waitlist expiry, no-shows, slot generation every minute
        call_command(
            "db_worker",
            queue_name=options["queue_name"],
            interval=options["interval"],
            batch=options["batch"],
            max_tasks=options["max_tasks"],
            reload=False,
            verbosity=options["verbosity"],
        )
