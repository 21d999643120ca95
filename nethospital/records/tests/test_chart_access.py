"""Acceptance: a doctor without MFA cannot open any patient data; with MFA and verification they
can; suspending them stops them at once. Every read and refusal is audited (R5, R6, R23)."""

import json

import pytest

from nethospital.core.models import AuditEntry
from nethospital.directory.choices import VerificationStatus
from nethospital.records.actions import register_patient_at_hospital
from nethospital.testing import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered_patient(patient_user, city_hospital):
    patient = factories.patient_of(patient_user)
    register_patient_at_hospital(patient_user, patient, city_hospital)
    return patient


def chart(client, patient):
    return client.get(f"/api/patients/{patient.pk}")


def test_doctor_without_mfa_is_refused_and_the_refusal_is_audited(doctor, registered_patient, login_as):
    response = chart(login_as(doctor.user, mfa=False), registered_patient)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_required"
    entry = AuditEntry.objects.filter(actor_id=doctor.user_id).last()
    assert (entry.action, entry.outcome, entry.patient_id) == ("patient.chart.view", "denied", registered_patient.pk)


def test_doctor_with_mfa_opens_the_chart_and_the_patient_sees_who_looked(
    doctor, registered_patient, patient_user, login_as
):
    response = chart(login_as(doctor.user, mfa=True), registered_patient)
    assert response.status_code == 200
    body = response.json()
    assert body["patient"]["legal_name"] == registered_patient.legal_name
    assert body["patient"]["id_number_masked"] == registered_patient.id_number_masked
    assert len(body["registrations"]) == 1
    log = login_as(patient_user).get(f"/api/patients/{registered_patient.pk}/access-log").json()
    doctor_rows = [row for row in log if not row["is_self"]]
    assert [(r["who"], r["outcome"], r["action"]) for r in doctor_rows] == [
        (doctor.legal_name, "success", "patient.chart.view")
    ]


def test_suspending_a_doctor_stops_them_at_their_next_request(doctor, registered_patient, city_hospital, login_as):
    doctor_client = login_as(doctor.user, mfa=True)
    assert chart(doctor_client, registered_patient).status_code == 200
    admin = factories.hospital_admin(city_hospital)
    admin_client = login_as(admin, mfa=True)
    suspended = admin_client.post(
        f"/api/directory/admin/practitioners/{doctor.pk}/status",
        data=json.dumps({"status": VerificationStatus.SUSPENDED, "reason": "执业证书被吊销"}),
        content_type="application/json",
    )
    assert suspended.status_code == 200, suspended.content
    assert suspended.json()["verification_status"] == "suspended"
    refused = chart(doctor_client, registered_patient)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "practitioner_suspended"


def test_unverified_doctor_with_mfa_is_refused(city_hospital, internet_hospital, registered_patient, login_as):
    pending = factories.doctor(city_hospital, status=VerificationStatus.PENDING)
    response = chart(login_as(pending.user, mfa=True), registered_patient)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "practitioner_not_verified")


def test_doctor_cannot_open_a_patient_not_registered_at_their_hospital(doctor, patient_user, login_as):
    stranger = factories.patient_of(patient_user)  # not registered anywhere
    response = chart(login_as(doctor.user, mfa=True), stranger)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")


def test_another_patient_gets_not_found_and_family_holder_gets_the_chart(registered_patient, login_as):
    outsider = factories.patient_user()
    response = chart(login_as(outsider), registered_patient)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert login_as(registered_patient.account).get(f"/api/patients/{registered_patient.pk}").status_code == 200


def test_anonymous_gets_a_structured_401(registered_patient, client):
    response = chart(client, registered_patient)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "login_required"
