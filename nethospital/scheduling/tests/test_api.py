"""The booking API's answers: 201 / 200 replay, structured refusals, rate limits, bad input."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from nethospital.core import clock
from nethospital.scheduling import actions
from nethospital.scheduling.models import Appointment, Slot
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
DAY = dt.date(2026, 11, 25)


@pytest.fixture
def frozen():
    with clock.frozen(NOW, all_threads=True):
        yield


@pytest.fixture
def doctors(frozen, city_hospital, internet_hospital):
    admin = factories.hospital_admin(city_hospital)
    made = []
    for name in ("王心", "李肺"):
        doctor = factories.doctor(city_hospital, admin=admin, legal_name=name)
        actions.create_session(
            admin,
            doctor.pk,
            on_date=DAY,
            period="morning",
            start_time=dt.time(9, 0),
            end_time=dt.time(10, 0),
            modality="video",
        )
        made.append(doctor)
    return made


def post(client, path, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def first_slot(doctor):
    return Slot.objects.filter(practitioner=doctor).order_by("starts_at").first()


def test_book_then_replay_then_taken(doctors, patient_user, login_as):
    client = login_as(patient_user)
    patient = factories.patient_of(patient_user)
    slot = first_slot(doctors[0])
    body = {"slot_id": slot.pk, "patient_id": patient.pk}
    created = post(client, "/api/appointments", body, key="abc-00000001")
    assert created.status_code == 201
    replay = post(client, "/api/appointments", body, key="abc-00000001")
    assert (replay.status_code, replay.json()["id"]) == (200, created.json()["id"])
    other_user = factories.patient_user()
    other_body = {"slot_id": slot.pk, "patient_id": factories.patient_of(other_user).pk}
    taken = post(login_as(other_user), "/api/appointments", other_body, key="abc-00000002")
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "slot_taken"
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        ({"slot_id": 999999, "patient_id": None}, "valid-key-001", 404, "slot_not_found"),
        ({"slot_id": None, "patient_id": None}, None, 400, "idempotency_key_invalid"),
        ({"slot_id": None, "patient_id": None}, "short", 400, "idempotency_key_invalid"),
        ({"slot_id": "abc", "patient_id": None}, "valid-key-002", 422, "invalid_input"),
    ],
)
def test_bad_booking_requests_get_a_structured_4xx_and_change_nothing(
    doctors, patient_user, login_as, body, key, status, code
):
    patient = factories.patient_of(patient_user)
    body = {
        "slot_id": first_slot(doctors[0]).pk if body["slot_id"] is None else body["slot_id"],
        "patient_id": patient.pk,
    }
    response = post(login_as(patient_user), "/api/appointments", body, key=key)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert Appointment.objects.count() == 0
    assert Slot.objects.filter(booked_count__gt=0).count() == 0


def test_booking_for_someone_who_is_not_family_is_refused(doctors, patient_user, login_as):
    stranger = factories.patient_of(factories.patient_user())
    response = post(
        login_as(patient_user),
        "/api/appointments",
        {"slot_id": first_slot(doctors[0]).pk, "patient_id": stranger.pk},
        key="stranger-0001",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_family")
    assert Appointment.objects.count() == 0


def test_rescheduling_to_another_doctor_is_refused(doctors, patient_user, login_as):
    client = login_as(patient_user)
    patient = factories.patient_of(patient_user)
    booked = post(
        client,
        "/api/appointments",
        {"slot_id": first_slot(doctors[0]).pk, "patient_id": patient.pk},
        key="move-0000001",
    ).json()
    response = post(
        client,
        f"/api/appointments/{booked['id']}/reschedule",
        {"slot_id": first_slot(doctors[1]).pk},
        key="move-0000002",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (409, "reschedule_other_doctor")
    assert Appointment.objects.get(pk=booked["id"]).status == "booked"


def test_per_account_rate_limit_answers_429_with_retry_after(doctors, patient_user, login_as, settings):
    settings.NETHOSPITAL_BOOKING_RATE_PER_ACCOUNT = 3
    client = login_as(patient_user)
    patient = factories.patient_of(patient_user)
    slot = first_slot(doctors[0])
    statuses = [
        post(
            client, "/api/appointments", {"slot_id": slot.pk, "patient_id": patient.pk}, key="same-key-0001"
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 200, 200, 429]
    limited = post(client, "/api/appointments", {"slot_id": slot.pk, "patient_id": patient.pk}, key="same-key-0001")
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_search_finds_the_cardiologist_by_symptom_and_refuses_huge_pages(doctors, client):
    found = client.get("/api/doctors", {"text": "胸痛"}).json()
    assert [d["name"] for d in found][:2] == ["王心", "李肺"]  # both are cardiologists in the factory
    assert found[0]["next_free"] is not None
    huge = client.get("/api/doctors", {"limit": 100000})
    assert (huge.status_code, huge.json()["error"]["code"]) == (422, "invalid_input")
    bad_date = client.get(f"/api/doctors/{doctors[0].pk}/slots", {"from": "2026-13-01"})
    assert bad_date.status_code == 422
    too_long = client.get(f"/api/doctors/{doctors[0].pk}/slots", {"from": "2026-11-23", "to": "2027-11-23"})
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (400, "date_range_invalid")


def test_my_appointments_and_calendar_file(doctors, patient_user, login_as):
    client = login_as(patient_user)
    patient = factories.patient_of(patient_user)
    booked = post(
        client,
        "/api/appointments",
        {"slot_id": first_slot(doctors[0]).pk, "patient_id": patient.pk},
        key="mine-0000001",
    ).json()
    mine = client.get("/api/appointments/mine").json()
    assert [a["id"] for a in mine["appointments"]] == [booked["id"]]
    assert mine["bars"] == []
    ics = client.get(f"/api/appointments/{booked['id']}/calendar.ics")
    assert ics.status_code == 200 and ics["Content-Type"].startswith("text/calendar")
    text = ics.content.decode()
    assert "DTSTART:20261125T010000Z" in text and "STATUS:CONFIRMED" in text
    outsider = login_as(factories.patient_user())
    assert outsider.get(f"/api/appointments/{booked['id']}/calendar.ics").status_code == 404


def test_a_closure_reports_only_the_bookings_it_cancelled(doctors, patient_user, login_as, city_hospital):
    # given a booking with each of two doctors on the same day, and the second doctor's day already
    # closed for the same reason
    admin = factories.hospital_admin(city_hospital)
    client = login_as(admin, mfa=True)
    for doctor in doctors:
        user = factories.patient_user()
        actions.book_appointment(
            user,
            first_slot(doctor).pk,
            patient_id=factories.patient_of(user).pk,
            idempotency_key=f"close-key-{doctor.pk:04d}",
        )
    body = {
        "hospital_id": city_hospital.pk,
        "first_day": DAY.isoformat(),
        "last_day": DAY.isoformat(),
        "reason": "休假",
    }
    earlier = post(client, "/api/schedules/closures", dict(body, practitioner_id=doctors[1].pk))
    assert (earlier.status_code, earlier.json()["cancelled_appointments"]) == (201, 1)

    # when the first doctor's day closes for the same reason, then again
    closed = post(client, "/api/schedules/closures", dict(body, practitioner_id=doctors[0].pk))
    again = post(client, "/api/schedules/closures", dict(body, practitioner_id=doctors[0].pk))

    # then each answer counts the bookings that request cancelled, not every cancelled one that looks alike
    assert closed.status_code == again.status_code == 201
    assert {k: closed.json()[k] for k in ("cancelled_appointments", "ended_waitlist_entries")} == {
        "cancelled_appointments": 1,
        "ended_waitlist_entries": 0,
    }
    assert again.json()["cancelled_appointments"] == 0
    assert Appointment.objects.filter(status="closed_by_hospital").count() == 2


def test_the_visit_type_filter_counts_only_slots_a_patient_could_book_now(
    frozen, city_hospital, internet_hospital, client
):
    # given five video doctors whose only video slot is past, closed, full, not yet released, or free
    admin = factories.hospital_admin(city_hospital)
    admin.is_mfa_verified = True
    made = {}
    for case, day in (
        ("past", NOW.date() - dt.timedelta(days=1)),
        ("closed", DAY),
        ("full", DAY),
        ("unreleased", NOW.date() + dt.timedelta(days=10)),
        ("free", DAY),
    ):
        doctor = factories.doctor(city_hospital, admin=admin, legal_name=f"视频{case}")
        with clock.frozen(NOW - dt.timedelta(days=3) if case == "past" else NOW):
            actions.create_session(
                admin,
                doctor.pk,
                on_date=day,
                period="afternoon",
                start_time=dt.time(14, 0),
                end_time=dt.time(14, 15),
                modality="video",
            )
        made[case] = doctor
    (past,) = Slot.objects.filter(practitioner=made["past"])
    assert past.starts_at < NOW
    actions.close_days(
        admin,
        hospital_id=city_hospital.pk,
        practitioner_id=made["closed"].pk,
        first_day=DAY,
        last_day=DAY,
        reason="休假",
    )
    user = factories.patient_user()
    actions.book_appointment(
        user, first_slot(made["full"]).pk, patient_id=factories.patient_of(user).pk, idempotency_key="fill-it-0001"
    )
    assert first_slot(made["unreleased"]).release_at > NOW

    # when a patient looks for video doctors (with and without "free within 30 days")
    found = [d["name"] for d in client.get("/api/doctors", {"modality": "video"}).json()]
    within = [d["name"] for d in client.get("/api/doctors", {"modality": "video", "free_within_days": 30}).json()]
    in_person = client.get("/api/doctors", {"modality": "in_person"}).json()

    # then only the doctor with a free, released, future video slot is found
    assert found == within == ["视频free"]
    assert in_person == []


def test_doctors_of_other_departments_are_named_after_their_own_department(frozen, city_hospital, client):
    admin = factories.hospital_admin(city_hospital)
    paediatrician = factories.doctor(city_hospital, admin=admin, legal_name="儿医", department_code="paediatrics")
    cardiologist = factories.doctor(city_hospital, admin=admin, legal_name="心医")
    made_up = factories.department(city_hospital, "sleep-medicine")

    assert (paediatrician.department.name_zh, paediatrician.department.name_en) == ("儿科", "Paediatrics")
    assert paediatrician.specialties.get().is_paediatric
    assert (cardiologist.department.name_zh, cardiologist.department.name_en) == ("心血管内科", "Cardiology")
    assert (made_up.name_zh, made_up.name_en) == ("Sleep medicine", "Sleep medicine")
    by_department = [d["name"] for d in client.get("/api/doctors", {"text": "心血管"}).json()]
    assert by_department == ["心医"]
    detail = client.get(f"/api/doctors/{paediatrician.pk}").json()
    assert (detail["department"], detail["specialties"]) == (str(paediatrician.department), ["儿科"])


def test_notifications_are_marked_read_through_the_api_by_their_owner_only(
    doctors, patient_user, login_as, django_capture_on_commit_callbacks
):
    client = login_as(patient_user)
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            "/api/appointments",
            {"slot_id": first_slot(doctors[0]).pk, "patient_id": factories.patient_of(patient_user).pk},
            key="notify-00001",
        )
    (listed,) = client.get("/api/notifications").json()
    assert listed["read_at"] is None
    outsider = login_as(factories.patient_user())
    refused = post(outsider, f"/api/notifications/{listed['id']}/read", {})
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found")
    assert post(client, f"/api/notifications/{listed['id']}/read", {}).status_code == 204
    assert post(client, f"/api/notifications/{listed['id']}/read", {}).status_code == 204
    (read,) = client.get("/api/notifications").json()
    assert dt.datetime.fromisoformat(read["read_at"]) == NOW
