"""Reading a hospital's booking policy, and the no-show bar derived from appointments (R29)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nethospital.accounts.models import Patient
from nethospital.core import clock
from nethospital.scheduling.choices import AppointmentStatus
from nethospital.scheduling.models import DEFAULT_POLICY, Appointment, BookingPolicy


def policy_for(hospital_id: int) -> BookingPolicy:
    return BookingPolicy.objects.filter(hospital_id=hospital_id).first() or DEFAULT_POLICY


@dataclass(frozen=True)
class NoShowBar:
    count: int
    until: dt.date


def no_show_bar(patient: Patient | int, policy: BookingPolicy) -> NoShowBar | None:
    """The bar in force today, if ``limit`` no-shows fall within any ``window`` ending inside the last
    ``bar_days``: the bar runs ``bar_days`` from the no-show that reached the limit. Derived from
    appointments, so it needs no stored state and no clean-up."""
    today = clock.today()
    earliest = today - dt.timedelta(days=policy.no_show_bar_days + policy.no_show_window_days)
    days = list(
        Appointment.objects.filter(patient=patient, status=AppointmentStatus.NO_SHOW, day__gte=earliest)
        .order_by("day")
        .values_list("day", flat=True)
    )
    limit = policy.no_show_limit
    bar: NoShowBar | None = None
    for index in range(limit - 1, len(days)):
        first, reached = days[index - limit + 1], days[index]
        if (reached - first).days < policy.no_show_window_days:
            until = reached + dt.timedelta(days=policy.no_show_bar_days)
            if until > today:
                count = sum(1 for d in days if reached - dt.timedelta(days=policy.no_show_window_days) < d <= reached)
                bar = NoShowBar(count=count, until=until)
    return bar
