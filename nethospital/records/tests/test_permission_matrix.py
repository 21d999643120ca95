"""Every API endpoint and page built so far, tried by every role (anonymous included): the answer
is the expected status, and a refused request changes nothing (CONVENTIONS: permissions)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import resolve

from nethospital.accounts.choices import Role
from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.consultations import actions as consultation_actions
from nethospital.consultations import api as consultations_api
from nethospital.consultations import attachments as consultation_attachments
from nethospital.consultations import urls as consultations_urls
from nethospital.consultations.models import (
    Attachment,
    Consultation,
    Message,
    Participant,
    Review,
    VisitRecord,
)
from nethospital.core import clock
from nethospital.core.models import Notification
from nethospital.directory.choices import Profession, Title, VerificationStatus
from nethospital.directory.models import Organization, Practitioner, VerificationEvent
from nethospital.prescriptions import actions as prescription_actions
from nethospital.prescriptions import api as prescriptions_api
from nethospital.prescriptions import urls as prescriptions_urls
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.models import PharmacistReview, Prescription, PrescriptionItem, RuleOverride
from nethospital.prescriptions.tests.conftest import catalogue, follow_up_consultation  # noqa: F401 - a fixture
from nethospital.records.actions import register_patient_at_hospital
from nethospital.records.models import Registration
from nethospital.scheduling import actions as scheduling_actions
from nethospital.scheduling import api as scheduling_api
from nethospital.scheduling import urls as scheduling_urls
from nethospital.scheduling.models import (
    Appointment,
    BookingPolicy,
    Closure,
    ScheduleSession,
    Slot,
    WaitlistEntry,
)
from nethospital.testing import factories

pytestmark = pytest.mark.django_db

ACTORS = [
    "anonymous",
    "patient",
    "other_patient",
    "doctor_no_mfa",
    "doctor",
    "pharmacist",
    "pharmacy_staff",
    "courier",
    "station_operator",
    "hospital_admin_no_mfa",
    "hospital_admin",
    "regulator",
    "platform_admin",
]


@dataclass
class World:
    users: dict[str, User | None] = field(default_factory=dict)
    mfa: dict[str, bool] = field(default_factory=dict)
    patient: Patient | None = None
    pending: Practitioner | None = None
    hospital: Organization | None = None
    new_user: User | None = None


@pytest.fixture
def world() -> World:
    w = World()
    hospital = factories.hospital()
    factories.internet_hospital(hospital)
    pharmacy_org = factories.directory_actions.create_organization(
        None,
        kind="pharmacy",
        name_zh="康民大药房",
        name_en="Kangmin Pharmacy",
        licence_number="YP-9",
        province="浙江省",
        city="杭州",
    )
    station = factories.directory_actions.create_organization(
        None,
        kind="service_station",
        name_zh="青山村服务站",
        name_en="Qingshan Village Station",
        province="浙江省",
        city="杭州",
        parent=hospital,
    )
    admin = factories.hospital_admin(hospital)
    root = User.objects.create_superuser(email="platform@example.org", password=factories.DEFAULT_PASSWORD)
    root.is_mfa_verified = True
    factories.account_actions.grant_role(root, root, Role.PLATFORM_ADMIN)
    patient_user = factories.patient_user()
    w.patient = factories.patient_of(patient_user)
    register_patient_at_hospital(patient_user, w.patient, hospital)
    doctor = factories.doctor(hospital, admin=admin)
    pharmacist_user = factories.staff_user()
    factories.directory_actions.register_practitioner(
        None,
        pharmacist_user,
        legal_name="赵药师",
        profession=Profession.PHARMACIST,
        licence_number="PH-001",
        title=Title.PHARMACIST,
        primary_institution=pharmacy_org,
        independent_practice_since=factories.dt.date(2012, 1, 1),
        institution_consent=True,
    )

    def staff(role: str, org: Organization | None) -> User:
        user = factories.staff_user()
        factories.account_actions.grant_role(root, user, role, organization_id=org.pk if org else None)
        return user

    w.users = {
        "anonymous": None,
        "patient": patient_user,
        "other_patient": factories.patient_user(),
        "doctor_no_mfa": doctor.user,
        "doctor": doctor.user,
        "pharmacist": pharmacist_user,
        "pharmacy_staff": staff(Role.PHARMACY_STAFF, pharmacy_org),
        "courier": staff(Role.COURIER, pharmacy_org),
        "station_operator": staff(Role.STATION_OPERATOR, station),
        "hospital_admin_no_mfa": admin,
        "hospital_admin": admin,
        "regulator": staff(Role.REGULATOR, None),
        "platform_admin": root,
    }
    w.mfa = {name: not name.endswith("_no_mfa") for name in ACTORS}
    w.pending = factories.doctor(hospital, status=VerificationStatus.PENDING, legal_name="待审核")
    w.hospital = hospital
    w.new_user = factories.staff_user()
    return w


def snapshot() -> list:
    """Everything a request could change, except the audit trail (reads and refusals are audited)."""
    return [
        list(User.objects.order_by("pk").values_list("pk", "email", "is_active", "preferred_language")),
        list(Patient.objects.order_by("pk").values_list("pk", "legal_name", "phone")),
        list(FamilyLink.objects.order_by("pk").values_list("pk", "ended_at")),
        list(RoleGrant.objects.order_by("pk").values_list("pk", "role", "organization_id", "revoked_at")),
        list(Practitioner.objects.order_by("pk").values_list("pk", "verification_status")),
        list(VerificationEvent.objects.order_by("pk").values_list("pk")),
        list(Organization.objects.order_by("pk").values_list("pk", "is_active")),
        list(Registration.objects.order_by("pk").values_list("pk")),
        list(ScheduleSession.objects.order_by("pk").values_list("pk", "is_active")),
        list(Closure.objects.order_by("pk").values_list("pk")),
        list(BookingPolicy.objects.order_by("pk").values_list("pk")),
        list(Slot.objects.order_by("pk").values_list("pk", "status", "booked_count")),
        list(
            Appointment.objects.order_by("pk").values_list(
                "pk", "status", "cancelled_at", "checked_in_at", "rescheduled_from_id"
            )
        ),
        list(WaitlistEntry.objects.order_by("pk").values_list("pk", "status", "offered_slot_id", "appointment_id")),
        list(Notification.objects.order_by("pk").values_list("pk", "read_at")),
    ]


def client_for(w: World, actor: str, login_as) -> Client:
    user = w.users[actor]
    return Client() if user is None else login_as(user, mfa=w.mfa[actor])


def ok_for(*actors: str, default: int, **overrides: int) -> dict[str, int]:
    expected = dict.fromkeys(ACTORS, default)
    expected["anonymous"] = 401
    for actor in actors:
        expected[actor] = 200
    expected.update(overrides)
    return expected


# (method, path template, body, expected status per actor)
API_CASES = [
    ("get", "/api/me", None, ok_for(*ACTORS[1:], default=200)),
    ("get", "/api/directory/organizations", None, dict.fromkeys(ACTORS, 200)),
    (
        "get",
        "/api/patients/{patient}",
        None,
        ok_for("patient", "doctor", default=404, doctor_no_mfa=403),
    ),
    ("get", "/api/patients/{patient}/access-log", None, ok_for("patient", default=404)),
    (
        "get",
        "/api/directory/admin/practitioners",
        None,
        ok_for("hospital_admin", "platform_admin", default=403),
    ),
    (
        "post",
        "/api/directory/admin/practitioners/{pending}/status",
        {"status": "verified"},
        ok_for("hospital_admin", "platform_admin", default=403),
    ),
    (
        "post",
        "/api/admin/role-grants",
        {"user_id": "{new_user}", "role": "regulator"},
        ok_for(default=403, platform_admin=201),
    ),
    (
        "post",
        "/api/me/family",
        {"legal_name": "王小宝", "id_number": "{child_number}", "relationship": "child"},
        ok_for(default=403, patient=201, other_patient=201),
    ),
    ("put", "/api/me/language", {"language": "en"}, ok_for(*ACTORS[1:], default=200)),
]


def _fill(value, w: World, child_number: str):
    if isinstance(value, str):
        filled = value.format(
            patient=w.patient.pk, pending=w.pending.pk, new_user=w.new_user.pk, child_number=child_number
        )
        return int(filled) if value == "{new_user}" else filled
    if isinstance(value, dict):
        return {k: _fill(v, w, child_number) for k, v in value.items()}
    return value


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(("method", "path", "body", "expected"), API_CASES, ids=[f"{c[0]} {c[1]}" for c in API_CASES])
def test_api_endpoint_by_role(world, login_as, actor, method, path, body, expected):
    child_number = factories.identity_number(factories.dt.date(2023, 1, 1))
    client = client_for(world, actor, login_as)
    url = _fill(path, world, child_number)
    before = snapshot()
    kwargs = {"content_type": "application/json"}
    if body is not None:
        kwargs["data"] = json.dumps(_fill(body, world, child_number))
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == expected[actor], response.content[:300]
    if response.status_code >= 400:
        assert "error" in response.json()
        assert snapshot() == before, "a refused request changed data"
    elif method == "get":
        assert snapshot() == before, "a read changed data"
    elif method != "put":
        assert snapshot() != before, "an accepted write changed nothing"


def pages_ok_for(*actors: str, default: int, **overrides: int) -> dict[str, int]:
    expected = dict.fromkeys(ACTORS, default)
    expected["anonymous"] = 302  # sent to the login page
    for actor in actors:
        expected[actor] = 200
    expected.update(overrides)
    return expected


LOGGED_IN = ACTORS[1:]
PAGE_CASES = [
    ("get", "/", None, dict.fromkeys(ACTORS, 200)),
    ("get", "/me/", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("get", "/me/family/", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("get", "/me/access-log/", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("get", "/patients/{patient}/", None, pages_ok_for("patient", "doctor", default=404, doctor_no_mfa=403)),
    ("get", "/patients/{patient}/access-log/", None, pages_ok_for("patient", default=404)),
    (
        "get",
        "/hospital-admin/practitioners/",
        None,
        pages_ok_for("hospital_admin", "platform_admin", default=403),
    ),
    (
        "post",
        "/hospital-admin/practitioners/{pending}/status/",
        {"to_status": "verified"},
        pages_ok_for(default=403, hospital_admin=302, platform_admin=302),
    ),
    (
        "post",
        "/me/family/",
        {
            "legal_name": "王小宝",
            "id_number": "{child_number}",
            "relationship": "child",
            "birth_date": "2023-01-01",
            "sex": "M",
        },
        pages_ok_for(default=403, patient=302, other_patient=302),
    ),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(("method", "path", "body", "expected"), PAGE_CASES, ids=[f"{c[0]} {c[1]}" for c in PAGE_CASES])
def test_page_by_role(world, login_as, actor, method, path, body, expected):
    child_number = factories.identity_number(factories.dt.date(2023, 1, 1))
    client = client_for(world, actor, login_as)
    before = snapshot()
    url = _fill(path, world, child_number)
    response = client.get(url) if method == "get" else client.post(url, _fill(body, world, child_number))
    assert response.status_code == expected[actor], (actor, response.status_code)
    if actor == "anonymous" and response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/")
    changed = snapshot() != before
    assert changed == (method == "post" and response.status_code == 302 and actor != "anonymous")


# --- scheduling: every endpoint and page of nethospital/scheduling ---------------------------------

# Monday 2026-11-23 09:00 in Shanghai (kept in UTC: the audit chain hashes the moment as given).
MONDAY_9AM = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = (dt.date(2026, 11, 23) + dt.timedelta(days=n) for n in range(5))
# Everyone with a second factor who runs the doctor's schedule: the doctor, an admin of the doctor's
# hospital, the platform admin.
SCHEDULE_KEEPERS = ("doctor", "hospital_admin", "platform_admin")


@pytest.fixture
def frozen_monday():
    with clock.frozen(MONDAY_9AM, all_threads=True):
        yield


@pytest.fixture
def booked(frozen_monday, world, django_capture_on_commit_callbacks) -> dict[str, int]:
    """The world's doctor with sessions from Monday to Thursday (made by the hospital admin) and the
    world's patient with: a booking today (to mark), a booking on Wednesday (to cancel, move or put
    in a calendar), a waitlist place offered on Tuesday (to accept or leave) and an unread
    notification. Returns the ids the cases use."""
    admin = world.users["hospital_admin"]
    admin.is_mfa_verified = True  # a set-up step, as if past the second factor
    doctor = Practitioner.objects.get(user=world.users["doctor"])
    patient_user = world.users["patient"]
    for day, start, minutes in ((MONDAY, 10, 15), (TUESDAY, 9, 15), (WEDNESDAY, 9, 30), (THURSDAY, 9, 15)):
        scheduling_actions.create_session(
            admin,
            doctor.pk,
            on_date=day,
            period="morning",
            start_time=dt.time(start, 0),
            end_time=dt.time(start, minutes),
            modality="in_person",
        )
    slot = {(s.day, s.starts_at.minute): s.pk for s in Slot.objects.filter(practitioner=doctor).order_by("starts_at")}

    def book(user: User, slot_id: int, key: str) -> int:
        patient_id = factories.patient_of(user).pk
        return scheduling_actions.book_appointment(
            user, slot_id, patient_id=patient_id, idempotency_key=key
        ).appointment.pk

    with django_capture_on_commit_callbacks(execute=True):
        today = book(patient_user, slot[(MONDAY, 0)], "matrix-today-01")
    wednesday = book(patient_user, slot[(WEDNESDAY, 0)], "matrix-wednesday")
    holder = factories.patient_user()
    held = book(holder, slot[(TUESDAY, 0)], "matrix-holder-01")
    entry = scheduling_actions.join_waitlist(patient_user, doctor.pk, TUESDAY, patient_id=world.patient.pk)
    scheduling_actions.cancel_appointment(holder, held)  # the place is offered to the world's patient
    entry.refresh_from_db()
    assert entry.status == "offered"
    notification = Notification.objects.get(user=patient_user)
    return {
        "doctor": doctor.pk,
        "hospital": world.hospital.pk,
        "patient": world.patient.pk,
        "today": today,
        "wednesday": wednesday,
        "wednesday_later": slot[(WEDNESDAY, 15)],
        "thursday": slot[(THURSDAY, 0)],
        "entry": entry.pk,
        "notification": notification.pk,
    }


def _fill_ids(value, ids: dict[str, int]):
    """Put the ids into a path or body: a whole "{name}" becomes the number, dates stay strings."""
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill_ids(v, ids) for k, v in value.items()}
    return value


def case_id(case: tuple) -> str:
    """A test id: method and path, and which form or kind of closure when one path has several."""
    method, path, body, _ = case
    if body and "form" in body:
        return f"{method} {path} ({body['form']})"
    if body and "closures" in path:
        return f"{method} {path} ({'doctor' if 'practitioner_id' in body else 'hospital'})"
    return f"{method} {path}"


EVERYONE = dict.fromkeys(ACTORS, 200)
PATIENT_SIDE_ONLY = {"doctor": 403, "doctor_no_mfa": 403}  # the appointment's doctor is told, others see nothing
CALENDAR_READERS = {"patient": 200, "doctor": 200, "hospital_admin": 200, "platform_admin": 200, "doctor_no_mfa": 403}
MARKERS = {**dict.fromkeys(SCHEDULE_KEEPERS, 200), "doctor_no_mfa": 403, "patient": 403}

# (method, path template, body, expected status per actor)
SCHEDULING_API_CASES = [
    ("get", "/api/doctors?text=心血管", None, EVERYONE),
    ("get", "/api/doctors/{doctor}", None, EVERYONE),
    ("get", "/api/doctors/{doctor}/slots", None, EVERYONE),
    (
        "post",
        "/api/appointments",
        {"slot_id": "{thursday}", "patient_id": "{patient}"},
        ok_for(default=403, patient=201),  # R30: only for oneself or registered family
    ),
    ("get", "/api/appointments/mine", None, ok_for(*ACTORS[1:], default=200)),
    (
        "post",
        "/api/appointments/{wednesday}/cancel",
        {"reason": ""},
        ok_for("patient", default=404, **PATIENT_SIDE_ONLY),
    ),
    (
        "post",
        "/api/appointments/{wednesday}/reschedule",
        {"slot_id": "{wednesday_later}"},
        ok_for(default=404, patient=201, **PATIENT_SIDE_ONLY),
    ),
    ("get", "/api/appointments/{wednesday}/calendar.ics", None, ok_for(default=404, **CALENDAR_READERS)),
    (
        "post",
        "/api/waitlist",
        {"practitioner_id": "{doctor}", "day": THURSDAY.isoformat(), "patient_id": "{patient}"},
        ok_for(default=403, patient=201),
    ),
    ("post", "/api/waitlist/{entry}/accept", {}, ok_for(default=403, patient=201)),
    ("delete", "/api/waitlist/{entry}", None, ok_for(default=403, patient=204)),
    (
        "get",
        f"/api/doctor/day?day={MONDAY.isoformat()}",
        None,
        ok_for("doctor", default=403),  # a pharmacist is a practitioner but has no day of appointments
    ),
    ("post", "/api/appointments/{today}/mark", {"status": "checked_in"}, ok_for(default=404, **MARKERS)),
    (
        "post",
        "/api/schedules/sessions",
        {
            "practitioner_id": "{doctor}",
            "on_date": FRIDAY.isoformat(),
            "period": "morning",
            "start_time": "09:00",
            "end_time": "09:30",
            "modality": "video",
        },
        ok_for(default=403, **dict.fromkeys(SCHEDULE_KEEPERS, 201)),
    ),
    (
        "post",
        "/api/schedules/closures",
        {
            "hospital_id": "{hospital}",
            "practitioner_id": "{doctor}",
            "first_day": WEDNESDAY.isoformat(),
            "last_day": WEDNESDAY.isoformat(),
            "reason": "外出会诊",
        },
        ok_for(default=403, **dict.fromkeys(SCHEDULE_KEEPERS, 201)),
    ),
    (
        "post",
        "/api/schedules/closures",
        {
            "hospital_id": "{hospital}",
            "first_day": WEDNESDAY.isoformat(),
            "last_day": WEDNESDAY.isoformat(),
            "reason": "医院停诊",
        },
        ok_for(default=403, hospital_admin=201, platform_admin=201),  # the whole hospital: admins only
    ),
    ("get", "/api/notifications", None, ok_for(*ACTORS[1:], default=200)),
    ("post", "/api/notifications/{notification}/read", {}, ok_for(default=404, patient=204)),
    ("get", "/api/ping", None, ok_for(*ACTORS[1:], default=200)),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    SCHEDULING_API_CASES,
    ids=[case_id(c) for c in SCHEDULING_API_CASES],
)
def test_scheduling_api_endpoint_by_role(booked, world, login_as, actor, method, path, body, expected):
    client = client_for(world, actor, login_as)
    before = snapshot()
    kwargs = {"content_type": "application/json", "HTTP_IDEMPOTENCY_KEY": "matrix-request-0001"}
    if body is not None:
        kwargs["data"] = json.dumps(_fill_ids(body, booked))
    response = getattr(client, method)(_fill_ids(path, booked), **kwargs)
    assert response.status_code == expected[actor], response.content[:300]
    if response.status_code >= 400:
        assert "error" in response.json()
        assert snapshot() == before, "a refused request changed data"
    elif method == "get":
        assert snapshot() == before, "a read changed data"
    else:
        assert snapshot() != before, "an accepted write changed nothing"


SCHEDULING_PAGE_CASES = [
    ("get", "/doctors/?text=心血管", None, EVERYONE),
    ("get", "/doctors/{doctor}/", None, EVERYONE),
    ("get", "/slots/{thursday}/book/", None, pages_ok_for(*LOGGED_IN, default=200)),
    (
        "post",
        "/slots/{thursday}/book/",
        {"patient": "{patient}", "idempotency_key": "matrix-page-key-1"},
        pages_ok_for(default=422, patient=302),  # nobody else may choose this patient (R30)
    ),
    ("get", "/appointments/", None, pages_ok_for(*LOGGED_IN, default=200)),
    (
        "post",
        "/appointments/{wednesday}/cancel/",
        {"reason": ""},
        pages_ok_for(default=404, patient=302, **PATIENT_SIDE_ONLY),
    ),
    (
        "get",
        "/appointments/{wednesday}/reschedule/",
        None,
        pages_ok_for("patient", default=404, **PATIENT_SIDE_ONLY),
    ),
    (
        "post",
        "/appointments/{wednesday}/reschedule/",
        {"slot": "{wednesday_later}", "idempotency_key": "matrix-page-key-2"},
        pages_ok_for(default=404, patient=302, **PATIENT_SIDE_ONLY),
    ),
    ("get", "/appointments/{wednesday}/calendar.ics", None, pages_ok_for(default=404, **CALENDAR_READERS)),
    (
        "post",
        "/waitlist/join/",
        {"practitioner": "{doctor}", "day": THURSDAY.isoformat(), "patient": "{patient}"},
        pages_ok_for(default=403, patient=302),
    ),
    (
        "post",
        "/waitlist/{entry}/accept/",
        {"idempotency_key": "matrix-page-key-3"},
        pages_ok_for(default=403, patient=302),
    ),
    ("post", "/waitlist/{entry}/leave/", {}, pages_ok_for(default=403, patient=302)),
    ("get", f"/doctor/day/?day={MONDAY.isoformat()}", None, pages_ok_for("doctor", default=403)),
    (
        "post",
        "/appointments/{today}/mark/",
        {"status": "checked_in", "day": MONDAY.isoformat()},
        pages_ok_for(default=404, **{**MARKERS, **dict.fromkeys(SCHEDULE_KEEPERS, 302)}),
    ),
    ("get", "/schedules/{doctor}/", None, pages_ok_for(*SCHEDULE_KEEPERS, default=403)),
    (
        "post",
        "/schedules/{doctor}/",
        {
            "form": "session",
            "session-hospital": "{hospital}",
            "session-on_date": FRIDAY.isoformat(),
            "session-period": "morning",
            "session-start_time": "09:00",
            "session-end_time": "09:30",
            "session-slot_minutes": "15",
            "session-capacity": "1",
            "session-modality": "video",
            "session-fee": "30",
        },
        pages_ok_for(default=403, **dict.fromkeys(SCHEDULE_KEEPERS, 302)),
    ),
    (
        "post",
        "/schedules/{doctor}/",
        {
            "form": "closure",
            "closure-first_day": WEDNESDAY.isoformat(),
            "closure-last_day": WEDNESDAY.isoformat(),
            "closure-reason": "外出会诊",
        },
        pages_ok_for(default=403, **dict.fromkeys(SCHEDULE_KEEPERS, 302)),
    ),
    ("get", "/notifications/", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("post", "/notifications/", {"notification": "{notification}"}, pages_ok_for(default=404, patient=302)),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    SCHEDULING_PAGE_CASES,
    ids=[case_id(c) for c in SCHEDULING_PAGE_CASES],
)
def test_scheduling_page_by_role(booked, world, login_as, actor, method, path, body, expected):
    client = client_for(world, actor, login_as)
    before = snapshot()
    url = _fill_ids(path, booked)
    response = client.get(url) if method == "get" else client.post(url, _fill_ids(body, booked))
    assert response.status_code == expected[actor], (actor, response.status_code)
    if actor == "anonymous" and response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/")
    changed = snapshot() != before
    assert changed == (method == "post" and response.status_code == 302 and actor != "anonymous")


def _route_pattern(template: str) -> re.Pattern[str]:
    """``/api/doctors/{doctor_id}`` or ``/api/doctors/{doctor}`` as a regular expression."""
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in re.split(r"\{[^/}]+\}", template)) + "$")


def test_the_scheduling_matrix_covers_every_endpoint_and_page():
    """A new endpoint or page of the scheduling app fails here until it has its rows above."""
    cases = [(method.upper(), path.split("?")[0]) for method, path, _, _ in SCHEDULING_API_CASES]
    routes = [
        (method, f"/api{route}")
        for route, view in scheduling_api.router.path_operations.items()
        for operation in view.operations
        for method in operation.methods
    ]
    assert len(routes) == 18
    missing = [r for r in routes if not any(m == r[0] and _route_pattern(r[1]).match(p) for m, p in cases)]
    assert missing == []
    ids = dict.fromkeys(("doctor", "today", "wednesday", "thursday", "entry", "notification"), 1)
    covered = {resolve(_fill_ids(path, ids).split("?")[0]).url_name for _, path, _, _ in SCHEDULING_PAGE_CASES}
    assert {url.name for url in scheduling_urls.urlpatterns} - covered == set()


# --- consultations: every endpoint and page of nethospital/consultations ---------------------------

PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
HYPERTENSION = consultation_actions.Declaration(
    condition="高血压复诊",
    first_visit=False,
    proof_kind="other_hospital",
    proof_hospital="县人民医院",
    proof_summary="原发性高血压",
)
DECLARATION_BODY = {"condition": "胸闷", "first_visit": True}
DECLARATION_FORM = {"condition": "胸闷", "first_visit": "yes"}
# The consultation's own doctor (and, for reading, its patient); everyone else sees nothing.
READERS = {"patient": 200, "doctor": 200, "doctor_no_mfa": 403}
WRITERS = {"patient": 201, "doctor": 201, "doctor_no_mfa": 403}
THE_DOCTOR = {"doctor": 200, "doctor_no_mfa": 403}  # everyone else: 403 (not a doctor who may see it)


def consultation_snapshot() -> list:
    return [
        *snapshot(),
        list(Consultation.objects.order_by("pk").values_list("pk", "status", "visit_type", "practitioner_id")),
        list(Message.objects.order_by("pk").values_list("pk", "seq")),
        list(Participant.objects.order_by("pk").values_list("pk", "last_read_seq")),
        list(VisitRecord.objects.order_by("pk").values_list("pk", "is_current")),
        list(Attachment.objects.order_by("pk").values_list("pk", "consultation_id")),
        list(Review.objects.order_by("pk").values_list("pk", "status")),
    ]


@pytest.fixture
def consulted(frozen_monday, world, settings, tmp_path) -> dict[str, object]:
    """The world's patient with, at the world's doctor: a question to accept (``requested``), a visit
    in progress with a file in the chat (``active``), one with a signed record (``signed``, its
    ``record``), a completed one (``completed``) and one completed and reviewed (``review``); a video
    appointment without a consultation (``appointment``); another patient waiting in the doctor's
    department queue. Returns the ids the cases use."""
    settings.MEDIA_ROOT = tmp_path
    admin = world.users["hospital_admin"]
    admin.is_mfa_verified = True
    doctor = Practitioner.objects.get(user=world.users["doctor"])
    doctor.user.is_mfa_verified = True  # set-up steps, as if past the second factor
    patient_user = world.users["patient"]
    patient_id = world.patient.pk

    def visit(*, sign: bool = False, complete: bool = False) -> Consultation:
        consultation = consultation_actions.join_queue(patient_user, patient_id, doctor.department_id, HYPERTENSION)
        consultation_actions.pick_next(doctor.user)
        if sign:
            consultation_actions.sign_visit_record(
                doctor.user, consultation.pk, consultation_actions.RecordInput(chief_complaint="复诊")
            )
        if complete:
            consultation_actions.complete_consultation(doctor.user, consultation.pk)
        return consultation

    active = visit()
    attachment = consultation_attachments.upload_attachment(
        patient_user, io.BytesIO(PDF_BYTES), "化验单.pdf", consultation_id=active.pk
    )
    consultation_actions.post_message(patient_user, active.pk, "matrix-file", "", attachment_id=attachment.pk)
    signed = visit(sign=True)
    completed = visit(sign=True, complete=True)
    reviewed = visit(sign=True, complete=True)
    review = consultation_actions.submit_review(patient_user, reviewed.pk, 4, "好")
    requested = consultation_actions.ask_doctor(patient_user, patient_id, doctor.pk, HYPERTENSION, "您好")
    waiting_user = factories.patient_user()
    consultation_actions.join_queue(
        waiting_user, factories.patient_of(waiting_user).pk, doctor.department_id, HYPERTENSION
    )
    scheduling_actions.create_session(
        admin,
        doctor.pk,
        on_date=WEDNESDAY,
        period="afternoon",
        start_time=dt.time(14, 0),
        end_time=dt.time(14, 15),
        modality="video",
    )
    video_slot = Slot.objects.get(practitioner=doctor, modality="video")
    appointment = scheduling_actions.book_appointment(
        patient_user, video_slot.pk, patient_id=patient_id, idempotency_key="matrix-video-01"
    ).appointment
    return {
        "doctor": doctor.pk,
        "department": doctor.department_id,
        "patient": patient_id,
        "active": active.pk,
        "attachment": attachment.pk,
        "signed": signed.pk,
        "record": VisitRecord.objects.get(consultation=signed).pk,
        "completed": completed.pk,
        "review": review.pk,
        "requested": requested.pk,
        "appointment": appointment.pk,
        "operator_email": world.users["station_operator"].email,
    }


FILE_UPLOAD = "multipart"  # a body marker: post ``file`` (a small PDF) with the rest of the body as a form

CONSULTATION_API_CASES = [
    (
        "post",
        "/api/consultations/queue",
        {"patient_id": "{patient}", "department_id": "{department}", **DECLARATION_BODY},
        ok_for(default=403, patient=201),  # R30: only for oneself or registered family
    ),
    (
        "post",
        "/api/consultations/ask",
        {"patient_id": "{patient}", "practitioner_id": "{doctor}", "question": "您好", **DECLARATION_BODY},
        ok_for(default=403, patient=201),
    ),
    (
        "post",
        "/api/consultations/from-appointment",
        {"appointment_id": "{appointment}", **DECLARATION_BODY},
        ok_for(default=403, patient=201),
    ),
    (
        "post",
        "/api/consultations/proof-documents",
        {FILE_UPLOAD: True, "patient_id": "{patient}"},
        ok_for(default=403, patient=201),
    ),
    ("get", "/api/consultations", None, ok_for(*LOGGED_IN, default=200)),
    ("get", "/api/consultations/icd10?q=I1", None, ok_for(*LOGGED_IN, default=200)),
    ("get", "/api/consultations/{active}", None, ok_for(default=404, **READERS)),
    ("get", "/api/consultations/{active}/messages", None, ok_for(default=404, **READERS)),
    (
        "post",
        "/api/consultations/{active}/messages",
        {"client_id": "matrix-message", "body": "您好"},
        ok_for(default=404, **WRITERS),
    ),
    ("post", "/api/consultations/{active}/read", {"seq": 1}, ok_for(default=404, **READERS)),
    (
        "post",
        "/api/consultations/{active}/attachments",
        {FILE_UPLOAD: True, "client_id": "matrix-upload"},
        ok_for(default=404, **WRITERS),
    ),
    ("get", "/api/consultations/{completed}/record", None, ok_for(default=404, **READERS)),
    (
        "post",
        "/api/consultations/{requested}/cancel",
        {},
        ok_for(default=404, patient=200, doctor=403, doctor_no_mfa=403),  # the patient's side only
    ),
    (
        "post",
        "/api/consultations/{active}/participants",
        {"email": "{operator_email}"},
        ok_for(default=404, **WRITERS),
    ),
    (
        "post",
        "/api/consultations/{completed}/review",
        {"rating": 5},
        ok_for(default=404, patient=201, doctor=403, doctor_no_mfa=403),
    ),
    ("post", "/api/consultations/pick-next", {}, ok_for(default=403, **THE_DOCTOR)),
    ("post", "/api/consultations/{requested}/accept", {}, ok_for(default=403, **THE_DOCTOR)),
    (
        "post",
        "/api/consultations/{active}/visit-type",
        {"visit_type": "follow_up"},
        ok_for(default=403, **THE_DOCTOR),
    ),
    ("post", "/api/consultations/{active}/refer", {"reason": "需面诊"}, ok_for(default=403, **THE_DOCTOR)),
    (
        "post",
        "/api/consultations/{active}/record",
        {"chief_complaint": "复诊"},
        ok_for(default=403, doctor=201, doctor_no_mfa=403),
    ),
    (
        "post",
        "/api/consultations/records/{record}/correct",
        {"chief_complaint": "复诊（更正）", "reason": "笔误"},
        ok_for(default=403, doctor=201, doctor_no_mfa=403),
    ),
    ("post", "/api/consultations/{signed}/complete", {}, ok_for(default=403, **THE_DOCTOR)),
    (
        "post",
        "/api/reviews/{review}/moderate",
        {"publish": True},
        ok_for("hospital_admin", "platform_admin", default=403),
    ),
]


def _consultation_request(client: Client, method: str, url: str, body, ids: dict[str, object], **extra):
    if body is not None and FILE_UPLOAD in body:
        data = {k: _fill_ids(v, ids) for k, v in body.items() if k != FILE_UPLOAD}
        return client.post(url, {**data, "file": SimpleUploadedFile("检查.pdf", PDF_BYTES)}, **extra)
    if method == "get":
        return client.get(url, **extra)
    return getattr(client, method)(url, _fill_ids(body, ids), **extra)


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    CONSULTATION_API_CASES,
    ids=[case_id(c) for c in CONSULTATION_API_CASES],
)
def test_consultations_api_endpoint_by_role(consulted, world, login_as, actor, method, path, body, expected):
    client = client_for(world, actor, login_as)
    before = consultation_snapshot()
    url = _fill_ids(path, consulted)
    if body is not None and FILE_UPLOAD not in body:
        response = getattr(client, method)(url, json.dumps(_fill_ids(body, consulted)), content_type="application/json")
    else:
        response = _consultation_request(client, method, url, body, consulted)
    assert response.status_code == expected[actor], response.content[:300]
    if response.status_code >= 400:
        assert "error" in response.json()
        assert consultation_snapshot() == before, "a refused request changed data"
    elif method == "get":
        assert consultation_snapshot() == before, "a read changed data"
    else:
        assert consultation_snapshot() != before, "an accepted write changed nothing"


CONSULTATION_READERS = {"patient": 200, "doctor": 200, "doctor_no_mfa": 403}
ROOM_WRITERS = {"patient": 302, "doctor": 302, "doctor_no_mfa": 403}
DOCTOR_STEP = {"doctor": 302, "doctor_no_mfa": 403}

CONSULTATION_PAGE_CASES = [
    ("get", "/consultations/", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("get", "/consultations/queue/", None, pages_ok_for(*LOGGED_IN, default=200)),
    (
        "post",
        "/consultations/queue/",
        {"patient": "{patient}", "department": "{department}", "channel": "text", **DECLARATION_FORM},
        pages_ok_for(default=422, patient=302),  # nobody else may choose this patient (R30)
    ),
    ("get", "/consultations/ask/{doctor}/", None, pages_ok_for(*LOGGED_IN, default=200)),
    (
        "post",
        "/consultations/ask/{doctor}/",
        {"patient": "{patient}", "question": "您好", "client_id": "matrix-ask", **DECLARATION_FORM},
        pages_ok_for(default=422, patient=302),
    ),
    (
        "get",
        "/consultations/from-appointment/{appointment}/",
        None,
        pages_ok_for(default=404, patient=200, doctor=403, doctor_no_mfa=403),
    ),
    (
        "post",
        "/consultations/from-appointment/{appointment}/",
        {"patient": "{patient}", **DECLARATION_FORM},
        pages_ok_for(default=404, patient=302, doctor=403, doctor_no_mfa=403),
    ),
    ("get", "/consultations/icd10/?q=I1", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("get", "/consultations/{active}/", None, pages_ok_for(default=404, **CONSULTATION_READERS)),
    (
        "get",
        "/consultations/{active}/waiting/",
        None,
        pages_ok_for(default=404, patient=200, doctor=302, doctor_no_mfa=403),  # picked up: the doctor goes on
    ),
    (
        "post",
        "/consultations/{requested}/cancel/",
        {},
        pages_ok_for(default=404, patient=302, doctor=403, doctor_no_mfa=403),
    ),
    (
        "post",
        "/consultations/{active}/invite/",
        {"email": "{operator_email}"},
        pages_ok_for(default=404, **ROOM_WRITERS),
    ),
    ("post", "/consultations/{requested}/accept/", {}, pages_ok_for(default=403, **DOCTOR_STEP)),
    (
        "post",
        "/consultations/{active}/visit-type/",
        {"visit_type": "follow_up"},
        pages_ok_for(default=403, **DOCTOR_STEP),
    ),
    ("post", "/consultations/{active}/refer/", {"reason": "需面诊"}, pages_ok_for(default=403, **DOCTOR_STEP)),
    (
        "post",
        "/consultations/{active}/record/sign/",
        {"chief_complaint": "复诊"},
        pages_ok_for(default=403, **DOCTOR_STEP),
    ),
    (
        "post",
        "/consultations/{signed}/record/correct/",
        {"record": "{record}", "chief_complaint": "复诊（更正）", "reason": "笔误"},
        pages_ok_for(default=403, **DOCTOR_STEP),
    ),
    ("get", "/consultations/{completed}/record/", None, pages_ok_for(default=404, **CONSULTATION_READERS)),
    ("get", "/consultations/{completed}/record.pdf", None, pages_ok_for(default=404, **CONSULTATION_READERS)),
    ("post", "/consultations/{signed}/complete/", {}, pages_ok_for(default=403, **DOCTOR_STEP)),
    (
        "post",
        "/consultations/{completed}/review/",
        {"rating": "5"},
        pages_ok_for(default=404, patient=302, doctor=403, doctor_no_mfa=403),
    ),
    (
        "post",
        "/consultations/{active}/send/",
        {"client_id": "matrix-send", "body": "您好"},
        pages_ok_for(default=404, **ROOM_WRITERS),
    ),
    (
        "post",
        "/consultations/{active}/upload/",
        {FILE_UPLOAD: True, "client_id": "matrix-page-upload"},
        pages_ok_for(default=404, anonymous=401, patient=201, doctor=201, doctor_no_mfa=403),  # JSON for the script
    ),
    (
        "get",
        "/consultations/{active}/files/{attachment}/",
        None,
        pages_ok_for(default=404, **CONSULTATION_READERS),
    ),
    ("get", "/doctor/workbench/", None, pages_ok_for(default=403, **THE_DOCTOR)),
    ("get", "/doctor/workbench/panel/", None, pages_ok_for(default=403, anonymous=401, **THE_DOCTOR)),
    ("post", "/doctor/workbench/pick/", {}, pages_ok_for(default=403, **DOCTOR_STEP)),
    ("get", "/hospital-admin/reviews/", None, pages_ok_for("hospital_admin", "platform_admin", default=403)),
    (
        "post",
        "/hospital-admin/reviews/{review}/",
        {"decision": "publish"},
        pages_ok_for(default=403, hospital_admin=302, platform_admin=302),
    ),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    CONSULTATION_PAGE_CASES,
    ids=[case_id(c) for c in CONSULTATION_PAGE_CASES],
)
def test_consultations_page_by_role(consulted, world, login_as, actor, method, path, body, expected):
    client = client_for(world, actor, login_as)
    before = consultation_snapshot()
    response = _consultation_request(client, method, _fill_ids(path, consulted), body, consulted)
    assert response.status_code == expected[actor], (actor, response.status_code)
    if actor == "anonymous" and response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/")
    changed = consultation_snapshot() != before
    assert changed == (method == "post" and response.status_code in (201, 302) and actor != "anonymous")


def test_the_consultations_matrix_covers_every_endpoint_and_page():
    """A new endpoint or page of the consultations app fails here until it has its rows above."""
    cases = [(method.upper(), path.split("?")[0]) for method, path, _, _ in CONSULTATION_API_CASES]
    routes = [
        (method, f"/api{re.sub(r'{int:', '{', route)}")
        for route, view in consultations_api.router.path_operations.items()
        for operation in view.operations
        for method in operation.methods
    ]
    assert len(routes) == 23
    missing = [r for r in routes if not any(m == r[0] and _route_pattern(r[1]).match(p) for m, p in cases)]
    assert missing == []
    ids = dict.fromkeys(
        ("doctor", "appointment", "active", "requested", "signed", "completed", "attachment", "review"), 1
    )
    covered = {resolve(_fill_ids(path, ids).split("?")[0]).url_name for _, path, _, _ in CONSULTATION_PAGE_CASES}
    assert {url.name for url in consultations_urls.urlpatterns} - covered == set()


# --- prescriptions: every endpoint and page of nethospital/prescriptions ---------------------------
# The world's pharmacist also works for the world's hospital here, so that there is a reviewer.
PRESCRIBER = {"doctor": 200, "doctor_no_mfa": 403}
RX_READERS = {"patient": 200, "doctor": 200, "doctor_no_mfa": 403, "pharmacist": 200}


def prescription_snapshot() -> list:
    return [
        *snapshot(),
        list(
            Prescription.objects.order_by("pk").values_list(
                "pk", "status", "notes", "signature", "notice_confirmed_at", "valid_days"
            )
        ),
        list(PrescriptionItem.all_objects.order_by("pk").values_list("pk", "removed_at")),
        list(RuleOverride.all_objects.order_by("pk").values_list("pk", "removed_at")),
        list(PharmacistReview.objects.order_by("pk").values_list("pk", "decision")),
    ]


@pytest.fixture
def prescribed(frozen_monday, world, request) -> dict[str, object]:
    """At the world's doctor, a completed follow-up consultation for hypertension (I10, signed) of
    the world's patient, and from it: an empty draft (``draft``), a draft with a duplicate-class
    warning (``warned``), one ready to sign (``signable``) and one signed and pending review
    (``pending``). The world's pharmacist is given the pharmacist's role at the world's hospital."""
    request.getfixturevalue("catalogue")  # the prescriptions tests' small catalogue (codes ``t-...``)
    doctor = Practitioner.objects.get(user=world.users["doctor"])
    doctor.user.is_mfa_verified = True  # set-up steps, as if past the second factor
    root = world.users["platform_admin"]
    root.is_mfa_verified = True
    factories.account_actions.grant_role(
        root, world.users["pharmacist"], Role.PHARMACIST, organization_id=world.hospital.pk
    )
    consultation = follow_up_consultation(doctor, world.users["patient"], world.patient, "I10")

    def draft(*drugs: str) -> int:
        prescription = prescription_actions.create_prescription(doctor.user, consultation.pk)
        if drugs:
            prescription_actions.set_items(
                doctor.user, prescription.pk, [ItemInput(drug=d, dose="1", frequency="qd", days=7) for d in drugs]
            )
        return prescription.pk

    pending = draft("t-amlodipine-5")
    prescription_actions.sign_prescription(doctor.user, pending)
    return {
        "consultation": consultation.pk,
        "draft": draft(),
        "warned": draft("t-amlodipine-5", "t-nifedipine-30"),
        "signable": draft("t-amlodipine-5"),
        "pending": pending,
    }


RX_ITEMS_BODY = {"items": [{"drug": "t-amlodipine-5", "dose": "1", "frequency": "qd", "days": 7}]}
RX_OVERRIDE = {"rule": "duplicate_class", "subject": "class:0-1", "reason": "换药过渡期"}

PRESCRIPTION_API_CASES = [
    ("get", "/api/drugs?q=amlo", None, ok_for(*LOGGED_IN, default=200)),
    (
        "post",
        "/api/prescriptions",
        {"consultation_id": "{consultation}"},
        ok_for(default=403, doctor=201, doctor_no_mfa=403),  # only the consultation's doctor (R8)
    ),
    ("patch", "/api/prescriptions/{draft}", {"notes": "饭后服用"}, ok_for(default=403, **PRESCRIBER)),
    ("put", "/api/prescriptions/{draft}/items", RX_ITEMS_BODY, ok_for(default=403, **PRESCRIBER)),
    ("post", "/api/prescriptions/{warned}/overrides", RX_OVERRIDE, ok_for(default=403, **PRESCRIBER)),
    ("post", "/api/prescriptions/{signable}/sign", {}, ok_for(default=403, **PRESCRIBER)),
    (
        "post",
        "/api/prescriptions/{pending}/amend",
        {"reason": "调整剂量"},
        ok_for(default=403, doctor=201, doctor_no_mfa=403),
    ),
    ("post", "/api/prescriptions/{pending}/cancel", {"reason": "改为线下"}, ok_for(default=403, **PRESCRIBER)),
    ("get", "/api/doctor/prescriptions", None, ok_for(default=403, **PRESCRIBER)),
    ("get", "/api/prescriptions/mine", None, ok_for(*LOGGED_IN, default=200)),
    ("get", "/api/prescriptions/{pending}", None, ok_for(default=404, **RX_READERS)),
    (
        "post",
        "/api/prescriptions/{pending}/notice",
        {},
        ok_for(default=404, patient=200, doctor_no_mfa=403),  # the patient's side confirms (R16)
    ),
    ("get", "/api/pharmacist/review-queue", None, ok_for(default=403, pharmacist=200)),
    ("post", "/api/prescriptions/{pending}/review", {"decision": "approve"}, ok_for(default=403, pharmacist=200)),
    ("get", "/api/prescriptions/{pending}/verify", None, EVERYONE),  # public: authenticity only
    ("get", "/api/regulator/prescribing-statistics", None, ok_for(default=403, regulator=200)),  # R12
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    PRESCRIPTION_API_CASES,
    ids=[case_id(c) for c in PRESCRIPTION_API_CASES],
)
def test_prescriptions_api_endpoint_by_role(prescribed, world, login_as, actor, method, path, body, expected):
    client = client_for(world, actor, login_as)
    before = prescription_snapshot()
    url = _fill_ids(path, prescribed)
    if body is None:
        response = client.get(url)
    else:
        response = getattr(client, method)(
            url, json.dumps(_fill_ids(body, prescribed)), content_type="application/json"
        )
    assert response.status_code == expected[actor], response.content[:300]
    if response.status_code >= 400:
        assert "error" in response.json()
        assert prescription_snapshot() == before, "a refused request changed data"
    elif method == "get":
        assert prescription_snapshot() == before, "a read changed data"
    else:
        assert prescription_snapshot() != before, "an accepted write changed nothing"


RX_PAGE_READERS = {"patient": 200, "doctor": 200, "doctor_no_mfa": 403, "pharmacist": 200}
RX_DOCTOR_STEP = {"doctor": 302, "doctor_no_mfa": 403}
RX_ITEMS_FORM = {"items-0-drug": "t-amlodipine-5", "items-0-dose": "1", "items-0-frequency": "qd", "items-0-days": "7"}
RX_HEAD_FORM = {"draft-supply_kind": "normal", "draft-valid_days": "1", "draft-notes": "饭后服用"}

PRESCRIPTION_PAGE_CASES = [
    (
        "get",
        "/consultations/{consultation}/prescriptions/new/",
        None,
        pages_ok_for(default=404, patient=403, doctor=200, doctor_no_mfa=403),
    ),
    (
        "post",
        "/consultations/{consultation}/prescriptions/new/",
        {**RX_HEAD_FORM, "draft-idempotency_key": "matrix-draft-0001"},
        pages_ok_for(default=404, patient=403, **RX_DOCTOR_STEP),
    ),
    ("get", "/prescriptions/{draft}/edit/", None, pages_ok_for(default=404, doctor=200, doctor_no_mfa=403)),
    ("post", "/prescriptions/{draft}/head/", RX_HEAD_FORM, pages_ok_for(default=404, **RX_DOCTOR_STEP)),
    ("post", "/prescriptions/{draft}/items/", RX_ITEMS_FORM, pages_ok_for(default=404, **RX_DOCTOR_STEP)),
    ("post", "/prescriptions/{warned}/override/", RX_OVERRIDE, pages_ok_for(default=404, **RX_DOCTOR_STEP)),
    ("post", "/prescriptions/{signable}/sign/", {}, pages_ok_for(default=404, **RX_DOCTOR_STEP)),
    ("post", "/prescriptions/{pending}/amend/", {"reason": "调整剂量"}, pages_ok_for(default=403, **RX_DOCTOR_STEP)),
    ("post", "/prescriptions/{pending}/cancel/", {"reason": "改为线下"}, pages_ok_for(default=403, **RX_DOCTOR_STEP)),
    ("get", "/prescriptions/drugs/?q=amlo", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("get", "/doctor/prescriptions/", None, pages_ok_for(default=403, **PRESCRIBER)),
    ("get", "/prescriptions/", None, pages_ok_for(*LOGGED_IN, default=200)),
    ("get", "/prescriptions/{pending}/", None, pages_ok_for(default=404, **RX_PAGE_READERS)),
    (
        "post",
        "/prescriptions/{pending}/notice/",
        {},
        pages_ok_for(default=404, patient=302, doctor_no_mfa=403),
    ),
    ("get", "/prescriptions/{pending}/pdf/", None, pages_ok_for(default=404, **RX_PAGE_READERS)),
    ("get", "/pharmacist/prescriptions/", None, pages_ok_for(default=403, pharmacist=200)),
    ("get", "/pharmacist/prescriptions/{pending}/", None, pages_ok_for(default=403, pharmacist=200)),
    (
        "post",
        "/pharmacist/prescriptions/{pending}/",
        {"decision": "approve"},
        pages_ok_for(default=403, pharmacist=302),
    ),
    ("get", "/verify/prescription/{pending}/", None, EVERYONE),  # public: authenticity only
    ("get", "/regulator/prescribing-statistics/", None, pages_ok_for(default=403, regulator=200)),  # R12
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    PRESCRIPTION_PAGE_CASES,
    ids=[case_id(c) for c in PRESCRIPTION_PAGE_CASES],
)
def test_prescriptions_page_by_role(prescribed, world, login_as, actor, method, path, body, expected):
    client = client_for(world, actor, login_as)
    before = prescription_snapshot()
    url = _fill_ids(path, prescribed)
    response = client.get(url) if method == "get" else client.post(url, _fill_ids(body, prescribed))
    assert response.status_code == expected[actor], (actor, response.status_code)
    if actor == "anonymous" and response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/")
    changed = prescription_snapshot() != before
    assert changed == (method == "post" and response.status_code == 302 and actor != "anonymous")


def test_the_prescriptions_matrix_covers_every_endpoint_and_page():
    """A new endpoint or page of the prescriptions app fails here until it has its rows above."""
    cases = [(method.upper(), path.split("?")[0]) for method, path, _, _ in PRESCRIPTION_API_CASES]
    routes = [
        (method, f"/api{re.sub(r'{int:', '{', route)}")
        for route, view in prescriptions_api.router.path_operations.items()
        for operation in view.operations
        for method in operation.methods
    ]
    assert len(routes) == 16
    missing = [r for r in routes if not any(m == r[0] and _route_pattern(r[1]).match(p) for m, p in cases)]
    assert missing == []
    ids = dict.fromkeys(("consultation", "draft", "warned", "signable", "pending"), 1)
    covered = {resolve(_fill_ids(path, ids).split("?")[0]).url_name for _, path, _, _ in PRESCRIPTION_PAGE_CASES}
    assert {url.name for url in prescriptions_urls.urlpatterns} - covered == set()
