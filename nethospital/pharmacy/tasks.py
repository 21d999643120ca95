"""Background work of the pharmacy, run by ``nethospital worker`` (or once by ``nethospital tick``)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from nethospital.pharmacy import actions


def run_sweep() -> dict[str, Any]:
    """Everything time-driven: orders not paid online in time are cancelled."""
    return {"unpaid_orders_expired": actions.expire_unpaid_orders()}


@task()
def expire_unpaid_orders() -> int:
    """Cancel the orders whose online payment did not come in time; safe to run anywhere, any number of times."""
    return actions.expire_unpaid_orders()
