"""Demo schedules: every verified demo doctor gets 2–4 recurring clinic sessions (in person, video,
text; morning or afternoon; 20–300 CNY; 1–3 patients per 15- or 20-minute slot), created through
``actions.create_session`` by an admin of the doctor's hospital, and the city hospital gets a
booking policy. Idempotent: doctors who already have sessions are skipped."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import IO, NamedTuple

from django.db.models import Q

from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.core import clock
from nethospital.directory.choices import HospitalTier, OrganizationKind, Profession, VerificationStatus
from nethospital.directory.models import Organization, Practitioner
from nethospital.scheduling import actions
from nethospital.scheduling.choices import Modality, Period
from nethospital.scheduling.models import BookingPolicy, ScheduleSession


class SessionPlan(NamedTuple):
    weekday: int
    period: str
    start: dt.time
    end: dt.time
    slot_minutes: int
    capacity: int
    modality: str
    fee: Decimal


MORNING = (Period.MORNING.value, dt.time(8, 30), dt.time(11, 30))
AFTERNOON = (Period.AFTERNOON.value, dt.time(14, 0), dt.time(16, 30))

# Four plans, chosen by the doctor's id, so neighbouring doctors do not share a weekday.
PLANS: list[list[tuple[int, tuple[str, dt.time, dt.time], int, int, str, int]]] = [
    # (weekday offset, period, slot minutes, capacity, modality, fee)
    [(0, MORNING, 15, 2, Modality.IN_PERSON, 50), (2, AFTERNOON, 20, 1, Modality.VIDEO, 120)],
    [
        (1, MORNING, 15, 3, Modality.IN_PERSON, 30),
        (3, AFTERNOON, 20, 1, Modality.VIDEO, 200),
        (4, MORNING, 15, 2, Modality.TEXT, 20),
    ],
    [
        (0, AFTERNOON, 20, 1, Modality.IN_PERSON, 300),
        (2, MORNING, 15, 2, Modality.TEXT, 40),
        (3, MORNING, 20, 1, Modality.VIDEO, 150),
        (5, MORNING, 15, 3, Modality.IN_PERSON, 80),
    ],
    [(1, AFTERNOON, 15, 2, Modality.VIDEO, 60), (4, AFTERNOON, 20, 3, Modality.IN_PERSON, 25)],
]


def plan_for(practitioner: Practitioner) -> list[SessionPlan]:
    rows = PLANS[practitioner.pk % len(PLANS)]
    shift = practitioner.pk % 5
    return [
        SessionPlan((offset + shift) % 6, period, start, end, minutes, capacity, str(modality), Decimal(fee))
        for offset, (period, start, end), minutes, capacity, modality, fee in rows
    ]


def _admin_for(practitioner: Practitioner) -> User | None:
    """An admin of the doctor's hospital, trusted as if they had passed MFA (a set-up script)."""
    hospital_id = practitioner.primary_institution_id
    admin = (
        User.objects.filter(
            role_grants__role=Role.HOSPITAL_ADMIN,
            role_grants__organization_id=hospital_id,
            role_grants__revoked_at__isnull=True,
            is_active=True,
        )
        .order_by("pk")
        .first()
    )
    admin = admin or User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if admin is not None:
        admin.is_mfa_verified = True
    return admin


def _city_hospital() -> Organization | None:
    try:
        from nethospital.demo.data import ORGANISATIONS

        name = next(o.name_zh for o in ORGANISATIONS if o.key == "city")
        found = Organization.objects.filter(kind=OrganizationKind.HOSPITAL, name_zh=name).first()
        if found is not None:
            return found
    except (ImportError, StopIteration):
        pass
    return Organization.objects.filter(kind=OrganizationKind.HOSPITAL, tier=HospitalTier.TIER_3).order_by("pk").first()


def _online_hospital(practitioner: Practitioner) -> int | None:
    """Video and text visits run in the internet hospital attached to the doctor's hospital (R24)."""
    online = (
        Organization.objects.filter(
            kind=OrganizationKind.INTERNET_HOSPITAL, attached_to_id=practitioner.primary_institution_id
        )
        .order_by("pk")
        .first()
    )
    return online.pk if online else None


def seed_schedules(stdout: IO[str] | None = None) -> int:
    """Create the demo sessions; returns the number of sessions created."""

    def say(text: str) -> None:
        if stdout is not None:
            stdout.write(text + "\n")

    city = _city_hospital()
    if city is not None:
        _, made = BookingPolicy.objects.get_or_create(
            hospital=city,
            defaults={"release_time": dt.time(8, 0), "release_days_ahead": 7, "max_active_bookings": 5},
        )
        if made:
            say(f"Booking policy for {city.name_zh}: slots released at 08:00, 7 days ahead.")
    doctors = (
        Practitioner.objects.filter(profession=Profession.PHYSICIAN, verification_status=VerificationStatus.VERIFIED)
        .exclude(Q(sessions__isnull=False))
        .select_related("primary_institution", "user")
        .order_by("pk")
    )
    created = 0
    for practitioner in doctors:
        admin = _admin_for(practitioner)
        if admin is None:
            say(f"No admin for {practitioner.legal_name}'s hospital: no sessions.")
            continue
        online = _online_hospital(practitioner)
        for plan in plan_for(practitioner):
            hospital_id = online if plan.modality != Modality.IN_PERSON and online else None
            actions.create_session(
                admin,
                practitioner.pk,
                hospital_id=hospital_id,
                weekday=plan.weekday,
                period=plan.period,
                start_time=plan.start,
                end_time=plan.end,
                slot_minutes=plan.slot_minutes,
                capacity=plan.capacity,
                modality=plan.modality,
                fee=plan.fee,
                valid_from=clock.today(),
            )
            created += 1
        say(f"Schedule for {practitioner.legal_name}: {len(plan_for(practitioner))} weekly sessions.")
    say(f"Demo schedules: {created} sessions created ({ScheduleSession.objects.count()} in all).")
    return created
