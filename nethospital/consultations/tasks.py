"""Background work of consultations, run by ``nethospital worker`` (or once by ``nethospital tick``)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from nethospital.consultations import actions


def run_sweep() -> dict[str, Any]:
    """Everything time-driven: "ask a doctor" requests not accepted in time lapse (and are refunded)."""
    return {"requests_lapsed": actions.lapse_unaccepted_requests()}


@task()
def lapse_requests() -> int:
    """Lapse the requests whose accept deadline has passed; safe to run anywhere, any number of times."""
    return actions.lapse_unaccepted_requests()
