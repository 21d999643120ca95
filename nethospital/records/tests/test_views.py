"""Chart and access-log pages through Django's test client: exact statuses for every kind of
visitor (R6, R23), and refusals that leave only the audit entry behind."""

from __future__ import annotations

import pytest
from django.test import Client

from nethospital.core.models import AuditEntry
from nethospital.directory.actions import change_verification
from nethospital.directory.choices import VerificationStatus
from nethospital.records.actions import register_patient_at_hospital
from nethospital.records.models import Registration
from nethospital.testing import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered_patient(patient_user, city_hospital):
    patient = factories.patient_of(patient_user)
    register_patient_at_hospital(patient_user, patient, city_hospital)
    return patient


def chart(client: Client, patient):  # type: ignore[no-untyped-def]
    return client.get(f"/patients/{patient.pk}/")


def test_the_patient_opens_their_own_chart_with_the_number_masked(registered_patient, login_as):
    response = chart(login_as(registered_patient.account), registered_patient)
    assert response.status_code == 200
    page = response.content.decode()
    assert registered_patient.id_number_masked in page
    assert registered_patient.legal_name in page
    assert Registration.objects.get(patient=registered_patient).medical_record_number in page


def test_a_visitor_is_sent_to_log_in(registered_patient):
    response = chart(Client(), registered_patient)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/patients/")


def test_another_patient_gets_not_found(registered_patient, login_as):
    assert chart(login_as(factories.patient_user()), registered_patient).status_code == 404


def test_an_unknown_patient_is_not_found(login_as, patient_user):
    assert login_as(patient_user).get("/patients/999999/").status_code == 404


def test_a_doctor_without_mfa_is_refused_with_the_mfa_page(registered_patient, doctor, login_as):
    response = chart(login_as(doctor.user), registered_patient)
    assert response.status_code == 403
    page = response.content.decode()
    assert 'data-code="mfa_required"' in page
    assert 'href="/accounts/2fa/"' in page
    assert registered_patient.legal_name not in page


def test_a_doctor_with_mfa_opens_the_chart_and_the_patient_sees_it_in_the_log(registered_patient, doctor, login_as):
    assert chart(login_as(doctor.user, mfa=True), registered_patient).status_code == 200
    log = login_as(registered_patient.account).get("/me/access-log/")
    assert log.status_code == 200
    assert doctor.legal_name in log.content.decode()


def test_a_doctor_of_another_hospital_is_refused(registered_patient, login_as):
    other = factories.doctor(factories.hospital(name_zh="其他医院", name_en="Other Hospital"))
    assert chart(login_as(other.user, mfa=True), registered_patient).status_code == 403


def test_a_suspended_doctor_is_refused(registered_patient, doctor, city_hospital, login_as):
    admin = factories.hospital_admin(city_hospital)
    change_verification(admin, doctor.pk, VerificationStatus.SUSPENDED, reason="执照审查")
    response = chart(login_as(doctor.user, mfa=True), registered_patient)
    assert response.status_code == 403
    assert 'data-code="practitioner_suspended"' in response.content.decode()


def test_a_hospital_admin_does_not_open_charts(registered_patient, city_hospital, login_as):
    admin = factories.hospital_admin(city_hospital)
    assert chart(login_as(admin, mfa=True), registered_patient).status_code == 404


def test_every_refusal_is_audited(registered_patient, doctor, login_as):
    before = AuditEntry.objects.filter(patient_id=registered_patient.pk, outcome="denied").count()
    chart(login_as(doctor.user), registered_patient)
    assert AuditEntry.objects.filter(patient_id=registered_patient.pk, outcome="denied").count() == before + 1


def test_the_access_log_of_a_patient_is_only_for_those_who_act_for_them(registered_patient, doctor, login_as):
    url = f"/patients/{registered_patient.pk}/access-log/"
    assert login_as(registered_patient.account).get(url).status_code == 200
    assert login_as(factories.patient_user()).get(url).status_code == 404
    assert login_as(doctor.user, mfa=True).get(url).status_code == 404
    assert login_as(registered_patient.account).get("/patients/999999/access-log/").status_code == 404
    assert Client().get(url).status_code == 302


def test_staff_without_identity_see_an_empty_own_access_log(login_as):
    response = login_as(factories.staff_user()).get("/me/access-log/")
    assert response.status_code == 200


def test_home_lists_registered_patients_only_to_a_strongly_authenticated_doctor(registered_patient, doctor, login_as):
    with_mfa = login_as(doctor.user, mfa=True).get("/")
    assert with_mfa.status_code == 200
    assert f'href="/patients/{registered_patient.pk}/"' in with_mfa.content.decode()
    without = login_as(doctor.user).get("/").content.decode()
    assert f'href="/patients/{registered_patient.pk}/"' not in without
    assert 'id="mfa-banner"' in without


def test_chart_pages_refuse_writes(registered_patient, login_as):
    client = login_as(registered_patient.account)
    assert client.post(f"/patients/{registered_patient.pk}/").status_code == 405
