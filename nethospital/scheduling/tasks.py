"""Background work of scheduling, run by ``nethospital worker`` (or once by ``nethospital tick``)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from nethospital.scheduling import actions


def run_sweep() -> dict[str, Any]:
    """Everything time-driven: new slots, expired waitlist offers, reminders, missed appointments."""
    return {
        "slots_created": actions.extend_slot_horizon(),
        "offers_expired": actions.expire_waitlist_offers(),
        "reminders_sent": actions.send_due_reminders(),
        "no_shows_marked": actions.mark_missed_appointments(),
    }


@task()
def scheduling_sweep() -> dict[str, Any]:
    return run_sweep()
