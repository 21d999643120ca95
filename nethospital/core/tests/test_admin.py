import pytest

from nethospital.accounts.models import User
from nethospital.core.models import AuditEntry
from nethospital.testing import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return User.objects.create_superuser(email="ops@example.org", password=factories.DEFAULT_PASSWORD)


def test_back_office_needs_a_second_factor(superuser, login_as):
    assert login_as(superuser, mfa=False).get("/admin/").status_code == 302  # sent to the admin login
    assert login_as(superuser, mfa=True).get("/admin/").status_code == 200


def test_opening_a_patient_in_the_back_office_is_audited_and_shows_only_the_masked_number(
    superuser, patient_user, login_as
):
    patient = factories.patient_of(patient_user)
    response = login_as(superuser, mfa=True).get(f"/admin/accounts/patient/{patient.pk}/change/")
    assert response.status_code == 200
    content = response.content.decode()
    assert patient.id_number_masked in content
    assert patient.id_number_encrypted not in content
    entry = AuditEntry.objects.filter(actor_id=superuser.pk).last()
    assert (entry.action, entry.patient_id, entry.detail) == ("patient.chart.view", patient.pk, {"via": "admin"})


def test_the_audit_trail_cannot_be_edited_or_deleted_in_the_back_office(superuser, patient_user, login_as):
    entry = AuditEntry.objects.first()
    client = login_as(superuser, mfa=True)
    assert client.get(f"/admin/core/auditentry/{entry.pk}/delete/").status_code == 403
    client.post(f"/admin/core/auditentry/{entry.pk}/change/", {"action": "forged"})
    entry_after = AuditEntry.objects.get(pk=entry.pk)
    assert entry_after.action == entry.action
