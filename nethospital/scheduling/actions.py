"""Every write to schedules and appointments (R4, R5, R29, R30).

Concurrency (CONVENTIONS, Saleor): rows are locked in one order everywhere — patient, then
appointment or waitlist entry, then slot. A slot's places move only by conditional UPDATEs
(``booked_count < capacity``), so no slot is ever over capacity, and the per-day rule is also a
partial unique index. Every booking carries an idempotency key, unique per booking account: a
retried request returns the first appointment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient, User
from nethospital.core import audit, clock
from nethospital.core.errors import NOT_FOUND, PERMISSION_DENIED, DomainError, ensure
from nethospital.core.idempotency import clean_key
from nethospital.core.models import Notification
from nethospital.core.notify import notify
from nethospital.directory.access import may_administer
from nethospital.directory.models import Organization, Practitioner
from nethospital.directory.rules import ensure_can_practise
from nethospital.scheduling import access, errors
from nethospital.scheduling.choices import ACTIVE_STATUSES, AppointmentStatus, SlotStatus, WaitlistStatus
from nethospital.scheduling.models import Appointment, Closure, ScheduleSession, Slot, WaitlistEntry
from nethospital.scheduling.policy import no_show_bar, policy_for
from nethospital.scheduling.slots import generate_slots, horizon


@dataclass(frozen=True)
class Booking:
    appointment: Appointment
    created: bool  # False when an idempotent retry returned the first appointment


@dataclass(frozen=True)
class ClosureOutcome:
    """What closing days did: the closure, the bookings it cancelled (each booker is told once the
    transaction commits), and the waitlist entries it ended."""

    closure: Closure
    cancelled_appointments: int
    ended_waitlist_entries: int


# --- locks, always taken in this order -----------------------------------------------------------
def lock_patient(patient_id: int) -> Patient:
    return Patient.objects.select_for_update().get(pk=patient_id)


def lock_appointment(appointment_id: int) -> Appointment:
    appointment = Appointment.objects.select_for_update().filter(pk=appointment_id).first()
    ensure(appointment is not None, errors.APPOINTMENT_NOT_FOUND)
    assert appointment is not None
    return appointment


def take_place(slot_id: int) -> bool:
    """Take one place in an open slot; False if it is full or closed. Row-locks the slot."""
    return bool(
        Slot.objects.filter(pk=slot_id, status=SlotStatus.OPEN, booked_count__lt=F("capacity")).update(
            booked_count=F("booked_count") + 1
        )
    )


def give_back_place(slot_id: int) -> None:
    Slot.objects.filter(pk=slot_id, booked_count__gt=0).update(booked_count=F("booked_count") - 1)


# --- booking --------------------------------------------------------------------------------------
def _replay(user: User, key: str, *, slot_id: int | None, patient_id: int) -> Booking | None:
    first = Appointment.objects.filter(booked_by=user, idempotency_key=key).select_related("slot").first()
    if first is None:
        return None
    same_request = first.patient_id == patient_id and (slot_id is None or first.slot_id == slot_id)
    ensure(same_request, errors.IDEMPOTENCY_KEY_REUSED)
    return Booking(first, created=False)


def check_patient_may_book(patient: Patient, practitioner: Practitioner, day: dt.date) -> None:
    """The patient-side rules of R29/R30, read under the patient's row lock."""
    policy = policy_for(practitioner.primary_institution_id)
    bar = no_show_bar(patient, policy)
    if bar is not None:
        raise DomainError(errors.BARRED_FOR_NO_SHOWS, count=bar.count, until=bar.until.isoformat())
    active = Appointment.objects.filter(patient=patient, status__in=ACTIVE_STATUSES)
    ensure(
        not active.filter(practitioner=practitioner, day=day).exists(),
        errors.SAME_DOCTOR_SAME_DAY,
    )
    limit = policy.max_active_bookings
    ensure(active.count() < limit, errors.TOO_MANY_ACTIVE, limit=limit)


def check_slot_bookable(slot: Slot) -> None:
    now = clock.now()
    ensure(slot.status == SlotStatus.OPEN, errors.SLOT_CLOSED)
    ensure(slot.starts_at > now, errors.SLOT_IN_PAST)
    if now < slot.release_at:
        from django.utils import formats, timezone

        local = timezone.localtime(slot.release_at)
        raise DomainError(errors.SLOT_NOT_RELEASED, release_at=formats.date_format(local, "Y-m-d H:i"))
    ensure_can_practise(slot.practitioner)  # R5, read afresh on every booking


def _create_appointment(user: User, patient: Patient, slot: Slot, key: str, **extra: object) -> Appointment:
    return Appointment.objects.create(
        slot=slot,
        patient=patient,
        booked_by=user,
        practitioner_id=slot.practitioner_id,
        hospital_id=slot.hospital_id,
        day=slot.day,
        idempotency_key=key,
        booked_at=clock.now(),
        **extra,
    )


def book_appointment(user: User, slot_id: int, *, patient_id: int, idempotency_key: str | None) -> Booking:
    """Book a place in a slot for the user or a family member (R30), once per idempotency key."""
    key = clean_key(idempotency_key, invalid=errors.IDEMPOTENCY_KEY_INVALID)
    replay = _replay(user, key, slot_id=slot_id, patient_id=patient_id)
    if replay is not None:
        return replay
    access.patient_for_booking(user, patient_id)
    # In a rush most requests find the slot already full: say so from one indexed read, without
    # locking the patient or running the patient's rules. A place freed meanwhile is still found by
    # the next request; the answer under the locks below is what decides.
    now = clock.now()
    full = Slot.objects.filter(
        pk=slot_id, status=SlotStatus.OPEN, starts_at__gt=now, release_at__lte=now, booked_count__gte=F("capacity")
    )
    ensure(not full.exists(), errors.SLOT_TAKEN)
    try:
        with transaction.atomic():
            return _book(user, slot_id, patient_id, key)
    except IntegrityError:
        # A concurrent request won the race for the same key or the same doctor and day.
        replay = _replay(user, key, slot_id=slot_id, patient_id=patient_id)
        if replay is not None:
            return replay
        raise DomainError(errors.SAME_DOCTOR_SAME_DAY) from None


def _book(user: User, slot_id: int, patient_id: int, key: str) -> Booking:
    patient = lock_patient(patient_id)
    replay = _replay(user, key, slot_id=slot_id, patient_id=patient_id)  # a twin finished while we waited
    if replay is not None:
        return replay
    slot = Slot.objects.select_related("practitioner__user").filter(pk=slot_id).first()
    ensure(slot is not None, errors.SLOT_NOT_FOUND)
    assert slot is not None
    check_slot_bookable(slot)
    check_patient_may_book(patient, slot.practitioner, slot.day)
    ensure(take_place(slot.pk), errors.SLOT_TAKEN)
    appointment = _create_appointment(user, patient, slot, key)
    audit.record(user, "appointment.book", appointment, patient=patient, hospital=slot.hospital_id)
    transaction.on_commit(lambda: notify_booked(appointment.pk))
    return Booking(appointment, created=True)


# --- cancelling, rescheduling, the waitlist -------------------------------------------------------
def _offer_or_release(slot: Slot) -> WaitlistEntry | None:
    """A place came free: hold it for the first waiting patient, or give it back to the pool."""
    policy = policy_for(slot.hospital_id)
    entry = (
        WaitlistEntry.objects.select_for_update(skip_locked=True)
        .filter(practitioner_id=slot.practitioner_id, day=slot.day, status=WaitlistStatus.WAITING)
        .order_by("joined_at", "pk")
        .first()
    )
    if entry is None or slot.starts_at <= clock.now():
        give_back_place(slot.pk)
        return None
    entry.status = WaitlistStatus.OFFERED
    entry.offered_slot = slot
    entry.offer_expires_at = clock.now() + dt.timedelta(minutes=policy.waitlist_offer_minutes)
    entry.save(update_fields=["status", "offered_slot", "offer_expires_at"])
    audit.record(None, "waitlist.offer", entry, patient=entry.patient_id, hospital=slot.hospital_id)
    transaction.on_commit(lambda: notify_offer(entry.pk))
    return entry


@transaction.atomic
def cancel_appointment(user: User, appointment_id: int, *, reason: str = "") -> Appointment:
    """Until the cut-off (default 2 h before) the patient's side may cancel (R29); the place goes to
    the waitlist first."""
    found = access.access_appointment(user, appointment_id, action="cancel")
    lock_patient(found.patient_id)
    appointment = lock_appointment(appointment_id)
    ensure(appointment.status == AppointmentStatus.BOOKED, errors.NOT_CANCELLABLE)
    slot = Slot.objects.get(pk=appointment.slot_id)
    cutoff = policy_for(appointment.hospital_id).cancel_cutoff_minutes
    ensure(clock.now() <= slot.starts_at - dt.timedelta(minutes=cutoff), errors.CANCEL_CUTOFF_PASSED, minutes=cutoff)
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = clock.now()
    appointment.cancel_reason = (reason or "")[:200]
    appointment.save(update_fields=["status", "cancelled_at", "cancel_reason"])
    _offer_or_release(slot)
    audit.record(user, "appointment.cancel", appointment, patient=appointment.patient_id, hospital=slot.hospital_id)
    return appointment


def reschedule_appointment(
    user: User, appointment_id: int, new_slot_id: int, *, idempotency_key: str | None
) -> Booking:
    """Cancel and book in one transaction: either both happen or neither (same doctor only). A
    retry with the same idempotency key returns the first move and cancels nothing again."""
    key = clean_key(idempotency_key, invalid=errors.IDEMPOTENCY_KEY_INVALID)
    found = access.access_appointment(user, appointment_id, action="cancel")
    replay = _replay_reschedule(user, key, appointment_id, new_slot_id, found.patient_id)
    if replay is not None:
        return replay
    with transaction.atomic():
        lock_patient(found.patient_id)
        # A twin request with the same key may have finished while this one waited for the lock.
        replay = _replay_reschedule(user, key, appointment_id, new_slot_id, found.patient_id)
        if replay is not None:
            return replay
        new_slot = Slot.objects.filter(pk=new_slot_id).first()
        ensure(new_slot is not None, errors.SLOT_NOT_FOUND)
        assert new_slot is not None
        ensure(new_slot.practitioner_id == found.practitioner_id, errors.RESCHEDULE_OTHER_DOCTOR)
        old = cancel_appointment(user, appointment_id, reason="rescheduled")
        booking = _book(user, new_slot_id, old.patient_id, key)
        Appointment.objects.filter(pk=booking.appointment.pk).update(rescheduled_from=old)
        booking.appointment.rescheduled_from = old
        return booking


def _replay_reschedule(user: User, key: str, appointment_id: int, new_slot_id: int, patient_id: int) -> Booking | None:
    replay = _replay(user, key, slot_id=new_slot_id, patient_id=patient_id)
    if replay is not None:
        ensure(replay.appointment.rescheduled_from_id == appointment_id, errors.IDEMPOTENCY_KEY_REUSED)
    return replay


@transaction.atomic
def join_waitlist(user: User, practitioner_id: int, day: dt.date, *, patient_id: int) -> WaitlistEntry:
    patient = access.patient_for_booking(user, patient_id)
    practitioner = Practitioner.objects.filter(pk=practitioner_id).first()
    ensure(practitioner is not None, errors.SLOT_NOT_FOUND)
    assert practitioner is not None
    ensure_can_practise(practitioner)
    ensure(day >= clock.today(), errors.DATE_RANGE_INVALID, field="day")
    lock_patient(patient.pk)
    try:
        with transaction.atomic():
            entry = WaitlistEntry.objects.create(
                practitioner=practitioner,
                hospital_id=practitioner.primary_institution_id,
                day=day,
                patient=patient,
                added_by=user,
                joined_at=clock.now(),
            )
    except IntegrityError:
        raise DomainError(errors.ALREADY_WAITING) from None
    audit.record(user, "waitlist.join", entry, patient=patient, hospital=entry.hospital_id)
    return entry


def accept_waitlist_offer(user: User, entry_id: int, *, idempotency_key: str | None) -> Booking:
    key = clean_key(idempotency_key, invalid=errors.IDEMPOTENCY_KEY_INVALID)
    entry = WaitlistEntry.objects.filter(pk=entry_id).first()
    ensure(entry is not None, errors.OFFER_NOT_FOUND)
    assert entry is not None
    access.patient_for_booking(user, entry.patient_id)
    replay = _replay(user, key, slot_id=entry.offered_slot_id, patient_id=entry.patient_id)
    if replay is not None:
        return replay
    with transaction.atomic():
        patient = lock_patient(entry.patient_id)
        # A twin request with the same key may have finished while this one waited for the lock.
        replay = _replay(user, key, slot_id=entry.offered_slot_id, patient_id=entry.patient_id)
        if replay is not None:
            return replay
        entry = WaitlistEntry.objects.select_for_update().get(pk=entry_id)
        ensure(entry.status == WaitlistStatus.OFFERED and entry.offered_slot_id, errors.OFFER_NOT_FOUND)
        ensure(entry.offer_expires_at and clock.now() < entry.offer_expires_at, errors.OFFER_EXPIRED)
        slot = Slot.objects.select_related("practitioner__user").get(pk=int(entry.offered_slot_id or 0))
        ensure(slot.starts_at > clock.now(), errors.SLOT_IN_PAST)
        ensure_can_practise(slot.practitioner)
        check_patient_may_book(patient, slot.practitioner, slot.day)
        # The place was held for this offer when it came free: no new place is taken.
        appointment = _create_appointment(user, patient, slot, key)
        entry.status = WaitlistStatus.ACCEPTED
        entry.appointment = appointment
        entry.save(update_fields=["status", "appointment"])
        audit.record(user, "waitlist.accept", appointment, patient=patient, hospital=slot.hospital_id)
        transaction.on_commit(lambda: notify_booked(appointment.pk))
        return Booking(appointment, created=True)


@transaction.atomic
def leave_waitlist(user: User, entry_id: int) -> WaitlistEntry:
    entry = WaitlistEntry.objects.filter(pk=entry_id).first()
    ensure(entry is not None, errors.OFFER_NOT_FOUND)
    assert entry is not None
    access.patient_for_booking(user, entry.patient_id)
    lock_patient(entry.patient_id)
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry_id)
    ensure(entry.status in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED), errors.OFFER_NOT_FOUND)
    was_offered = entry.status == WaitlistStatus.OFFERED
    entry.status = WaitlistStatus.LEFT
    entry.save(update_fields=["status"])
    if was_offered and entry.offered_slot_id:
        _offer_or_release(Slot.objects.get(pk=entry.offered_slot_id))
    audit.record(user, "waitlist.leave", entry, patient=entry.patient_id, hospital=entry.hospital_id)
    return entry


def expire_waitlist_offers() -> int:
    """Offers not accepted in time pass to the next waiting patient, or back to the pool."""
    expired = 0
    ids = list(
        WaitlistEntry.objects.filter(status=WaitlistStatus.OFFERED, offer_expires_at__lte=clock.now()).values_list(
            "pk", flat=True
        )
    )
    for entry_id in ids:
        with transaction.atomic():
            entry = (
                WaitlistEntry.objects.select_for_update(skip_locked=True)
                .filter(pk=entry_id, status=WaitlistStatus.OFFERED, offer_expires_at__lte=clock.now())
                .first()
            )
            if entry is None:
                continue
            entry.status = WaitlistStatus.EXPIRED
            entry.save(update_fields=["status"])
            audit.record(None, "waitlist.expire", entry, patient=entry.patient_id, hospital=entry.hospital_id)
            if entry.offered_slot_id:
                _offer_or_release(Slot.objects.get(pk=entry.offered_slot_id))
            expired += 1
    return expired


# --- schedules ------------------------------------------------------------------------------------
@transaction.atomic
def create_session(
    actor: User,
    practitioner_id: int,
    *,
    hospital_id: int | None = None,
    weekday: int | None = None,
    on_date: dt.date | None = None,
    period: str,
    start_time: dt.time,
    end_time: dt.time,
    slot_minutes: int = 15,
    capacity: int = 1,
    modality: str,
    fee: Decimal = Decimal("0"),
    valid_from: dt.date | None = None,
    valid_until: dt.date | None = None,
) -> ScheduleSession:
    """A recurring (weekday) or one-off (date) session; its slots are generated at once."""
    practitioner = Practitioner.objects.select_related("user").filter(pk=practitioner_id).first()
    ensure(practitioner is not None and access.may_manage_schedule(actor, practitioner), PERMISSION_DENIED)
    assert practitioner is not None
    hospital_id = hospital_id or practitioner.primary_institution_id
    hospital = Organization.objects.filter(pk=hospital_id).first()
    ensure(
        hospital is not None
        and (
            hospital.pk == practitioner.primary_institution_id
            or hospital.attached_to_id == practitioner.primary_institution_id
        ),
        PERMISSION_DENIED,
    )
    ensure((weekday is None) != (on_date is None), errors.SESSION_INVALID, field="weekday")
    ensure(weekday is None or 0 <= weekday <= 6, errors.SESSION_INVALID, field="weekday")
    ensure(end_time > start_time, errors.SESSION_INVALID, field="end_time")
    ensure(5 <= slot_minutes <= 240 and 1 <= capacity <= 200, errors.SESSION_INVALID, field="slot_minutes")
    ensure(Decimal("0") <= fee <= Decimal("100000"), errors.SESSION_INVALID, field="fee")
    session = ScheduleSession.objects.create(
        practitioner=practitioner,
        hospital_id=hospital_id,
        department_id=practitioner.department_id,
        weekday=weekday,
        on_date=on_date,
        period=period,
        start_time=start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
        capacity=capacity,
        modality=modality,
        fee=fee,
        valid_from=valid_from or clock.today(),
        valid_until=valid_until,
        created_by=actor,
    )
    generate_slots(session, until=horizon(policy_for(hospital_id)))
    audit.record(actor, "schedule.session.create", session, hospital=hospital_id)
    return session


@transaction.atomic
def close_days(
    actor: User,
    *,
    hospital_id: int,
    practitioner_id: int | None,
    first_day: dt.date,
    last_day: dt.date,
    reason: str,
) -> ClosureOutcome:
    """Leave or a holiday: slots in the range close, their bookings are cancelled by the hospital and
    the patients are told, with a link to rebook. Says exactly what it cancelled, nothing older."""
    ensure(last_day >= first_day, errors.DATE_RANGE_INVALID, field="last_day")
    ensure(bool(reason.strip()), errors.SESSION_INVALID, field="reason")
    practitioner = None
    if practitioner_id is not None:
        practitioner = Practitioner.objects.filter(pk=practitioner_id).first()
        ensure(practitioner is not None and access.may_manage_schedule(actor, practitioner), PERMISSION_DENIED)
    else:
        ensure(actor.is_mfa_verified and may_administer(actor, hospital_id), PERMISSION_DENIED)
    closure = Closure.objects.create(
        hospital_id=hospital_id,
        practitioner=practitioner,
        first_day=first_day,
        last_day=last_day,
        reason=reason.strip()[:200],
        created_by=actor,
    )
    slots = Slot.objects.filter(day__gte=first_day, day__lte=last_day, status=SlotStatus.OPEN)
    slots = slots.filter(practitioner=practitioner) if practitioner else slots.filter(hospital_id=hospital_id)
    slot_ids = list(slots.select_for_update().values_list("pk", flat=True))
    Slot.objects.filter(pk__in=slot_ids).update(status=SlotStatus.CLOSED)
    affected = list(Appointment.objects.select_for_update().filter(slot_id__in=slot_ids, status__in=ACTIVE_STATUSES))
    now = clock.now()
    for appointment in affected:
        appointment.status = AppointmentStatus.CLOSED_BY_HOSPITAL
        appointment.cancelled_at = now
        appointment.cancel_reason = closure.reason
        appointment.save(update_fields=["status", "cancelled_at", "cancel_reason"])
        audit.record(
            actor,
            "appointment.closed_by_hospital",
            appointment,
            patient=appointment.patient_id,
            hospital=appointment.hospital_id,
        )
    waiting = WaitlistEntry.objects.filter(
        day__gte=first_day, day__lte=last_day, status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]
    )
    waiting = waiting.filter(practitioner=practitioner) if practitioner else waiting.filter(hospital_id=hospital_id)
    ended = waiting.update(status=WaitlistStatus.LEFT)
    audit.record(
        actor,
        "schedule.closure.create",
        closure,
        hospital=hospital_id,
        detail={"cancelled": len(affected), "waitlist_ended": ended},
    )
    ids = [a.pk for a in affected]

    def tell_patients() -> None:
        for appointment_id in ids:
            notify_closed(appointment_id)

    transaction.on_commit(tell_patients)
    return ClosureOutcome(closure, cancelled_appointments=len(ids), ended_waitlist_entries=ended)


@transaction.atomic
def mark_appointment(actor: User, appointment_id: int, status: str) -> Appointment:
    """The doctor (or an admin of the hospital) checks a patient in, or marks a no-show once the
    slot has started (R29), or completes the visit."""
    found = access.access_appointment(actor, appointment_id, action="mark")
    ensure(access.may_manage_schedule(actor, found.practitioner), PERMISSION_DENIED)
    appointment = lock_appointment(appointment_id)
    slot = Slot.objects.get(pk=appointment.slot_id)
    now = clock.now()
    # The slot's day is a local date: compare it with today's local date, not the UTC one (which is
    # still yesterday in Shanghai until 08:00).
    allowed = {
        AppointmentStatus.CHECKED_IN: appointment.status == AppointmentStatus.BOOKED and clock.today() >= slot.day,
        AppointmentStatus.NO_SHOW: appointment.status == AppointmentStatus.BOOKED and now >= slot.starts_at,
        AppointmentStatus.COMPLETED: appointment.status in ACTIVE_STATUSES and now >= slot.starts_at,
    }
    ensure(allowed.get(status, False), errors.BAD_MARK, field="status")  # type: ignore[call-overload]
    appointment.status = status
    appointment.marked_by = actor
    if status == AppointmentStatus.CHECKED_IN:
        appointment.checked_in_at = now
    appointment.save(update_fields=["status", "marked_by", "checked_in_at"])
    audit.record(
        actor, f"appointment.{status}", appointment, patient=appointment.patient_id, hospital=appointment.hospital_id
    )
    return appointment


def mark_missed_appointments(grace: dt.timedelta = dt.timedelta(hours=1)) -> int:
    """Bookings still not attended an hour after their slot ended count as no-shows (R29)."""
    ids = list(
        Appointment.objects.filter(status=AppointmentStatus.BOOKED, slot__ends_at__lte=clock.now() - grace).values_list(
            "pk", flat=True
        )[:1000]
    )
    marked = 0
    for appointment_id in ids:
        with transaction.atomic():
            updated = Appointment.objects.filter(pk=appointment_id, status=AppointmentStatus.BOOKED).update(
                status=AppointmentStatus.NO_SHOW
            )
            if updated:
                appointment = Appointment.objects.get(pk=appointment_id)
                audit.record(
                    None,
                    "appointment.no_show",
                    appointment,
                    patient=appointment.patient_id,
                    hospital=appointment.hospital_id,
                    detail={"automatic": True},
                )
                marked += 1
    return marked


def extend_slot_horizon() -> int:
    """Generate slots up to each hospital's horizon (run daily by the worker, or by ``tick``)."""
    created = 0
    for session in ScheduleSession.objects.filter(is_active=True).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=clock.today())
    ):
        created += generate_slots(session, until=horizon(policy_for(session.hospital_id)))
    return created


# --- reading one's notifications -----------------------------------------------------------------
def mark_notification_read(user: User, notification_id: int) -> Notification:
    """Mark one of the user's own notifications read (once: a second call keeps the first time).
    Anyone else's notification looks missing."""
    notification = (
        Notification.objects.filter(pk=notification_id, user_id=user.pk).first() if user.is_authenticated else None
    )
    ensure(notification is not None, NOT_FOUND)
    assert notification is not None
    if notification.read_at is None:
        now = clock.now()
        # Conditional, so that two tabs marking it at once keep one time.
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.refresh_from_db(fields=["read_at"])
    return notification


def mark_all_notifications_read(user: User) -> int:
    """Mark every unread notification of the user read; returns how many were unread."""
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).update(read_at=clock.now())


# --- notifications (after commit) -----------------------------------------------------------------
def _when(appointment: Appointment) -> str:
    from django.utils import formats, timezone

    return formats.date_format(timezone.localtime(appointment.slot.starts_at), "Y-m-d H:i")


def notify_booked(appointment_id: int) -> None:
    a = Appointment.objects.select_related("slot", "practitioner", "patient", "booked_by").get(pk=appointment_id)
    notify(
        a.booked_by,
        "appointment.booked",
        _("Appointment booked: %(doctor)s, %(when)s"),
        _("%(patient)s is booked with %(doctor)s at %(when)s."),
        link=reverse("scheduling:my_appointments"),
        params={"doctor": a.practitioner.legal_name, "when": _when(a), "patient": a.patient.legal_name},
    )


def notify_closed(appointment_id: int) -> None:
    a = Appointment.objects.select_related("slot", "practitioner", "patient", "booked_by").get(pk=appointment_id)
    notify(
        a.booked_by,
        "appointment.closed",
        _("Appointment cancelled by the hospital: %(doctor)s, %(when)s"),
        _("The session of %(doctor)s at %(when)s was closed (%(reason)s). Please book another time."),
        link=reverse("scheduling:doctor", args=[a.practitioner_id]),
        params={"doctor": a.practitioner.legal_name, "when": _when(a), "reason": a.cancel_reason},
    )


def notify_offer(entry_id: int) -> None:
    entry = WaitlistEntry.objects.select_related("offered_slot", "practitioner", "added_by").get(pk=entry_id)
    if entry.offered_slot is None:
        return
    from django.utils import formats, timezone

    notify(
        entry.added_by,
        "waitlist.offer",
        _("A place is free with %(doctor)s"),
        _("A place at %(when)s is held for you until %(until)s. Accept it in My appointments."),
        link=reverse("scheduling:my_appointments"),
        params={
            "doctor": entry.practitioner.legal_name,
            "when": formats.date_format(timezone.localtime(entry.offered_slot.starts_at), "Y-m-d H:i"),
            "until": formats.date_format(timezone.localtime(entry.offer_expires_at), "H:i"),
        },
    )


def send_due_reminders() -> int:
    """Reminders 24 h and 1 h before; each is sent once, whatever the number of workers."""
    now = clock.now()
    sent = 0
    for field, ahead, title in (
        ("reminder_24h_sent_at", dt.timedelta(hours=24), _("Reminder: appointment tomorrow with %(doctor)s")),
        ("reminder_1h_sent_at", dt.timedelta(hours=1), _("Reminder: appointment in one hour with %(doctor)s")),
    ):
        due = Appointment.objects.filter(
            status=AppointmentStatus.BOOKED,
            slot__starts_at__gt=now,
            slot__starts_at__lte=now + ahead,
            **{f"{field}__isnull": True},
        ).values_list("pk", flat=True)
        for appointment_id in list(due[:1000]):
            claimed = Appointment.objects.filter(pk=appointment_id, **{f"{field}__isnull": True}).update(**{field: now})
            if not claimed:
                continue  # another worker sent it
            a = Appointment.objects.select_related("slot", "practitioner", "patient", "booked_by").get(
                pk=appointment_id
            )
            notify(
                a.booked_by,
                f"appointment.{field}",
                title,
                _("%(patient)s is booked with %(doctor)s at %(when)s."),
                link=reverse("scheduling:my_appointments"),
                params={"doctor": a.practitioner.legal_name, "when": _when(a), "patient": a.patient.legal_name},
            )
            sent += 1
    return sent
