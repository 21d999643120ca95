"""Every API endpoint and page built so far, tried by every role (anonymous included): the answer
is the expected status, and a refused request changes nothing (CONVENTIONS: permissions)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from django.test import Client

from nethospital.accounts.choices import Role
from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.directory.choices import Profession, Title, VerificationStatus
from nethospital.directory.models import Organization, Practitioner, VerificationEvent
from nethospital.records.actions import register_patient_at_hospital
from nethospital.records.models import Registration
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
