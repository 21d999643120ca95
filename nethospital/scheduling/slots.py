"""Turning sessions into slots: which days a session runs, and when each slot is released."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from nethospital.core import clock
from nethospital.scheduling.choices import SlotStatus
from nethospital.scheduling.models import BookingPolicy, Closure, ScheduleSession, Slot
from nethospital.scheduling.policy import policy_for


def release_moment(day: dt.date, policy: BookingPolicy) -> dt.datetime:
    """Slots of ``day`` open at ``release_time`` on the day ``release_days_ahead`` before it (local time)."""
    release_day = day - dt.timedelta(days=policy.release_days_ahead)
    return timezone.make_aware(dt.datetime.combine(release_day, policy.release_time))


def session_days(session: ScheduleSession, first: dt.date, last: dt.date) -> list[dt.date]:
    if session.on_date is not None:
        return [session.on_date] if first <= session.on_date <= last else []
    start = max(first, session.valid_from)
    end = min(last, session.valid_until) if session.valid_until else last
    days = []
    day = start + dt.timedelta(days=(session.weekday - start.weekday()) % 7)  # type: ignore[operator]
    while day <= end:
        days.append(day)
        day += dt.timedelta(days=7)
    return days


def closed_days(session: ScheduleSession, first: dt.date, last: dt.date) -> set[dt.date]:
    closures = Closure.objects.filter(
        Q(practitioner=session.practitioner) | Q(practitioner__isnull=True, hospital=session.hospital),
        first_day__lte=last,
        last_day__gte=first,
    )
    days: set[dt.date] = set()
    for closure in closures:
        day = max(first, closure.first_day)
        while day <= min(last, closure.last_day):
            days.add(day)
            day += dt.timedelta(days=1)
    return days


def generate_slots(session: ScheduleSession, *, until: dt.date) -> int:
    """Create the session's slots from today up to ``until``; existing ones are kept (idempotent)."""
    if not session.is_active:
        return 0
    today = clock.today()
    policy = policy_for(session.hospital_id)
    closed = closed_days(session, today, until)
    step = dt.timedelta(minutes=session.slot_minutes)
    new_slots = []
    for day in session_days(session, today, until):
        if day in closed:
            continue
        start = timezone.make_aware(dt.datetime.combine(day, session.start_time))
        end_of_session = timezone.make_aware(dt.datetime.combine(day, session.end_time))
        while start + step <= end_of_session:
            new_slots.append(
                Slot(
                    practitioner_id=session.practitioner_id,
                    hospital_id=session.hospital_id,
                    department_id=session.department_id,
                    session=session,
                    day=day,
                    starts_at=start,
                    ends_at=start + step,
                    modality=session.modality,
                    fee=session.fee,
                    capacity=session.capacity,
                    release_at=release_moment(day, policy),
                    status=SlotStatus.OPEN,
                )
            )
            start += step
    before = Slot.objects.filter(session=session).count()
    Slot.objects.bulk_create(new_slots, ignore_conflicts=True)
    return Slot.objects.filter(session=session).count() - before


def horizon(policy: BookingPolicy) -> dt.date:
    """How far ahead slots exist: one week past the release window, so patients see what is coming."""
    return clock.today() + dt.timedelta(days=policy.release_days_ahead + 7)
