"""Booking rules with an injectable clock (R5, R29, R30): release, cut-off, no-show bar,
waitlist offers, reminders, closures, rescheduling."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Sex
from nethospital.accounts.identity import make_number
from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry, Notification
from nethospital.directory import actions as directory_actions
from nethospital.scheduling import actions
from nethospital.scheduling.choices import AppointmentStatus, WaitlistStatus
from nethospital.scheduling.models import Appointment, BookingPolicy, Slot, WaitlistEntry
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_9AM = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
WEDNESDAY = dt.date(2026, 11, 25)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)


@pytest.fixture
def clinic(city_hospital, internet_hospital):
    with clock.frozen(MONDAY_9AM):
        admin = factories.hospital_admin(city_hospital)
        doctor = factories.doctor(city_hospital, admin=admin)
        actions.create_session(
            admin,
            doctor.pk,
            on_date=WEDNESDAY,
            period="morning",
            start_time=dt.time(9, 0),
            end_time=dt.time(10, 0),
            slot_minutes=15,
            capacity=1,
            modality="in_person",
        )
    return {"hospital": city_hospital, "admin": admin, "doctor": doctor}


def slots(doctor):
    return list(Slot.objects.filter(practitioner=doctor).order_by("starts_at"))


def book(user, slot, *, patient=None, key=None):
    patient_id = patient.pk if patient else factories.patient_of(user).pk
    return actions.book_appointment(
        user, slot.pk, patient_id=patient_id, idempotency_key=key or f"booking-{slot.pk}-{patient_id}"
    )


def test_a_session_becomes_slots_released_at_the_policy_time(clinic):
    made = slots(clinic["doctor"])
    assert [s.starts_at for s in made] == [at(WEDNESDAY, 9, m) for m in (0, 15, 30, 45)]
    assert {s.release_at for s in made} == {at(WEDNESDAY - dt.timedelta(days=7), 8)}


def test_a_slot_cannot_be_booked_before_its_release(clinic, patient_user):
    BookingPolicy.objects.create(hospital=clinic["hospital"], release_days_ahead=1, release_time=dt.time(8, 0))
    Slot.objects.update(release_at=at(WEDNESDAY - dt.timedelta(days=1), 8))
    slot = slots(clinic["doctor"])[0]
    with clock.frozen(MONDAY_9AM), pytest.raises(DomainError) as caught:
        book(patient_user, slot)
    assert caught.value.code == "slot_not_released"
    assert "2026-11-24 08:00" in caught.value.message
    with clock.frozen(at(WEDNESDAY - dt.timedelta(days=1), 8)):
        assert book(patient_user, slot).created is True


def test_booking_the_same_key_twice_returns_the_first_appointment(clinic, patient_user):
    slot = slots(clinic["doctor"])[0]
    with clock.frozen(MONDAY_9AM):
        first = book(patient_user, slot, key="retry-key-0001")
        again = book(patient_user, slot, key="retry-key-0001")
        with pytest.raises(DomainError) as caught:
            book(patient_user, slots(clinic["doctor"])[1], key="retry-key-0001")
    assert (first.created, again.created, again.appointment.pk) == (True, False, first.appointment.pk)
    assert caught.value.code == "idempotency_key_reused"
    assert Slot.objects.get(pk=slot.pk).booked_count == 1
    assert AuditEntry.objects.filter(action="appointment.book").count() == 1


def test_one_booking_per_doctor_per_day_and_the_slot_is_not_overbooked(clinic, patient_user):
    first, second = slots(clinic["doctor"])[:2]
    other = factories.patient_user()
    with clock.frozen(MONDAY_9AM):
        book(patient_user, first)
        for user, slot, code in ((patient_user, second, "same_doctor_same_day"), (other, first, "slot_taken")):
            with pytest.raises(DomainError) as caught:
                book(user, slot)
            assert caught.value.code == code
    assert Appointment.objects.count() == 1


def state(slot):
    return (Appointment.objects.count(), AuditEntry.objects.count(), Slot.objects.get(pk=slot.pk).booked_count)


def test_a_full_slot_is_refused_before_the_patient_is_locked(clinic, patient_user, django_assert_max_num_queries):
    # The rush: most requests find the slot taken. They are answered from one read of the slot,
    # after the idempotency replay and the family check, without the patient's lock and rules.
    first = slots(clinic["doctor"])[0]
    other = factories.patient_user()
    with clock.frozen(MONDAY_9AM):
        book(patient_user, first)
        before = state(first)
        with django_assert_max_num_queries(5) as captured, pytest.raises(DomainError) as caught:
            book(other, first)
    assert caught.value.code == "slot_taken"
    assert not any("FOR UPDATE" in query["sql"] for query in captured.captured_queries)
    assert state(first) == before


def test_booking_only_for_oneself_or_registered_family(clinic, patient_user):
    stranger = factories.patient_of(factories.patient_user())
    child = account_actions.add_family_member(
        patient_user,
        legal_name="张小宝",
        id_number=make_number("330106", dt.date(2020, 1, 2), 8, Sex.MALE),
        birth_date=None,
        sex=None,
        relationship=Relationship.CHILD,
    ).patient
    first, second = slots(clinic["doctor"])[:2]
    with clock.frozen(MONDAY_9AM):
        with pytest.raises(DomainError) as caught:
            book(patient_user, first, patient=stranger)
        assert caught.value.code == "not_family"
        booking = book(patient_user, second, patient=child)
    assert (booking.appointment.patient, booking.appointment.booked_by) == (child, patient_user)
    assert not Appointment.objects.filter(patient=stranger).exists()


def test_at_most_n_active_bookings(clinic, patient_user, city_hospital):
    BookingPolicy.objects.create(hospital=city_hospital, max_active_bookings=2)
    with clock.frozen(MONDAY_9AM):
        doctors = [factories.doctor(city_hospital, admin=clinic["admin"], legal_name=f"医生{i}") for i in range(3)]
        targets = []
        for d in doctors:
            actions.create_session(
                clinic["admin"],
                d.pk,
                on_date=WEDNESDAY,
                period="afternoon",
                start_time=dt.time(14, 0),
                end_time=dt.time(14, 15),
                modality="video",
            )
            targets.append(slots(d)[0])
        book(patient_user, targets[0])
        book(patient_user, targets[1])
        with pytest.raises(DomainError) as caught:
            book(patient_user, targets[2])
    assert caught.value.code == "too_many_active_bookings"
    assert "2" in caught.value.message


def test_a_suspended_doctor_cannot_be_booked(clinic, patient_user):
    with clock.frozen(MONDAY_9AM):
        directory_actions.change_verification(clinic["admin"], clinic["doctor"].pk, "suspended", reason="停诊")
        with pytest.raises(DomainError) as caught:
            book(patient_user, slots(clinic["doctor"])[0])
    assert caught.value.code == "practitioner_suspended"
    assert Appointment.objects.count() == 0


def test_cancellation_closes_two_hours_before_and_frees_the_place(clinic, patient_user):
    first, second = slots(clinic["doctor"])[:2]
    with clock.frozen(MONDAY_9AM):
        early = book(patient_user, first).appointment
    with clock.frozen(at(WEDNESDAY, 7, 0)):  # exactly the cut-off: still allowed
        actions.cancel_appointment(patient_user, early.pk)
        assert Slot.objects.get(pk=first.pk).booked_count == 0
        late = book(patient_user, second).appointment
    with clock.frozen(at(WEDNESDAY, 7, 16)):  # 1 h 59 min before 09:15
        with pytest.raises(DomainError) as caught:
            actions.cancel_appointment(patient_user, late.pk)
    assert caught.value.code == "cancel_cutoff_passed"
    assert Appointment.objects.get(pk=late.pk).status == AppointmentStatus.BOOKED


def test_three_no_shows_in_ninety_days_bar_booking_for_ninety_days(city_hospital, internet_hospital, patient_user):
    start = dt.datetime(2026, 6, 1, 9, 0, tzinfo=SHANGHAI)
    with clock.frozen(start):
        admin = factories.hospital_admin(city_hospital)
        doctor = factories.doctor(city_hospital, admin=admin)
    missed_days = [dt.date(2026, 6, 3), dt.date(2026, 7, 1), dt.date(2026, 8, 5)]
    for day in missed_days:
        with clock.frozen(at(day, 8)):
            actions.create_session(
                admin,
                doctor.pk,
                on_date=day,
                period="morning",
                start_time=dt.time(9, 0),
                end_time=dt.time(9, 15),
                modality="in_person",
            )
            slot = Slot.objects.get(practitioner=doctor, day=day)
            appointment = book(patient_user, slot).appointment
        with clock.frozen(at(day, 11)):
            assert actions.mark_missed_appointments() == 1
        assert Appointment.objects.get(pk=appointment.pk).status == AppointmentStatus.NO_SHOW
    next_day = dt.date(2026, 8, 7)
    with clock.frozen(at(next_day - dt.timedelta(days=1), 9)):
        actions.create_session(
            admin,
            doctor.pk,
            on_date=next_day,
            period="morning",
            start_time=dt.time(9, 0),
            end_time=dt.time(9, 15),
            modality="in_person",
        )
        with pytest.raises(DomainError) as caught:
            book(patient_user, Slot.objects.get(practitioner=doctor, day=next_day))
    assert caught.value.code == "barred_for_no_shows"
    assert "2026-11-03" in caught.value.message  # 90 days after the third no-show
    later = dt.date(2026, 11, 4)
    with clock.frozen(at(later - dt.timedelta(days=1), 9)):
        actions.create_session(
            admin,
            doctor.pk,
            on_date=later,
            period="morning",
            start_time=dt.time(9, 0),
            end_time=dt.time(9, 15),
            modality="in_person",
        )
        assert book(patient_user, Slot.objects.get(practitioner=doctor, day=later)).created


def test_a_cancelled_place_is_offered_to_the_first_waiting_patient_then_returns_to_the_pool(
    clinic, patient_user, django_capture_on_commit_callbacks
):
    slot = slots(clinic["doctor"])[0]
    first_waiting, second_waiting = factories.patient_user(), factories.patient_user()
    with clock.frozen(MONDAY_9AM):
        for s in slots(clinic["doctor"]):
            book(factories.patient_user(), s) if s.pk != slot.pk else book(patient_user, s)
        appointment = Appointment.objects.get(slot=slot)
        e1 = actions.join_waitlist(
            first_waiting, clinic["doctor"].pk, WEDNESDAY, patient_id=factories.patient_of(first_waiting).pk
        )
        e2 = actions.join_waitlist(
            second_waiting, clinic["doctor"].pk, WEDNESDAY, patient_id=factories.patient_of(second_waiting).pk
        )
        with django_capture_on_commit_callbacks(execute=True):
            actions.cancel_appointment(patient_user, appointment.pk)
        e1.refresh_from_db()
        assert (e1.status, e1.offered_slot_id) == (WaitlistStatus.OFFERED, slot.pk)
        assert e1.offer_expires_at == MONDAY_9AM + dt.timedelta(minutes=30)
        # The place is held for the offer: nobody else can take it.
        with pytest.raises(DomainError) as caught:
            book(factories.patient_user(), slot)
        assert caught.value.code == "slot_taken"
        assert Notification.objects.filter(user=first_waiting, kind="waitlist.offer").count() == 1
    with clock.frozen(MONDAY_9AM + dt.timedelta(minutes=31)):
        assert actions.expire_waitlist_offers() == 1
        with pytest.raises(DomainError) as caught:
            actions.accept_waitlist_offer(first_waiting, e1.pk, idempotency_key="accept-late-1")
        assert caught.value.code == "offer_not_found"
        e2.refresh_from_db()
        assert e2.status == WaitlistStatus.OFFERED
        booking = actions.accept_waitlist_offer(second_waiting, e2.pk, idempotency_key="accept-e2-0001")
    assert booking.appointment.slot_id == slot.pk
    assert Slot.objects.get(pk=slot.pk).booked_count == 1
    assert WaitlistEntry.objects.get(pk=e1.pk).status == WaitlistStatus.EXPIRED


def test_an_unanswered_offer_with_nobody_else_waiting_returns_the_place_to_the_pool(clinic, patient_user):
    slot = slots(clinic["doctor"])[0]
    waiting = factories.patient_user()
    with clock.frozen(MONDAY_9AM):
        appointment = book(patient_user, slot).appointment
        actions.join_waitlist(waiting, clinic["doctor"].pk, WEDNESDAY, patient_id=factories.patient_of(waiting).pk)
        actions.cancel_appointment(patient_user, appointment.pk)
        assert Slot.objects.get(pk=slot.pk).booked_count == 1
    with clock.frozen(MONDAY_9AM + dt.timedelta(hours=1)):
        actions.expire_waitlist_offers()
    assert Slot.objects.get(pk=slot.pk).booked_count == 0


def test_reminders_go_out_24_hours_and_1_hour_before_once_each(
    clinic, patient_user, django_capture_on_commit_callbacks
):
    slot = slots(clinic["doctor"])[1]  # Wednesday 09:15
    with clock.frozen(MONDAY_9AM), django_capture_on_commit_callbacks(execute=True):
        book(patient_user, slot)
        assert actions.send_due_reminders() == 0
    with clock.frozen(at(WEDNESDAY - dt.timedelta(days=1), 9, 16)):
        assert actions.send_due_reminders() == 1
        assert actions.send_due_reminders() == 0
    with clock.frozen(at(WEDNESDAY, 8, 20)):
        assert actions.send_due_reminders() == 1
    kinds = list(Notification.objects.filter(user=patient_user).values_list("kind", flat=True))
    assert sorted(kinds) == [
        "appointment.booked",
        "appointment.reminder_1h_sent_at",
        "appointment.reminder_24h_sent_at",
    ]
    assert len(mail.outbox) == 3


def test_closing_a_day_cancels_its_bookings_and_tells_the_patients(
    clinic, patient_user, django_capture_on_commit_callbacks
):
    slot = slots(clinic["doctor"])[0]
    with clock.frozen(MONDAY_9AM), django_capture_on_commit_callbacks(execute=True):
        appointment = book(patient_user, slot).appointment
        clinic["admin"].is_mfa_verified = True
        actions.close_days(
            clinic["admin"],
            hospital_id=clinic["hospital"].pk,
            practitioner_id=clinic["doctor"].pk,
            first_day=WEDNESDAY,
            last_day=WEDNESDAY,
            reason="外出会诊",
        )
        with pytest.raises(DomainError) as caught:
            book(factories.patient_user(), slots(clinic["doctor"])[1])
    assert caught.value.code == "slot_closed"
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancel_reason) == (AppointmentStatus.CLOSED_BY_HOSPITAL, "外出会诊")
    notice = Notification.objects.get(user=patient_user, kind="appointment.closed")
    assert f"/doctors/{clinic['doctor'].pk}/" in notice.link


def test_rescheduling_is_cancel_and_book_in_one_step(clinic, patient_user):
    first, second = slots(clinic["doctor"])[:2]
    taken = slots(clinic["doctor"])[2]
    with clock.frozen(MONDAY_9AM):
        book(factories.patient_user(), taken)
        original = book(patient_user, first).appointment
        with pytest.raises(DomainError):
            actions.reschedule_appointment(patient_user, original.pk, taken.pk, idempotency_key="move-to-taken")
        assert Appointment.objects.get(pk=original.pk).status == AppointmentStatus.BOOKED  # nothing changed
        assert Slot.objects.get(pk=first.pk).booked_count == 1
        moved = actions.reschedule_appointment(patient_user, original.pk, second.pk, idempotency_key="move-to-2nd")
    assert moved.appointment.rescheduled_from_id == original.pk
    assert Appointment.objects.get(pk=original.pk).status == AppointmentStatus.CANCELLED
    assert (Slot.objects.get(pk=first.pk).booked_count, Slot.objects.get(pk=second.pk).booked_count) == (0, 1)


def test_the_doctor_marks_check_in_and_no_show_only_when_it_makes_sense(clinic, patient_user, login_as):
    slot = slots(clinic["doctor"])[0]
    doctor_user = clinic["doctor"].user
    doctor_user.is_mfa_verified = True
    with clock.frozen(MONDAY_9AM):
        appointment = book(patient_user, slot).appointment
        with pytest.raises(DomainError) as caught:
            actions.mark_appointment(doctor_user, appointment.pk, "no_show")
        assert caught.value.code == "bad_mark"
    with clock.frozen(at(WEDNESDAY, 8, 50)):
        actions.mark_appointment(doctor_user, appointment.pk, "checked_in")
    assert Appointment.objects.get(pk=appointment.pk).status == AppointmentStatus.CHECKED_IN
    with pytest.raises(DomainError) as caught:
        actions.mark_appointment(patient_user, appointment.pk, "completed")
    assert caught.value.code in ("permission_denied", "not_found")


def test_check_in_uses_the_local_day_not_the_utc_one(clinic, patient_user):
    # given a booking on Wednesday 09:00 (Shanghai)
    slot = slots(clinic["doctor"])[0]
    doctor_user = clinic["doctor"].user
    doctor_user.is_mfa_verified = True
    with clock.frozen(MONDAY_9AM):
        appointment = book(patient_user, slot).appointment
    # when the doctor checks the patient in on Tuesday 23:30 local (15:30 UTC): still the day before
    with clock.frozen(dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)), pytest.raises(DomainError) as caught:
        actions.mark_appointment(doctor_user, appointment.pk, "checked_in")
    assert caught.value.code == "bad_mark"
    # and on Wednesday 00:30 local, which is still Tuesday 16:30 in UTC: it is the slot's day
    with clock.frozen(dt.datetime(2026, 11, 24, 16, 30, tzinfo=dt.UTC)):
        marked = actions.mark_appointment(doctor_user, appointment.pk, "checked_in")
    # then the check-in is accepted
    assert marked.status == AppointmentStatus.CHECKED_IN
    assert Appointment.objects.get(pk=appointment.pk).checked_in_at == at(WEDNESDAY, 0, 30)


def test_closing_days_says_exactly_what_it_cancelled(clinic, patient_user, city_hospital):
    # given two doctors with a booking each on Wednesday, and the second doctor's Wednesday already
    # closed once for the same reason
    admin = clinic["admin"]
    admin.is_mfa_verified = True
    with clock.frozen(MONDAY_9AM):
        other_doctor = factories.doctor(city_hospital, admin=admin, legal_name="赵脑", department_code="neurology")
        actions.create_session(
            admin,
            other_doctor.pk,
            on_date=WEDNESDAY,
            period="morning",
            start_time=dt.time(9, 0),
            end_time=dt.time(9, 30),
            modality="in_person",
        )
        first, second = slots(clinic["doctor"])[:2]
        mine = book(patient_user, first).appointment
        checked_in = book(factories.patient_user(), second).appointment
        book(factories.patient_user(), slots(other_doctor)[0])
        waiting = factories.patient_user()
        actions.join_waitlist(waiting, clinic["doctor"].pk, WEDNESDAY, patient_id=factories.patient_of(waiting).pk)
        earlier = actions.close_days(
            admin,
            hospital_id=city_hospital.pk,
            practitioner_id=other_doctor.pk,
            first_day=WEDNESDAY,
            last_day=WEDNESDAY,
            reason="休假",
        )
    with clock.frozen(at(WEDNESDAY, 0, 10)):
        actions.mark_appointment(admin, checked_in.pk, "checked_in")
        # when the first doctor's Wednesday and Thursday close for the same reason
        outcome = actions.close_days(
            admin,
            hospital_id=city_hospital.pk,
            practitioner_id=clinic["doctor"].pk,
            first_day=WEDNESDAY,
            last_day=WEDNESDAY + dt.timedelta(days=1),
            reason="休假",
        )
        # and the same days close again
        again = actions.close_days(
            admin,
            hospital_id=city_hospital.pk,
            practitioner_id=clinic["doctor"].pk,
            first_day=WEDNESDAY,
            last_day=WEDNESDAY,
            reason="休假",
        )
    # then each closure counts only the bookings it cancelled itself (a checked-in one included)
    assert (earlier.cancelled_appointments, earlier.ended_waitlist_entries) == (1, 0)
    assert (outcome.cancelled_appointments, outcome.ended_waitlist_entries) == (2, 1)
    assert (again.cancelled_appointments, again.ended_waitlist_entries) == (0, 0)
    assert outcome.closure.practitioner_id == clinic["doctor"].pk
    statuses = set(Appointment.objects.filter(pk__in=[mine.pk, checked_in.pk]).values_list("status", flat=True))
    assert statuses == {AppointmentStatus.CLOSED_BY_HOSPITAL}
    entry = AuditEntry.objects.get(action="schedule.closure.create", object_id=str(outcome.closure.pk))
    assert entry.detail == {"cancelled": 2, "waitlist_ended": 1}


def test_a_reschedule_retried_with_its_key_returns_the_first_move_and_a_reused_key_is_refused(clinic, patient_user):
    first, second, third = slots(clinic["doctor"])[:3]
    with clock.frozen(MONDAY_9AM):
        # an earlier booking of the third slot, made and cancelled with a key
        plain = book(patient_user, third, key="plain-key-0001").appointment
        actions.cancel_appointment(patient_user, plain.pk)
        original = book(patient_user, first).appointment
        moved = actions.reschedule_appointment(patient_user, original.pk, second.pk, idempotency_key="move-once-01")
        again = actions.reschedule_appointment(patient_user, original.pk, second.pk, idempotency_key="move-once-01")
        # a move that reuses the earlier booking's key is not a retry of it: refused, not "replayed"
        with pytest.raises(DomainError) as caught:
            actions.reschedule_appointment(
                patient_user, moved.appointment.pk, third.pk, idempotency_key="plain-key-0001"
            )
    assert (moved.created, again.created, again.appointment.pk) == (True, False, moved.appointment.pk)
    assert caught.value.code == "idempotency_key_reused"
    assert AuditEntry.objects.filter(action="appointment.cancel", object_id=str(original.pk)).count() == 1
    assert Appointment.objects.get(pk=moved.appointment.pk).status == AppointmentStatus.BOOKED
    assert Slot.objects.get(pk=third.pk).booked_count == 0


def test_marking_a_notification_read_is_for_its_owner_only_and_keeps_the_first_time(
    clinic, patient_user, django_capture_on_commit_callbacks
):
    with clock.frozen(MONDAY_9AM), django_capture_on_commit_callbacks(execute=True):
        book(patient_user, slots(clinic["doctor"])[0])
    notification = Notification.objects.get(user=patient_user)
    other = factories.patient_user()
    with clock.frozen(MONDAY_9AM), pytest.raises(DomainError) as caught:
        actions.mark_notification_read(other, notification.pk)
    assert caught.value.code == "not_found"
    assert Notification.objects.get(pk=notification.pk).read_at is None
    with clock.frozen(MONDAY_9AM + dt.timedelta(minutes=5)):
        assert actions.mark_notification_read(patient_user, notification.pk).read_at == MONDAY_9AM + dt.timedelta(
            minutes=5
        )
    with clock.frozen(MONDAY_9AM + dt.timedelta(minutes=9)):
        again = actions.mark_notification_read(patient_user, notification.pk)
        assert actions.mark_all_notifications_read(patient_user) == 0
    assert again.read_at == MONDAY_9AM + dt.timedelta(minutes=5)
    with pytest.raises(DomainError):
        actions.mark_notification_read(patient_user, 987654321)
