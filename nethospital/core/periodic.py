"""A daemon thread that runs ``nethospital tick`` every ``interval`` seconds: reminders, waitlist
expiry, no-shows and slot generation happen on time in the embedded server (``serve``) and in
``worker`` without cron. Each run is safe to repeat and safe to run in several processes at once
(the actions claim rows with conditional updates)."""

from __future__ import annotations

import logging
import threading

from django.core.management import call_command
from django.db import connections

logger = logging.getLogger(__name__)


def _loop(interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            call_command("tick", verbosity=0)
        except Exception:
            logger.exception("periodic tick failed; retrying in %s s", interval)
        finally:
            connections.close_all()


def start(interval: float = 60.0) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=_loop, args=(interval, stop), name="nethospital-tick", daemon=True).start()
    return stop
