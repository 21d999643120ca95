"""``nethospital demo``: the promised content, made through the actions, valid, never leaking an
identity number, and idempotent."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import Client

from nethospital.accounts import identity
from nethospital.accounts.choices import Relationship, Role
from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.core import clock
from nethospital.core.audit import verify_chain
from nethospital.core.models import AuditEntry
from nethospital.demo import data
from nethospital.directory.choices import OrganizationKind, Profession, VerificationStatus
from nethospital.directory.models import Department, Organization, Practitioner
from nethospital.directory.rules import can_practise
from nethospital.records.access import access_patient_chart
from nethospital.records.models import Registration
from nethospital.scheduling.choices import Modality
from nethospital.scheduling.models import ScheduleSession
from nethospital.scheduling.search import SearchQuery, free_slots, search_doctors
from nethospital.testing.totp import code_for, enable_totp

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def test_the_demo_has_the_promised_organisations_staff_and_patients():
    run_demo()

    city = Organization.objects.get(name_en="First Affiliated Hospital of East China Medical University")
    hospitals = Organization.objects.filter(kind=OrganizationKind.HOSPITAL)
    assert sorted(tier or 0 for tier in hospitals.values_list("tier", flat=True)) == [1, 2, 3]
    online = Organization.objects.get(kind=OrganizationKind.INTERNET_HOSPITAL)
    assert online.attached_to == city  # R24
    assert Organization.objects.filter(kind=OrganizationKind.PHARMACY).count() == 2
    stations = Organization.objects.filter(kind=OrganizationKind.SERVICE_STATION)
    assert stations.count() == 3
    assert {s.parent.tier for s in stations} == {1, 2}  # under the township centre or the county hospital
    assert Department.objects.filter(organization=city).count() == 10
    assert Department.objects.get(organization=city, code="paediatrics").specialty.is_paediatric

    doctors = Practitioner.objects.filter(profession=Profession.PHYSICIAN)
    assert doctors.filter(verification_status=VerificationStatus.VERIFIED).count() == 23
    assert doctors.filter(verification_status=VerificationStatus.PENDING).count() == 1
    suspended = doctors.get(verification_status=VerificationStatus.SUSPENDED)
    assert suspended.status_reason == data.SUSPENSION_REASON
    assert doctors.filter(primary_institution=city).count() == 20
    assert all(d.institution_consent and d.specialties.exists() for d in doctors)
    for doctor in doctors.filter(primary_institution=city):  # also a doctor of the internet hospital
        assert doctor.user.organisation_ids(Role.DOCTOR) == {city.pk, online.pk}

    pharmacists = Practitioner.objects.filter(profession=Profession.PHARMACIST)
    assert {p.primary_institution.kind for p in pharmacists} == {OrganizationKind.PHARMACY}
    assert pharmacists.count() == 2

    def holders(role: str) -> set[tuple[str, str]]:
        grants = RoleGrant.objects.filter(role=role, revoked_at__isnull=True).select_related("organization")
        return {(g.user.email, g.organization.kind if g.organization else "") for g in grants}

    assert holders(Role.PHARMACIST) == {(data.email("shen.hui"), "pharmacy"), (data.email("cao.wen"), "pharmacy")}
    assert len(holders(Role.PHARMACY_STAFF)) == 2 and len(holders(Role.COURIER)) == 2
    assert {kind for _, kind in holders(Role.STATION_OPERATOR)} == {"service_station"}
    assert len(holders(Role.STATION_OPERATOR)) == 3
    assert holders(Role.REGULATOR) == {(data.email("regulator"), "")}
    assert holders(Role.PLATFORM_ADMIN) == {(data.email("platform"), "")}
    platform = User.objects.get(email=data.email("platform"))
    assert platform.is_staff and platform.is_superuser
    assert {e for e, _ in holders(Role.HOSPITAL_ADMIN)} == {data.email("admin.city"), data.email("admin.county")}

    assert Patient.objects.filter(account__isnull=False).count() == 50
    assert RoleGrant.objects.filter(role=Role.PATIENT).count() == 50
    members = FamilyLink.objects.filter(ended_at__isnull=True).select_related("patient")
    assert members.count() == 9
    young = [link for link in members if link.patient.age < 6]
    assert len(young) == 4 and all(link.is_guardian for link in young)  # R3
    assert sum(1 for link in members if link.relationship == Relationship.PARENT and link.patient.age >= 75) == 4
    # Every patient, family members included, is registered at the city hospital.
    assert Registration.objects.filter(hospital=city).count() == Patient.objects.count() == 59
    assert verify_chain().is_intact


def test_doctors_pass_or_fail_r5_as_labelled_and_staff_have_the_second_factor():
    run_demo()

    expected = {spec.email: spec.status == VerificationStatus.VERIFIED for spec in data.DOCTORS}
    practitioners = Practitioner.objects.filter(profession=Profession.PHYSICIAN).select_related("user")
    assert {p.user.email: can_practise(p) for p in practitioners} == expected
    assert list(expected.values()).count(False) == 2

    with_totp = set(Authenticator.objects.filter(type=Authenticator.Type.TOTP).values_list("user__email", flat=True))
    needs_mfa = set(
        RoleGrant.objects.filter(
            role__in=[Role.DOCTOR, Role.PHARMACIST, Role.HOSPITAL_ADMIN, Role.REGULATOR, Role.PLATFORM_ADMIN]
        ).values_list("user__email", flat=True)
    )
    assert needs_mfa - with_totp == {data.email("yang.fan")}  # the one left to show the set-up flow
    assert with_totp <= needs_mfa


def test_identity_numbers_are_valid_and_never_stored_in_clear():
    run_demo()

    numbers = data.all_identity_numbers(clock.today())
    assert len(numbers) == len(set(numbers)) == 59
    parsed = [identity.parse(number) for number in numbers]  # raises on an invalid number
    assert {p.region_code[:2] for p in parsed} == {"33"}
    stored = {p.id_number_hash: p for p in Patient.objects.all()}
    assert set(stored) == {identity.keyed_hash(n) for n in numbers}
    for number in numbers:
        patient = stored[identity.keyed_hash(number)]
        assert identity.decrypt(patient.id_number_encrypted) == number
        assert patient.id_number_masked == identity.mask(number)

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    everything = dump.getvalue()
    assert '"accounts.patient"' in everything
    leaked = [number for number in numbers if number in everything or number[:17] in everything]
    assert leaked == []


def test_a_second_run_creates_nothing_and_prints_the_logins_again():
    first = run_demo()
    before = row_counts()

    second = run_demo()

    assert row_counts() == before
    assert "Demo data seeded" in first
    assert "nothing created" in second
    for output in (first, second):
        assert data.DEMO_PASSWORD in output and data.TOTP_SECRET in output
        assert data.email("chen.zhiyuan") in output and data.email("patient01") in output


def test_a_demo_doctor_signs_in_with_the_printed_password_and_a_totp_code(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    run_demo()
    client = Client()
    address = data.email("chen.zhiyuan")

    response = client.post("/accounts/login/", {"login": address, "password": data.DEMO_PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/authenticate")
    client.post("/accounts/2fa/authenticate/", {"code": code_for(data.TOTP_SECRET)})

    me = client.get("/api/me").json()
    assert (me["requires_mfa"], me["mfa_verified"]) == (True, True)
    # The cheap demo hash was upgraded to full strength on this first login.
    assert User.objects.get(email=address).password.startswith("pbkdf2_sha256$1000000$")


def test_seeded_chart_openings_show_in_the_patients_access_log():
    run_demo()
    patient01 = Patient.objects.get(account__email=data.email("patient01"))
    readers = set(
        AuditEntry.objects.filter(patient_id=patient01.pk, action="patient.chart.view").values_list(
            "actor_id", flat=True
        )
    )
    assert readers == set(
        User.objects.filter(email__in=[data.email("chen.zhiyuan"), data.email("wang.jianguo")]).values_list(
            "pk", flat=True
        )
    )
    # A doctor of the city hospital, past the second factor, may open any demo patient's chart.
    doctor = User.objects.get(email=data.email("zhou.min"))
    doctor.is_mfa_verified = True
    assert access_patient_chart(doctor, patient01.pk) == patient01


def test_verified_doctors_have_free_slots_of_every_visit_type_in_the_coming_week():
    output = run_demo()

    doctors = Practitioner.objects.filter(profession=Profession.PHYSICIAN)
    verified = doctors.filter(verification_status=VerificationStatus.VERIFIED)
    city = Organization.objects.get(name_en="First Affiliated Hospital of East China Medical University")
    online = Organization.objects.get(kind=OrganizationKind.INTERNET_HOSPITAL)
    sessions = ScheduleSession.objects.all()
    assert f"{sessions.count()} clinic sessions" in output
    # Every verified doctor has 2-4 weekly sessions, made by an admin of the doctor's hospital
    # through the action (audited); the pending and the suspended doctor have none (R5).
    for doctor in verified:
        mine = sessions.filter(practitioner=doctor)
        assert 2 <= mine.count() <= 4, doctor.legal_name
        assert all(s.created_by.has_role(Role.HOSPITAL_ADMIN) for s in mine)
    assert not sessions.exclude(practitioner__in=verified).exists()
    assert AuditEntry.objects.filter(action="schedule.session.create").count() == sessions.count()
    # Video and text visits of the city hospital's doctors run in its internet hospital (R24).
    city_online = sessions.filter(practitioner__primary_institution=city).exclude(modality=Modality.IN_PERSON)
    assert set(city_online.values_list("hospital_id", flat=True)) == {online.pk}

    # Whatever the day it runs, the next 7 days have free, released slots of each visit type, and
    # every verified doctor is found by "a free slot within 7 days".
    soon = free_slots().filter(starts_at__lte=clock.now() + dt.timedelta(days=7))
    assert set(soon.values_list("modality", flat=True)) == {Modality.IN_PERSON, Modality.VIDEO, Modality.TEXT}
    found = search_doctors(SearchQuery(free_within_days=7), limit=100)
    assert {hit.practitioner.pk for hit in found} == set(verified.values_list("pk", flat=True))
    for modality in Modality.values:
        assert search_doctors(SearchQuery(modality=modality, free_within_days=7), limit=100)
    assert verify_chain().is_intact


def test_demo_totp_prints_the_current_code_of_demo_accounts_only():
    run_demo()
    out = io.StringIO()
    before = code_for(data.TOTP_SECRET)
    call_command("demo_totp", data.email("huang.jing"), stdout=out)
    assert out.getvalue().split()[0] in {before, code_for(data.TOTP_SECRET)}

    with pytest.raises(CommandError, match="no TOTP authenticator"):
        call_command("demo_totp", data.email("yang.fan"))
    enable_totp(User.objects.get(email=data.email("yang.fan")), "ONSWG4TFOQFA" * 2)
    with pytest.raises(CommandError, match="does not use the published demo secret"):
        call_command("demo_totp", data.email("yang.fan"))


def test_the_demo_is_refused_in_production(settings):
    settings.IS_PRODUCTION = True
    with pytest.raises(CommandError, match="never seeded in production"):
        call_command("demo")
    assert not User.objects.exists()
