"""Scheduling pages through Django's test client: the status of every page for each role, booking
through the confirmation form (idempotent on a double submit), refusals shown with their reason
and changing nothing, cancel / reschedule / waitlist / no-show bar, the doctor's day and the
schedule page."""

from __future__ import annotations

import datetime as dt
import html
import re
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import translation

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Sex
from nethospital.accounts.identity import make_number
from nethospital.core import clock
from nethospital.core.models import Notification
from nethospital.directory import actions as directory_actions
from nethospital.directory.choices import VerificationStatus
from nethospital.scheduling import actions, errors
from nethospital.scheduling.choices import AppointmentStatus, WaitlistStatus
from nethospital.scheduling.models import Appointment, Closure, ScheduleSession, Slot, WaitlistEntry
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)  # a Monday
WEDNESDAY = dt.date(2026, 11, 25)
THURSDAY = dt.date(2026, 11, 26)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(NOW, all_threads=True):
        yield


@pytest.fixture
def clinic(city_hospital, internet_hospital):
    """A verified cardiologist with four 15-minute in-person slots on Wednesday morning (released:
    the default policy opens them 7 days ahead at 08:00) and a neurologist with none."""
    admin = factories.hospital_admin(city_hospital)
    factories.specialty("neurology", "神经内科", "Neurology")
    cardiologist = factories.doctor(city_hospital, admin=admin, legal_name="王心")
    neurologist = factories.doctor(city_hospital, admin=admin, legal_name="赵脑", department_code="neurology")
    actions.create_session(
        admin,
        cardiologist.pk,
        on_date=WEDNESDAY,
        period="morning",
        start_time=dt.time(9, 0),
        end_time=dt.time(10, 0),
        slot_minutes=15,
        capacity=1,
        modality="in_person",
        fee=50,
    )
    return {"hospital": city_hospital, "admin": admin, "doctor": cardiologist, "neurologist": neurologist}


def slots(doctor) -> list[Slot]:
    return list(Slot.objects.filter(practitioner=doctor).order_by("starts_at"))


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def in_english(message) -> str:
    with translation.override("en"):
        return str(message)


def book(user, slot, *, patient=None, key=None):
    patient = patient or factories.patient_of(user)
    return actions.book_appointment(
        user, slot.pk, patient_id=patient.pk, idempotency_key=key or f"test-key-{slot.pk}-{patient.pk}"
    )


def key_in(response) -> str:
    match = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', response.content.decode())
    assert match, "the confirmation form carries an idempotency key"
    return match.group(1)


# --- every page, every role ---------------------------------------------------------------------


def page_paths(clinic, appointment) -> dict[str, str]:
    doctor = clinic["doctor"]
    return {
        "search": "/doctors/?text=心血管",
        "doctor": f"/doctors/{doctor.pk}/",
        "confirm": f"/slots/{slots(doctor)[1].pk}/book/",
        "mine": "/appointments/",
        "reschedule": f"/appointments/{appointment.pk}/reschedule/",
        "calendar": f"/appointments/{appointment.pk}/calendar.ics",
        "day": f"/doctor/day/?day={WEDNESDAY.isoformat()}",
        "schedule": f"/schedules/{doctor.pk}/",
        "notifications": "/notifications/",
    }


EXPECTED = {
    # page: (anonymous, patient, doctor with MFA, doctor without MFA, another patient)
    "search": (200, 200, 200, 200, 200),
    "doctor": (200, 200, 200, 200, 200),
    "confirm": (302, 200, 200, 200, 200),
    "mine": (302, 200, 200, 200, 200),
    "reschedule": (302, 200, 403, 403, 404),  # the doctor cannot move a booking
    "calendar": (302, 200, 200, 403, 404),
    "day": (302, 403, 200, 403, 403),
    "schedule": (302, 403, 200, 403, 403),
    "notifications": (302, 200, 200, 200, 200),
}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_every_page_answers_each_role_with_the_expected_status(page, clinic, patient_user, login_as):
    appointment = book(patient_user, slots(clinic["doctor"])[0]).appointment
    other = factories.patient_user(legal_name="孙丽")
    clients = [
        Client(),
        login_as(patient_user),
        login_as(clinic["doctor"].user, mfa=True),
        login_as(clinic["doctor"].user),
        login_as(other),
    ]
    path = page_paths(clinic, appointment)[page]
    before = list(Appointment.objects.values_list("pk", "status"))
    statuses = tuple(client.get(path).status_code for client in clients)
    assert statuses == EXPECTED[page]
    assert list(Appointment.objects.values_list("pk", "status")) == before
    anonymous = Client().get(path)
    if anonymous.status_code == 302:
        assert anonymous["Location"].startswith("/accounts/login/?next=")


def test_a_doctor_without_mfa_gets_the_mfa_page_for_the_day_view_and_no_patient_names(clinic, patient_user, login_as):
    book(patient_user, slots(clinic["doctor"])[0])
    response = login_as(clinic["doctor"].user).get(f"/doctor/day/?day={WEDNESDAY.isoformat()}")
    assert response.status_code == 403
    assert 'data-code="mfa_required"' in response.content.decode()
    assert "张伟" not in response.content.decode()


def test_the_hospital_admin_may_open_the_schedule_page(clinic, login_as):
    response = login_as(clinic["admin"], mfa=True).get(f"/schedules/{clinic['doctor'].pk}/")
    assert response.status_code == 200
    assert login_as(clinic["admin"]).get(f"/schedules/{clinic['doctor'].pk}/").status_code == 403


# --- search and the doctor's page ---------------------------------------------------------------


@pytest.mark.parametrize("words", ["心血管", "胸痛", "chest pain", "王心"])
def test_search_finds_the_cardiologist_by_department_symptom_or_name(words, clinic, client):
    response = english(client).get("/doctors/", {"text": words})
    assert response.status_code == 200
    page = text_of(response)
    assert f'id="doctor-{clinic["doctor"].pk}"' in page
    assert f'id="doctor-{clinic["neurologist"].pk}"' not in page
    assert "There is no paid placement" in page
    assert "2026-11-25 09:00" in page  # the next free slot on the card


def test_search_filters_and_objective_ordering(clinic, client):
    english(client)
    with_slot = client.get("/doctors/", {"free_within_days": "7", "order": "next_free"})
    assert f'id="doctor-{clinic["doctor"].pk}"' in with_slot.content.decode()
    assert f'id="doctor-{clinic["neurologist"].pk}"' not in with_slot.content.decode()
    video = client.get("/doctors/", {"modality": "video"})
    assert f'id="doctor-{clinic["doctor"].pk}"' not in video.content.decode()
    everyone = client.get("/doctors/", {"order": "next_free"}).content.decode()
    assert everyone.index(f'id="doctor-{clinic["doctor"].pk}"') < everyone.index(
        f'id="doctor-{clinic["neurologist"].pk}"'
    )


def test_search_refuses_bad_filters_with_422(clinic, client):
    response = english(client).get("/doctors/", {"free_within_days": "999", "order": "paid"})
    assert response.status_code == 422
    assert 'id="doctor-' not in response.content.decode()


def test_doctor_page_shows_verification_fees_no_rating_and_slot_buttons(clinic, client):
    doctor = clinic["doctor"]
    response = english(client).get(f"/doctors/{doctor.pk}/")
    page = text_of(response)
    assert response.status_code == 200
    assert "verified" in page
    assert "No ratings yet" in page
    assert "in person: ¥50.00" in page
    for slot in slots(doctor):
        assert f'href="/slots/{slot.pk}/book/"' in page
    assert "16 years" in page  # independent practice since 2010-09


def test_a_suspended_or_unknown_doctor_has_no_page(clinic, client):
    directory_actions.change_verification(
        clinic["admin"], clinic["doctor"].pk, VerificationStatus.SUSPENDED, reason="复核"
    )
    assert client.get(f"/doctors/{clinic['doctor'].pk}/").status_code == 404
    assert client.get("/doctors/999999/").status_code == 404


# --- booking ------------------------------------------------------------------------------------


def test_posting_the_same_confirmation_form_twice_books_exactly_once(clinic, patient_user, login_as):
    client = english(login_as(patient_user))
    patient = factories.patient_of(patient_user)
    slot = slots(clinic["doctor"])[0]
    form = client.get(f"/slots/{slot.pk}/book/")
    assert form.status_code == 200
    data = {"patient": patient.pk, "idempotency_key": key_in(form)}
    first = client.post(f"/slots/{slot.pk}/book/", data)
    second = client.post(f"/slots/{slot.pk}/book/", data)
    assert first.status_code == second.status_code == 302
    assert first["Location"].startswith("/appointments/#appointment-")
    assert Appointment.objects.filter(patient=patient).count() == 1
    slot.refresh_from_db()
    assert slot.booked_count == 1
    mine = text_of(client.get("/appointments/"))
    assert "Booked: 王心, 2026-11-25 09:00." in mine
    assert 'data-status="booked"' in mine


def test_each_rendering_of_the_form_has_a_new_key(clinic, patient_user, login_as):
    client = login_as(patient_user)
    slot = slots(clinic["doctor"])[0]
    assert key_in(client.get(f"/slots/{slot.pk}/book/")) != key_in(client.get(f"/slots/{slot.pk}/book/"))


def test_a_taken_slot_is_refused_with_the_reason_and_nothing_changes(clinic, patient_user, login_as):
    slot = slots(clinic["doctor"])[0]
    book(factories.patient_user(legal_name="孙丽"), slot)
    client = english(login_as(patient_user))
    patient = factories.patient_of(patient_user)
    page = client.get(f"/slots/{slot.pk}/book/")
    assert in_english(errors.SLOT_TAKEN.message) in text_of(page)  # warned before submitting
    response = client.post(f"/slots/{slot.pk}/book/", {"patient": patient.pk, "idempotency_key": key_in(page)})
    assert response.status_code == 409
    assert in_english(errors.SLOT_TAKEN.message) in text_of(response)
    assert not Appointment.objects.filter(patient=patient).exists()


def test_the_taken_message_is_shown_in_chinese(clinic, patient_user, login_as):
    slot = slots(clinic["doctor"])[0]
    book(factories.patient_user(legal_name="孙丽"), slot)
    client = login_as(patient_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    data = {"patient": factories.patient_of(patient_user).pk, "idempotency_key": "a" * 32}
    response = client.post(f"/slots/{slot.pk}/book/", data)
    with translation.override("zh-hans"):
        chinese = str(errors.SLOT_TAKEN.message)
    assert chinese != in_english(errors.SLOT_TAKEN.message)
    assert response.status_code == 409
    assert chinese in text_of(response)


def test_booking_for_someone_who_is_not_family_is_refused(clinic, patient_user, login_as):
    stranger = factories.patient_of(factories.patient_user(legal_name="孙丽"))
    slot = slots(clinic["doctor"])[0]
    response = english(login_as(patient_user)).post(
        f"/slots/{slot.pk}/book/", {"patient": stranger.pk, "idempotency_key": "b" * 32}
    )
    assert response.status_code == 422
    assert "孙丽" not in response.content.decode()
    assert not Appointment.objects.exists()


def test_booking_for_a_registered_family_member(clinic, patient_user, login_as):
    birth = dt.date(2016, 4, 2)
    link = account_actions.add_family_member(
        patient_user,
        legal_name="张小明",
        id_number=make_number("110101", birth, 300, Sex.MALE),
        birth_date=birth,
        sex=Sex.MALE,
        relationship=Relationship.CHILD,
    )
    client = english(login_as(patient_user))
    slot = slots(clinic["doctor"])[0]
    page = client.get(f"/slots/{slot.pk}/book/")
    assert "张小明" in text_of(page) and "张伟 (myself)" in text_of(page)
    response = client.post(f"/slots/{slot.pk}/book/", {"patient": link.patient_id, "idempotency_key": key_in(page)})
    assert response.status_code == 302
    assert Appointment.objects.get().patient_id == link.patient_id


def test_unknown_and_unreleased_slots(clinic, patient_user, login_as):
    client = english(login_as(patient_user))
    assert client.get("/slots/999999/book/").status_code == 404
    later = slots(clinic["doctor"])[0]
    Slot.objects.filter(pk=later.pk).update(release_at=at(dt.date(2026, 11, 24), 8))
    page = client.get(f"/slots/{later.pk}/book/")
    assert "it opens at 2026-11-24 08:00" in text_of(page)
    response = client.post(
        f"/slots/{later.pk}/book/", {"patient": factories.patient_of(patient_user).pk, "idempotency_key": key_in(page)}
    )
    assert response.status_code == 409
    assert not Appointment.objects.exists()


def test_booking_pages_are_rate_limited_per_account(clinic, patient_user, login_as, settings):
    settings.NETHOSPITAL_BOOKING_RATE_PER_ACCOUNT = 2
    client = english(login_as(patient_user))
    slot = slots(clinic["doctor"])[0]
    data = {"patient": factories.patient_of(patient_user).pk, "idempotency_key": "c" * 32}
    assert [client.post(f"/slots/{slot.pk}/book/", data).status_code for _ in range(3)] == [302, 302, 429]
    assert Appointment.objects.count() == 1


# --- my appointments: cancel, reschedule, calendar ----------------------------------------------


def test_cancel_through_the_page(clinic, patient_user, login_as):
    appointment = book(patient_user, slots(clinic["doctor"])[0]).appointment
    client = english(login_as(patient_user))
    response = client.post(f"/appointments/{appointment.pk}/cancel/", {"reason": "出差"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancel_reason == "出差"
    page = text_of(client.get("/appointments/"))
    assert "The appointment has been cancelled." in page
    history = page[page.index('id="history"') :]
    assert f'id="appointment-{appointment.pk}" data-status="cancelled"' in history
    assert Slot.objects.get(pk=appointment.slot_id).booked_count == 0


def test_cancel_after_the_cut_off_is_refused_with_the_reason(clinic, patient_user, login_as):
    appointment = book(patient_user, slots(clinic["doctor"])[0]).appointment
    client = english(login_as(patient_user))
    with clock.frozen(at(WEDNESDAY, 8, 0), all_threads=True):
        assert "The cancellation cut-off has passed." in text_of(client.get("/appointments/"))
        response = client.post(f"/appointments/{appointment.pk}/cancel/", {"reason": ""})
    assert response.status_code == 409
    assert "Cancellation closed 120 minutes before the appointment." in text_of(response)
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_someone_elses_appointment_cannot_be_cancelled_or_seen(clinic, patient_user, login_as):
    appointment = book(patient_user, slots(clinic["doctor"])[0]).appointment
    other = login_as(factories.patient_user(legal_name="孙丽"))
    assert other.post(f"/appointments/{appointment.pk}/cancel/").status_code == 404
    assert "张伟" not in other.get("/appointments/").content.decode()
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_reschedule_through_the_page(clinic, patient_user, login_as):
    first, _, third, _ = slots(clinic["doctor"])
    appointment = book(patient_user, first).appointment
    client = english(login_as(patient_user))
    page = client.get(f"/appointments/{appointment.pk}/reschedule/")
    assert page.status_code == 200
    assert f'value="{third.pk}"' in page.content.decode()
    assert f'value="{first.pk}"' not in page.content.decode()
    response = client.post(
        f"/appointments/{appointment.pk}/reschedule/", {"slot": third.pk, "idempotency_key": key_in(page)}
    )
    assert response.status_code == 302
    moved = Appointment.objects.get(status=AppointmentStatus.BOOKED)
    assert moved.slot_id == third.pk and moved.rescheduled_from_id == appointment.pk
    assert "moved to 2026-11-25 09:30" in text_of(client.get("/appointments/"))


def test_reschedule_to_a_slot_that_is_not_offered_is_refused(clinic, patient_user, login_as):
    first, second, *_ = slots(clinic["doctor"])
    appointment = book(patient_user, first).appointment
    book(factories.patient_user(legal_name="孙丽"), second)
    response = login_as(patient_user).post(
        f"/appointments/{appointment.pk}/reschedule/", {"slot": second.pk, "idempotency_key": "d" * 32}
    )
    assert response.status_code == 422
    assert Appointment.objects.get(pk=appointment.pk).status == AppointmentStatus.BOOKED


def test_calendar_file(clinic, patient_user, login_as):
    appointment = book(patient_user, slots(clinic["doctor"])[0]).appointment
    response = login_as(patient_user).get(f"/appointments/{appointment.pk}/calendar.ics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    body = response.content.decode()
    assert "DTSTART:20261125T010000Z" in body and "王心" in body


# --- waitlist and the no-show bar ---------------------------------------------------------------


def test_waitlist_join_offer_accept_through_the_pages(
    clinic, patient_user, login_as, django_capture_on_commit_callbacks
):
    doctor = clinic["doctor"]
    others = [factories.patient_user(legal_name=name) for name in ("甲一", "乙二", "丙三", "丁四")]
    bookings = [book(user, slot).appointment for user, slot in zip(others, slots(doctor), strict=True)]
    client = english(login_as(patient_user))
    page = text_of(client.get(f"/doctors/{doctor.pk}/"))
    assert "Join the waitlist for 2026-11-25" in page
    patient = factories.patient_of(patient_user)
    joined = client.post(
        "/waitlist/join/", {"practitioner": doctor.pk, "day": WEDNESDAY.isoformat(), "patient": patient.pk}
    )
    assert joined.status_code == 302
    entry = WaitlistEntry.objects.get(patient=patient)
    again = client.post(
        "/waitlist/join/", {"practitioner": doctor.pk, "day": WEDNESDAY.isoformat(), "patient": patient.pk}
    )
    assert again.status_code == 409
    assert in_english(errors.ALREADY_WAITING.message) in text_of(again)

    with django_capture_on_commit_callbacks(execute=True):
        actions.cancel_appointment(others[1], bookings[1].pk)
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.OFFERED
    mine = text_of(client.get("/appointments/"))
    assert "A place at 2026-11-25 09:15 is held for you until 09:30." in mine
    key = re.search(r'name="idempotency_key" value="([^"]+)"', mine).group(1)
    accepted = client.post(f"/waitlist/{entry.pk}/accept/", {"idempotency_key": key})
    assert accepted.status_code == 302
    assert client.post(f"/waitlist/{entry.pk}/accept/", {"idempotency_key": key}).status_code == 302
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.slot_id == bookings[1].slot_id
    assert Slot.objects.get(pk=appointment.slot_id).booked_count == 1


def test_leave_the_waitlist(clinic, patient_user, login_as):
    patient = factories.patient_of(patient_user)
    entry = actions.join_waitlist(patient_user, clinic["doctor"].pk, WEDNESDAY, patient_id=patient.pk)
    client = login_as(patient_user)
    assert client.post(f"/waitlist/{entry.pk}/leave/").status_code == 302
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.LEFT
    assert client.post(f"/waitlist/{entry.pk}/leave/").status_code == 404
    stranger = login_as(factories.patient_user(legal_name="孙丽"))
    other_entry = actions.join_waitlist(patient_user, clinic["doctor"].pk, THURSDAY, patient_id=patient.pk)
    assert stranger.post(f"/waitlist/{other_entry.pk}/leave/").status_code == 403
    assert WaitlistEntry.objects.get(pk=other_entry.pk).status == WaitlistStatus.WAITING


def test_the_no_show_bar_is_shown_with_the_date_it_ends(city_hospital, internet_hospital, patient_user, login_as):
    admin = factories.hospital_admin(city_hospital)
    doctor = factories.doctor(city_hospital, admin=admin)
    days = [dt.date(2026, 11, 24), dt.date(2026, 11, 25), dt.date(2026, 11, 26)]
    for day in days:
        actions.create_session(
            admin,
            doctor.pk,
            on_date=day,
            period="afternoon",
            start_time=dt.time(14, 0),
            end_time=dt.time(14, 15),
            modality="video",
        )
    for slot in slots(doctor):
        book(patient_user, slot)
    with clock.frozen(at(dt.date(2026, 11, 27), 9), all_threads=True):
        assert actions.mark_missed_appointments() == 3
        response = english(login_as(patient_user)).get("/appointments/")
    assert "张伟: because of 3 missed appointments, booking is suspended until 2027-02-24." in text_of(response)


# --- the doctor's day ---------------------------------------------------------------------------


def test_the_doctor_marks_check_in_and_completed(clinic, patient_user, login_as):
    appointment = book(patient_user, slots(clinic["doctor"])[0]).appointment
    client = english(login_as(clinic["doctor"].user, mfa=True))
    with clock.frozen(at(WEDNESDAY, 8, 50), all_threads=True):
        day = text_of(client.get(f"/doctor/day/?day={WEDNESDAY.isoformat()}"))
        assert "张伟" in day and 'value="checked_in"' in day
        response = client.post(f"/appointments/{appointment.pk}/mark/", {"status": "checked_in", "day": "2026-11-25"})
        assert response.status_code == 302
        assert response["Location"] == "/doctor/day/?day=2026-11-25"
        too_early = client.post(f"/appointments/{appointment.pk}/mark/", {"status": "completed", "day": "2026-11-25"})
        assert too_early.status_code == 409
        assert in_english(errors.BAD_MARK.message) in text_of(too_early)
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CHECKED_IN
    with clock.frozen(at(WEDNESDAY, 9, 10), all_threads=True):
        client.post(f"/appointments/{appointment.pk}/mark/", {"status": "completed"})
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.COMPLETED


def test_a_patient_cannot_mark_and_a_bad_day_is_400(clinic, patient_user, login_as):
    appointment = book(patient_user, slots(clinic["doctor"])[0]).appointment
    assert (
        login_as(patient_user).post(f"/appointments/{appointment.pk}/mark/", {"status": "completed"}).status_code == 403
    )
    other = login_as(factories.patient_user(legal_name="孙丽"))
    assert other.post(f"/appointments/{appointment.pk}/mark/", {"status": "completed"}).status_code == 404
    assert Appointment.objects.get(pk=appointment.pk).status == AppointmentStatus.BOOKED
    bad = login_as(clinic["doctor"].user, mfa=True).get("/doctor/day/?day=2026-13-45")
    assert bad.status_code == 400
    assert "张伟" not in bad.content.decode()


# --- the schedule page --------------------------------------------------------------------------


def session_data(**overrides):
    data = {
        "form": "session",
        "session-weekday": "",
        "session-on_date": THURSDAY.isoformat(),
        "session-period": "afternoon",
        "session-start_time": "14:00",
        "session-end_time": "15:00",
        "session-slot_minutes": "20",
        "session-capacity": "2",
        "session-modality": "video",
        "session-fee": "120",
        "session-valid_from": "",
        "session-valid_until": "",
    }
    data.update(overrides)
    return data


def test_the_doctor_adds_a_one_off_session_on_the_schedule_page(clinic, login_as, city_hospital, internet_hospital):
    doctor = clinic["doctor"]
    client = english(login_as(doctor.user, mfa=True))
    response = client.post(f"/schedules/{doctor.pk}/", session_data(**{"session-hospital": str(internet_hospital.pk)}))
    assert response.status_code == 302
    session = ScheduleSession.objects.get(on_date=THURSDAY)
    assert session.hospital_id == internet_hospital.pk
    assert Slot.objects.filter(session=session).count() == 3
    page = text_of(client.get(f"/schedules/{doctor.pk}/"))
    assert "Session added: 3 slots created." in page
    assert f'id="session-{session.pk}"' in page


def test_a_recurring_session_from_the_admin(clinic, login_as, city_hospital):
    doctor = clinic["doctor"]
    data = session_data(**{"session-weekday": "4", "session-on_date": "", "session-hospital": str(city_hospital.pk)})
    response = login_as(clinic["admin"], mfa=True).post(f"/schedules/{doctor.pk}/", data)
    assert response.status_code == 302
    session = ScheduleSession.objects.get(weekday=4)
    assert session.created_by == clinic["admin"]
    assert Slot.objects.filter(session=session).count() == 2 * 3  # two Fridays within the horizon


def test_an_invalid_session_is_refused_next_to_its_field(clinic, login_as, city_hospital):
    doctor = clinic["doctor"]
    client = english(login_as(doctor.user, mfa=True))
    before = ScheduleSession.objects.count()
    both = session_data(**{"session-weekday": "2", "session-hospital": str(city_hospital.pk)})
    response = client.post(f"/schedules/{doctor.pk}/", both)
    assert response.status_code == 400
    assert in_english(errors.SESSION_INVALID.message) in text_of(response)
    backwards = session_data(**{"session-end_time": "13:00", "session-hospital": str(city_hospital.pk)})
    assert client.post(f"/schedules/{doctor.pk}/", backwards).status_code == 400
    assert client.post(f"/schedules/{doctor.pk}/", session_data(**{"session-hospital": "999999"})).status_code == 422
    assert ScheduleSession.objects.count() == before


def test_a_patient_cannot_post_a_session(clinic, patient_user, login_as, city_hospital):
    response = login_as(patient_user).post(
        f"/schedules/{clinic['doctor'].pk}/", session_data(**{"session-hospital": str(city_hospital.pk)})
    )
    assert response.status_code == 403
    assert not ScheduleSession.objects.filter(on_date=THURSDAY).exists()


def test_closing_days_cancels_bookings_and_tells_the_patient(
    clinic, patient_user, login_as, django_capture_on_commit_callbacks
):
    doctor = clinic["doctor"]
    appointment = book(patient_user, slots(doctor)[0]).appointment
    client = english(login_as(doctor.user, mfa=True))
    data = {
        "form": "closure",
        "closure-first_day": WEDNESDAY.isoformat(),
        "closure-last_day": WEDNESDAY.isoformat(),
        "closure-reason": "外出会诊",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/schedules/{doctor.pk}/", data)
    assert response.status_code == 302
    assert Closure.objects.get().reason == "外出会诊"
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CLOSED_BY_HOSPITAL
    assert "1 bookings cancelled" in text_of(client.get(f"/schedules/{doctor.pk}/"))
    patient_client = english(login_as(patient_user))
    notifications = text_of(patient_client.get("/notifications/"))
    assert "外出会诊" in notifications
    backwards = dict(data, **{"closure-last_day": "2026-11-24"})
    refused = client.post(f"/schedules/{doctor.pk}/", backwards)
    assert refused.status_code == 400
    assert Closure.objects.count() == 1
    # Closing Wednesday and Thursday for the same reason cancels nothing new, and says so.
    wider = dict(data, **{"closure-last_day": THURSDAY.isoformat()})
    assert client.post(f"/schedules/{doctor.pk}/", wider).status_code == 302
    page = text_of(client.get(f"/schedules/{doctor.pk}/"))
    assert "Closed from 2026-11-25 to 2026-11-26; 0 bookings cancelled" in page


# --- notifications ------------------------------------------------------------------------------


def test_notifications_are_listed_and_marked_read(clinic, patient_user, login_as, django_capture_on_commit_callbacks):
    client = english(login_as(patient_user))
    slot = slots(clinic["doctor"])[0]
    page = client.get(f"/slots/{slot.pk}/book/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/slots/{slot.pk}/book/",
            {"patient": factories.patient_of(patient_user).pk, "idempotency_key": key_in(page)},
        )
    notification = Notification.objects.get(user=patient_user)
    listed = client.get("/notifications/")
    assert notification.title in text_of(listed)
    assert client.post("/notifications/", {"notification": notification.pk}).status_code == 302
    notification.refresh_from_db()
    assert notification.read_at == NOW
    other = login_as(factories.patient_user(legal_name="孙丽"))
    assert other.post("/notifications/", {"notification": notification.pk}).status_code == 404
    assert notification.title not in text_of(other.get("/notifications/"))
    assert other.post("/notifications/", {"notification": "9" * 40}).status_code == 404


def test_all_notifications_are_marked_read_at_once(clinic, patient_user, login_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        booked = book(patient_user, slots(clinic["doctor"])[0]).appointment
        actions.reschedule_appointment(
            patient_user, booked.pk, slots(clinic["doctor"])[1].pk, idempotency_key="move-notify-01"
        )
    other = factories.patient_user(legal_name="孙丽")
    with django_capture_on_commit_callbacks(execute=True):
        book(other, slots(clinic["doctor"])[2])
    assert Notification.objects.filter(user=patient_user, read_at__isnull=True).count() == 2
    response = login_as(patient_user).post("/notifications/", {"notification": "all"})
    assert response.status_code == 302
    assert set(Notification.objects.filter(user=patient_user).values_list("read_at", flat=True)) == {NOW}
    assert Notification.objects.get(user=other).read_at is None


# --- demo schedules -----------------------------------------------------------------------------


def test_demo_schedules_are_made_through_the_actions_once(city_hospital, internet_hospital):
    from nethospital.scheduling.demo import seed_schedules
    from nethospital.scheduling.models import BookingPolicy

    admin = factories.hospital_admin(city_hospital)
    doctors = [factories.doctor(city_hospital, admin=admin, legal_name=name) for name in ("王心", "赵脑", "钱肺")]
    factories.doctor(city_hospital, admin=admin, legal_name="孙待", status=VerificationStatus.PENDING)
    created = seed_schedules()
    assert 6 <= created <= 12
    assert BookingPolicy.objects.filter(hospital=city_hospital).exists()
    for doctor in doctors:
        sessions = ScheduleSession.objects.filter(practitioner=doctor)
        assert 2 <= sessions.count() <= 4
        for session in sessions:
            assert session.weekday is not None and 1 <= session.capacity <= 3
            assert session.slot_minutes in (15, 20) and 20 <= session.fee <= 300
            assert session.created_by == admin
            online = session.modality != "in_person"
            assert session.hospital_id == (internet_hospital.pk if online else city_hospital.pk)
    assert Slot.objects.filter(practitioner__in=doctors).exists()
    assert seed_schedules() == 0
