"""The verification queue through Django's test client (R5): exact statuses, and a refused change
leaves the practitioner and its history as they were."""

from __future__ import annotations

import pytest
from django.test import Client

from nethospital.directory.choices import VerificationStatus
from nethospital.directory.models import Practitioner, VerificationEvent
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
QUEUE = "/hospital-admin/practitioners/"


@pytest.fixture
def admin(city_hospital):
    return factories.hospital_admin(city_hospital)


@pytest.fixture
def pending(city_hospital, internet_hospital):
    return factories.doctor(city_hospital, status=VerificationStatus.PENDING, legal_name="赵敏")


def status_url(practitioner: Practitioner) -> str:
    return f"{QUEUE}{practitioner.pk}/status/"


def snapshot(practitioner: Practitioner) -> tuple[str, int]:
    practitioner.refresh_from_db()
    return practitioner.verification_status, VerificationEvent.objects.filter(practitioner=practitioner).count()


def test_the_queue_shows_the_admins_practitioners(admin, pending, login_as):
    response = login_as(admin, mfa=True).get(QUEUE)
    assert response.status_code == 200
    page = response.content.decode()
    assert pending.licence_number in page and f'id="practitioner-{pending.pk}"' in page


def test_the_queue_filters_by_status(admin, pending, doctor, login_as):
    client = login_as(admin, mfa=True)
    page = client.get(QUEUE, {"status": "pending"}).content.decode()
    assert f'id="practitioner-{pending.pk}"' in page
    assert f'id="practitioner-{doctor.pk}"' not in page
    assert client.get(QUEUE, {"status": "nonsense"}).status_code == 200


def test_the_queue_needs_mfa_login_and_the_admin_role(admin, pending, patient_user, login_as):
    no_mfa = login_as(admin).get(QUEUE)
    assert no_mfa.status_code == 403
    assert 'data-code="mfa_required"' in no_mfa.content.decode()
    assert login_as(patient_user).get(QUEUE).status_code == 403
    anonymous = Client().get(QUEUE)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_an_admin_of_another_hospital_does_not_see_the_practitioner(pending, login_as):
    other = factories.hospital_admin(factories.hospital(name_zh="其他医院", name_en="Other Hospital"))
    page = login_as(other, mfa=True).get(QUEUE).content.decode()
    assert f'id="practitioner-{pending.pk}"' not in page


def test_verifying_a_pending_doctor(admin, pending, login_as):
    response = login_as(admin, mfa=True).post(status_url(pending), {"to_status": "verified", "reason": ""})
    assert response.status_code == 302
    assert response["Location"] == f"{QUEUE}#practitioner-{pending.pk}"
    assert snapshot(pending) == ("verified", 1)


def test_with_htmx_only_the_row_comes_back(admin, pending, login_as):
    response = login_as(admin, mfa=True).post(status_url(pending), {"to_status": "verified"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith("<article") and 'data-status="verified"' in page
    assert "<html" not in page


def test_rejecting_without_a_reason_is_refused_and_changes_nothing(admin, pending, login_as):
    client = login_as(admin, mfa=True)
    before = snapshot(pending)
    response = client.post(status_url(pending), {"to_status": "rejected", "reason": "  "})
    assert response.status_code == 400
    assert f'id="practitioner-{pending.pk}"' in response.content.decode()
    htmx = client.post(status_url(pending), {"to_status": "rejected"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400 and htmx.content.decode().lstrip().startswith("<article")
    assert snapshot(pending) == before


def test_a_change_that_is_not_allowed_is_a_conflict(admin, pending, login_as):
    before = snapshot(pending)
    response = login_as(admin, mfa=True).post(status_url(pending), {"to_status": "suspended", "reason": "x"})
    assert response.status_code == 409
    assert snapshot(pending) == before


def test_an_unknown_status_is_refused(admin, pending, login_as):
    before = snapshot(pending)
    assert login_as(admin, mfa=True).post(status_url(pending), {"to_status": "deleted"}).status_code == 422
    assert snapshot(pending) == before


def test_verifying_without_the_institutions_consent_is_refused(admin, city_hospital, login_as):
    no_consent = factories.doctor(city_hospital, status=VerificationStatus.PENDING, consent=False)
    before = snapshot(no_consent)
    response = login_as(admin, mfa=True).post(status_url(no_consent), {"to_status": "verified"})
    assert response.status_code == 403
    assert snapshot(no_consent) == before


def test_others_cannot_change_a_verification(admin, pending, patient_user, doctor, login_as):
    before = snapshot(pending)
    data = {"to_status": "verified"}
    other_admin = factories.hospital_admin(factories.hospital(name_zh="其他医院", name_en="Other Hospital"))
    assert login_as(admin).post(status_url(pending), data).status_code == 403  # no MFA in this session
    assert login_as(other_admin, mfa=True).post(status_url(pending), data).status_code == 403
    assert login_as(patient_user).post(status_url(pending), data).status_code == 403
    assert login_as(doctor.user, mfa=True).post(status_url(pending), data).status_code == 403
    assert Client().post(status_url(pending), data).status_code == 302
    assert login_as(admin, mfa=True).get(status_url(pending)).status_code == 405
    assert snapshot(pending) == before


def test_an_unknown_practitioner_is_not_found(admin, login_as):
    assert login_as(admin, mfa=True).post(f"{QUEUE}999999/status/", {"to_status": "verified"}).status_code == 404
    assert login_as(admin, mfa=True).post(f"{QUEUE}999999/status/", {"to_status": "bogus"}).status_code == 404


def test_home_shows_the_admin_how_many_wait(admin, pending, login_as):
    page = login_as(admin, mfa=True).get("/").content.decode()
    assert 'id="admin-section"' in page and f"{QUEUE}?status=pending" in page
