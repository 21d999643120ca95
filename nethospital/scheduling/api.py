"""Scheduling API: find a doctor, slots, book / cancel / reschedule, waitlist, my appointments,
the doctor's day, sessions and closures, notifications. Booking needs an ``Idempotency-Key``
header and is rate limited per account and per address (R30)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.security import django_auth

from nethospital.accounts.access import authenticated_user, patients_acted_for
from nethospital.core import clock, ratelimit
from nethospital.core.errors import NOT_FOUND, DomainError, ensure
from nethospital.core.middleware import client_address
from nethospital.core.models import Notification
from nethospital.directory.rules import bookable_practitioners
from nethospital.scheduling import access, actions, errors, ics, search
from nethospital.scheduling.choices import Modality
from nethospital.scheduling.models import Appointment, Slot, WaitlistEntry
from nethospital.scheduling.policy import no_show_bar, policy_for

router = Router(tags=["scheduling"])


class DoctorOut(Schema):
    id: int
    name: str
    title: str
    title_display: str
    hospital_id: int
    hospital: str
    hospital_tier: int | None
    city: str
    department: str | None
    specialties: list[str]
    practice_years: int
    next_free: dt.datetime | None


class SlotOut(Schema):
    id: int
    practitioner_id: int
    hospital_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    modality: str
    fee: Decimal
    free_places: int
    release_at: dt.datetime
    is_released: bool


class DoctorDetailOut(DoctorOut):
    verified: bool
    fees: dict[str, Decimal]
    next_free_slots: dict[str, list[SlotOut]]
    rating: float | None


class SearchIn(Schema):
    text: str = Field("", max_length=50)
    hospital_id: int | None = None
    department: str = Field("", max_length=40)
    city: str = Field("", max_length=40)
    title: str = Field("", max_length=40)
    specialty: str = Field("", max_length=40)
    modality: Modality | None = None
    free_within_days: int | None = Field(None, ge=0, le=60)
    order: str = Field("relevance", pattern="^(relevance|next_free|title)$")
    limit: int = Field(20, ge=1, le=100)


class SlotsIn(Schema):
    start: dt.date | None = Field(None, alias="from")
    end: dt.date | None = Field(None, alias="to")
    modality: Modality | None = None


class BookIn(Schema):
    slot_id: int
    patient_id: int


class AppointmentOut(Schema):
    id: int
    status: str
    patient_id: int
    patient_name: str
    practitioner_id: int
    doctor_name: str
    hospital: str
    slot: SlotOut
    booked_at: dt.datetime
    cancelled_at: dt.datetime | None
    cancel_reason: str
    rescheduled_from_id: int | None


class WaitlistOut(Schema):
    id: int
    practitioner_id: int
    day: dt.date
    patient_id: int
    status: str
    offered_slot_id: int | None
    offer_expires_at: dt.datetime | None


class BarOut(Schema):
    patient_id: int
    no_shows: int
    barred_until: dt.date


class MineOut(Schema):
    appointments: list[AppointmentOut]
    waitlist: list[WaitlistOut]
    bars: list[BarOut]


class CancelIn(Schema):
    reason: str = Field("", max_length=200)


class RescheduleIn(Schema):
    slot_id: int


class WaitlistIn(Schema):
    practitioner_id: int
    day: dt.date
    patient_id: int


class MarkIn(Schema):
    status: str = Field(..., max_length=20)


class SessionIn(Schema):
    practitioner_id: int
    hospital_id: int | None = None
    weekday: int | None = Field(None, ge=0, le=6)
    on_date: dt.date | None = None
    period: str = Field(..., pattern="^(morning|afternoon|evening)$")
    start_time: dt.time
    end_time: dt.time
    slot_minutes: int = Field(15, ge=5, le=240)
    capacity: int = Field(1, ge=1, le=200)
    modality: Modality
    fee: Decimal = Field(Decimal("0"), ge=0, le=100000, max_digits=8, decimal_places=2)
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None


class SessionOut(Schema):
    id: int
    practitioner_id: int
    hospital_id: int
    slots: int


class ClosureIn(Schema):
    hospital_id: int
    practitioner_id: int | None = None
    first_day: dt.date
    last_day: dt.date
    reason: str = Field(..., max_length=200)


class ClosureOut(Schema):
    id: int
    cancelled_appointments: int  # cancelled by this closure; each patient's side is told
    ended_waitlist_entries: int


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None


def slot_out(slot: Slot) -> SlotOut:
    return SlotOut(
        id=slot.pk,
        practitioner_id=slot.practitioner_id,
        hospital_id=slot.hospital_id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        modality=slot.modality,
        fee=slot.fee,
        free_places=slot.free_places,
        release_at=slot.release_at,
        is_released=slot.release_at <= clock.now(),
    )


def doctor_out(hit: search.DoctorHit) -> DoctorOut:
    p = hit.practitioner
    return DoctorOut(
        id=p.pk,
        name=p.legal_name,
        title=p.title,
        title_display=str(p.get_title_display()),
        hospital_id=p.primary_institution_id,
        hospital=str(p.primary_institution),
        hospital_tier=p.primary_institution.tier,
        city=p.primary_institution.city,
        department=str(p.department) if p.department else None,
        specialties=[str(s) for s in p.specialties.all()],
        practice_years=p.practice_years_on(clock.today()),
        next_free=hit.next_free,
    )


def appointment_out(a: Appointment) -> AppointmentOut:
    return AppointmentOut(
        id=a.pk,
        status=a.status,
        patient_id=a.patient_id,
        patient_name=a.patient.legal_name,
        practitioner_id=a.practitioner_id,
        doctor_name=a.practitioner.legal_name,
        hospital=str(a.hospital),
        slot=slot_out(a.slot),
        booked_at=a.booked_at,
        cancelled_at=a.cancelled_at,
        cancel_reason=a.cancel_reason,
        rescheduled_from_id=a.rescheduled_from_id,
    )


def waitlist_out(e: WaitlistEntry) -> WaitlistOut:
    return WaitlistOut(
        id=e.pk,
        practitioner_id=e.practitioner_id,
        day=e.day,
        patient_id=e.patient_id,
        status=e.status,
        offered_slot_id=e.offered_slot_id,
        offer_expires_at=e.offer_expires_at,
    )


def _bookable_doctor(doctor_id: int):  # type: ignore[no-untyped-def]
    doctor = (
        bookable_practitioners()
        .filter(pk=doctor_id)
        .select_related("primary_institution", "department")
        .prefetch_related("specialties")
        .first()
    )
    ensure(doctor is not None, NOT_FOUND)
    return doctor


def check_booking_rate(request: HttpRequest) -> None:
    user = authenticated_user(request)
    for scope, identity, limit in (
        ("book-account", str(user.pk), settings.NETHOSPITAL_BOOKING_RATE_PER_ACCOUNT),
        ("book-address", client_address(request) or "unknown", settings.NETHOSPITAL_BOOKING_RATE_PER_ADDRESS),
    ):
        retry_after = ratelimit.hit(scope, identity, limit=limit, window_seconds=60)
        if retry_after is not None:
            raise DomainError(errors.RATE_LIMITED, retry_after=retry_after)


# --- public: search, doctor, slots --------------------------------------------------------------
@router.get("/doctors", response=list[DoctorOut], summary="Find a doctor (objective ordering, no paid placement)")
def find_doctors(request: HttpRequest, filters: Query[SearchIn]) -> list[DoctorOut]:
    query = search.SearchQuery(
        text=filters.text,
        hospital_id=filters.hospital_id,
        department_code=filters.department,
        city=filters.city,
        title=filters.title,
        specialty=filters.specialty,
        modality=filters.modality.value if filters.modality else "",
        free_within_days=filters.free_within_days,
        order=filters.order,
    )
    return [doctor_out(hit) for hit in search.search_doctors(query, limit=filters.limit)]


@router.get("/doctors/{doctor_id}", response=DoctorDetailOut)
def doctor_detail(request: HttpRequest, doctor_id: int) -> DoctorDetailOut:
    doctor = _bookable_doctor(doctor_id)
    upcoming = search.next_free_by_modality(doctor)
    fees = {modality: slots[0].fee for modality, slots in upcoming.items() if slots}
    first = min((s[0].starts_at for s in upcoming.values() if s), default=None)
    base = doctor_out(search.DoctorHit(doctor, 0, first))
    return DoctorDetailOut(
        **base.dict(),
        verified=True,
        fees=fees,
        next_free_slots={m: [slot_out(s) for s in slots] for m, slots in upcoming.items()},
        rating=float(doctor.rating_average) if doctor.rating_count and doctor.rating_average is not None else None,
    )


@router.get("/doctors/{doctor_id}/slots", response=list[SlotOut])
def doctor_slots(request: HttpRequest, doctor_id: int, filters: Query[SlotsIn]) -> list[SlotOut]:
    doctor = _bookable_doctor(doctor_id)
    start = filters.start or clock.today()
    end = filters.end or start + dt.timedelta(days=14)
    ensure(start <= end <= start + dt.timedelta(days=31), errors.DATE_RANGE_INVALID, field="to")
    slots = Slot.objects.filter(practitioner=doctor, day__gte=start, day__lte=end, starts_at__gt=clock.now())
    if filters.modality:
        slots = slots.filter(modality=filters.modality.value)
    return [slot_out(s) for s in slots.order_by("starts_at")[:500]]


# --- patients: book, cancel, reschedule, waitlist, mine -------------------------------------------
@router.post("/appointments", response={200: AppointmentOut, 201: AppointmentOut}, auth=django_auth)
def book(request: HttpRequest, payload: BookIn, idempotency_key: str = Header(None, alias="Idempotency-Key")) -> Status:
    """Book a slot. Retrying with the same Idempotency-Key returns the same appointment (200)."""
    check_booking_rate(request)
    booking = actions.book_appointment(
        authenticated_user(request), payload.slot_id, patient_id=payload.patient_id, idempotency_key=idempotency_key
    )
    appointment = Appointment.objects.select_related("slot", "patient", "practitioner", "hospital").get(
        pk=booking.appointment.pk
    )
    return Status(201 if booking.created else 200, appointment_out(appointment))


@router.get("/appointments/mine", response=MineOut, auth=django_auth)
def my_appointments(request: HttpRequest) -> MineOut:
    user = authenticated_user(request)
    appointments = (
        access.appointments_visible_to(user)
        .select_related("slot", "patient", "practitioner", "hospital")
        .order_by("-slot__starts_at")[:200]
    )
    patients = patients_acted_for(user)
    waitlist = WaitlistEntry.objects.filter(patient__in=patients).order_by("-joined_at")[:100]
    bars = []
    for patient in patients:
        bar = no_show_bar(patient, policy_for_patient(patient))
        if bar:
            bars.append(BarOut(patient_id=patient.pk, no_shows=bar.count, barred_until=bar.until))
    return MineOut(
        appointments=[appointment_out(a) for a in appointments],
        waitlist=[waitlist_out(e) for e in waitlist],
        bars=bars,
    )


def policy_for_patient(patient):  # type: ignore[no-untyped-def]
    """The bar shown in "my appointments" uses the policy of the hospital of the patient's latest
    no-show (bars are per hospital policy, R29)."""
    latest = Appointment.objects.filter(patient=patient, status="no_show").order_by("-day").first()
    return policy_for(latest.hospital_id) if latest else policy_for(0)


@router.post("/appointments/{appointment_id}/cancel", response=AppointmentOut, auth=django_auth)
def cancel(request: HttpRequest, appointment_id: int, payload: CancelIn) -> AppointmentOut:
    appointment = actions.cancel_appointment(authenticated_user(request), appointment_id, reason=payload.reason)
    return appointment_out(
        Appointment.objects.select_related("slot", "patient", "practitioner", "hospital").get(pk=appointment.pk)
    )


@router.post(
    "/appointments/{appointment_id}/reschedule", response={200: AppointmentOut, 201: AppointmentOut}, auth=django_auth
)
def reschedule(
    request: HttpRequest,
    appointment_id: int,
    payload: RescheduleIn,
    idempotency_key: str = Header(None, alias="Idempotency-Key"),
) -> Status:
    check_booking_rate(request)
    booking = actions.reschedule_appointment(
        authenticated_user(request), appointment_id, payload.slot_id, idempotency_key=idempotency_key
    )
    appointment = Appointment.objects.select_related("slot", "patient", "practitioner", "hospital").get(
        pk=booking.appointment.pk
    )
    return Status(201 if booking.created else 200, appointment_out(appointment))


@router.get("/appointments/{appointment_id}/calendar.ics", auth=django_auth, response={200: None})
def appointment_calendar(request: HttpRequest, appointment_id: int) -> HttpResponse:
    user = authenticated_user(request)
    appointment = access.access_appointment(user, appointment_id)
    for_doctor = appointment.practitioner.user_id == user.pk
    response = HttpResponse(
        ics.appointment_ics(appointment, for_doctor=for_doctor), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    return response


@router.post("/waitlist", response={201: WaitlistOut}, auth=django_auth)
def join_waitlist(request: HttpRequest, payload: WaitlistIn) -> Status:
    entry = actions.join_waitlist(
        authenticated_user(request), payload.practitioner_id, payload.day, patient_id=payload.patient_id
    )
    return Status(201, waitlist_out(entry))


@router.post("/waitlist/{entry_id}/accept", response={200: AppointmentOut, 201: AppointmentOut}, auth=django_auth)
def accept_offer(
    request: HttpRequest, entry_id: int, idempotency_key: str = Header(None, alias="Idempotency-Key")
) -> Status:
    booking = actions.accept_waitlist_offer(authenticated_user(request), entry_id, idempotency_key=idempotency_key)
    appointment = Appointment.objects.select_related("slot", "patient", "practitioner", "hospital").get(
        pk=booking.appointment.pk
    )
    return Status(201 if booking.created else 200, appointment_out(appointment))


@router.delete("/waitlist/{entry_id}", response={204: None}, auth=django_auth)
def leave_waitlist(request: HttpRequest, entry_id: int) -> Status:
    actions.leave_waitlist(authenticated_user(request), entry_id)
    return Status(204, None)


# --- doctors and admins -----------------------------------------------------------------------------
@router.get("/doctor/day", response=list[AppointmentOut], auth=django_auth, tags=["doctor"])
def doctor_day(request: HttpRequest, day: dt.date | None = None) -> list[AppointmentOut]:
    from nethospital.scheduling.views_support import doctor_day_appointments

    return [appointment_out(a) for a in doctor_day_appointments(authenticated_user(request), day or clock.today())]


@router.post("/appointments/{appointment_id}/mark", response=AppointmentOut, auth=django_auth, tags=["doctor"])
def mark(request: HttpRequest, appointment_id: int, payload: MarkIn) -> AppointmentOut:
    appointment = actions.mark_appointment(authenticated_user(request), appointment_id, payload.status)
    return appointment_out(
        Appointment.objects.select_related("slot", "patient", "practitioner", "hospital").get(pk=appointment.pk)
    )


@router.post("/schedules/sessions", response={201: SessionOut}, auth=django_auth, tags=["doctor"])
def create_session(request: HttpRequest, payload: SessionIn) -> Status:
    data = payload.dict()
    practitioner_id = data.pop("practitioner_id")
    data["modality"] = payload.modality.value
    session = actions.create_session(authenticated_user(request), practitioner_id, **data)
    return Status(
        201,
        SessionOut(
            id=session.pk,
            practitioner_id=session.practitioner_id,
            hospital_id=session.hospital_id,
            slots=session.slots.count(),
        ),
    )


@router.post("/schedules/closures", response={201: ClosureOut}, auth=django_auth, tags=["doctor"])
def create_closure(request: HttpRequest, payload: ClosureIn) -> Status:
    outcome = actions.close_days(authenticated_user(request), **payload.dict())
    return Status(
        201,
        ClosureOut(
            id=outcome.closure.pk,
            cancelled_appointments=outcome.cancelled_appointments,
            ended_waitlist_entries=outcome.ended_waitlist_entries,
        ),
    )


# --- notifications, and a trivial endpoint for load baselines ----------------------------------
@router.get("/notifications", response=list[NotificationOut], auth=django_auth, tags=["accounts"])
def notifications(request: HttpRequest) -> list[NotificationOut]:
    user = authenticated_user(request)
    return [NotificationOut.from_orm(n) for n in Notification.objects.filter(user=user)[:50]]


@router.post("/notifications/{notification_id}/read", response={204: None}, auth=django_auth, tags=["accounts"])
def read_notification(request: HttpRequest, notification_id: int) -> Status:
    actions.mark_notification_read(authenticated_user(request), notification_id)
    return Status(204, None)


@router.get("/ping", auth=django_auth, tags=["operations"], summary="Trivial authenticated endpoint (load baselines)")
def ping(request: HttpRequest) -> dict[str, object]:
    return {"ok": True, "user": authenticated_user(request).pk}
