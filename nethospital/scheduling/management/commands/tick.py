from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from nethospital.scheduling.tasks import run_sweep


class Command(BaseCommand):
    help = "Run the time-driven work once: slot generation, waitlist expiry, reminders, no-shows (cron)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = run_sweep()
        self.stdout.write(", ".join(f"{k}={v}" for k, v in result.items()))
