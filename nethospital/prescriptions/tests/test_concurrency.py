"""Starting a draft under real concurrency on PostgreSQL: twin requests with one Idempotency-Key
(a double click, a client retry) make one draft, also when they arrive at the same instant, and a
key raced for two consultations makes one draft and one refusal, never a server error. Runs in
the PostgreSQL pass of ``make test`` (SQLite serialises every writer)."""

from __future__ import annotations

from collections import Counter

import pytest

from nethospital.core import clock
from nethospital.prescriptions import actions
from nethospital.prescriptions.models import Prescription
from nethospital.prescriptions.tests.conftest import NOON, follow_up_consultation
from nethospital.scheduling.tests.test_concurrency import run_together
from nethospital.testing import factories

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def icd10_codes(transactional_db):  # type: ignore[no-untyped-def]
    factories.icd10_subset()


def test_ten_twin_requests_with_one_key_make_one_draft(clinic):
    doctor = clinic["doctor"].user
    consultation_id = clinic["consultation"].pk

    def attempt(_index: int) -> tuple[int, bool]:
        with clock.frozen(NOON):
            result = actions.create_prescription_once(doctor, consultation_id, idempotency_key="twin-key-0001")
        return result.prescription.pk, result.created

    outcomes = run_together(10, attempt)
    assert [kind for kind, _value in outcomes] == ["ok"] * 10, outcomes
    assert len({pk for _kind, (pk, _created) in outcomes}) == 1
    assert Counter(created for _kind, (_pk, created) in outcomes) == {True: 1, False: 9}
    assert Prescription.objects.count() == 1


def test_one_key_raced_for_two_consultations_makes_one_draft(clinic):
    doctor = clinic["doctor"]
    second = follow_up_consultation(doctor, clinic["patient_user"], clinic["patient"], "I10")
    consultations = [clinic["consultation"].pk, second.pk]

    def attempt(index: int) -> int:
        with clock.frozen(NOON):
            return actions.create_prescription(doctor.user, consultations[index], idempotency_key="raced-key-0001").pk

    outcomes = run_together(2, attempt)
    assert sorted(kind for kind, _value in outcomes) == ["ok", "refused"], outcomes
    assert [value for kind, value in outcomes if kind == "refused"] == ["idempotency_key_reused"]
    assert Prescription.objects.count() == 1
