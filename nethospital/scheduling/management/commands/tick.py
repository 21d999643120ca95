from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


def sweeps() -> Iterator[tuple[str, Callable[[], dict[str, Any]]]]:
    """Every app's ``tasks.run_sweep`` (scheduling, consultations …), found like Django finds admin
    modules, so that no app imports the apps above it (docs/ARCHITECTURE: boundaries)."""
    for config in apps.get_app_configs():
        if not config.name.startswith("nethospital."):
            continue
        try:
            module = import_module(f"{config.name}.tasks")
        except ModuleNotFoundError as missing:
            if missing.name == f"{config.name}.tasks":
                continue
            raise
        run = getattr(module, "run_sweep", None)
        if callable(run):
            yield config.label, run


class Command(BaseCommand):
    help = (
        "Run the time-driven work once: slot generation, waitlist expiry, reminders, no-shows, "
        "lapsed ask-a-doctor requests, unpaid pharmacy orders (cron)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result: dict[str, Any] = {}
        for label, run in sweeps():
            try:
                result.update(run())
            except Exception:  # one app's failure must not stop the others' sweeps
                logger.exception("sweep of %s failed", label)
                result[f"{label}_failed"] = True
        self.stdout.write(", ".join(f"{k}={v}" for k, v in result.items()))
