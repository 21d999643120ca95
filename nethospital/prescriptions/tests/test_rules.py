"""Each prescribing rule with its refusal reason, at the action level (R1, R8-R16), clock injected."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Role, Sex
from nethospital.accounts.identity import make_number
from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry
from nethospital.prescriptions import actions, signing
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.models import Prescription, PrescriptionItem
from nethospital.prescriptions.tests.conftest import NOON, follow_up_consultation
from nethospital.testing import factories

pytestmark = pytest.mark.django_db


def code_of(call) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value.code


def draft(clinic, **fields):
    return actions.create_prescription(clinic["doctor"].user, clinic["consultation"].pk, **fields)


def rules_of(result) -> dict[str, str]:
    return {f.rule: f.severity for f in result.findings}


def item(drug: str, dose="1", frequency="qd", days=7, **extra) -> ItemInput:
    return ItemInput(drug=drug, dose=dose, frequency=frequency, days=days, **extra)


def sign_refusal(clinic, rx) -> DomainError:
    with pytest.raises(DomainError) as caught:
        actions.sign_prescription(clinic["doctor"].user, rx.pk)
    return caught.value


# --- R1 / R8: who may prescribe, from what ---------------------------------------------------------
def test_advice_only_consultation_never_leads_to_a_prescription(clinic):
    with clock.frozen(NOON):
        advice = follow_up_consultation(clinic["doctor"], clinic["patient_user"], clinic["patient"], first_visit=True)
        assert code_of(lambda: actions.create_prescription(clinic["doctor"].user, advice.pk)) == (
            "advice_only_no_prescription"
        )
        assert not Prescription.objects.filter(consultation=advice).exists()


def test_only_the_treating_doctor_with_mfa_prescribes(clinic, city_hospital):
    with clock.frozen(NOON):
        colleague = factories.doctor(city_hospital, legal_name="赵医生", admin=clinic["admin"])
        colleague.user.is_mfa_verified = True
        assert code_of(lambda: actions.create_prescription(colleague.user, clinic["consultation"].pk)) == (
            "not_treating_doctor"
        )
        clinic["doctor"].user.is_mfa_verified = False
        assert code_of(lambda: draft(clinic)) == "mfa_required"
        assert not Prescription.objects.exists()


# --- R11 / R17: controlled classes ------------------------------------------------------------------
def test_controlled_drug_is_refused_and_cannot_be_overridden(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-morphine-10", days=3)])
        assert rules_of(result)["controlled"] == "refusal"
        message = next(f.message for f in result.findings if f.rule == "controlled")
        assert "R11" in message
        assert code_of(
            lambda: actions.override_warning(clinic["doctor"].user, rx.pk, "controlled", "item:0", "pain")
        ) == ("rule_not_overridable")
        assert sign_refusal(clinic, rx).code == "prescription_blocked"
        rx.refresh_from_db()
        assert rx.status == PrescriptionStatus.DRAFT and not rx.signature


# --- R13: days of supply ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("supply_kind", "days", "reason", "expected"),
    [
        ("normal", 7, "", None),
        ("normal", 8, "", "days_of_supply"),
        ("emergency", 3, "", None),
        ("emergency", 4, "", "days_of_supply"),
        ("chronic", 30, "", "supply_reason"),
        ("chronic", 30, "稳定期高血压", None),
        ("chronic", 31, "稳定期高血压", "days_of_supply"),
        ("long", 84, "长期处方：病情稳定", None),
        ("long", 85, "长期处方：病情稳定", "days_of_supply"),
    ],
)
def test_days_of_supply_limits(clinic, supply_kind, days, reason, expected):
    with clock.frozen(NOON):
        rx = draft(clinic, supply_kind=supply_kind, supply_reason=reason)
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amlodipine-5", days=days)])
        refusals = {f.rule for f in result.findings if f.severity == "refusal"}
        if expected is None:
            assert refusals == set()
            assert actions.sign_prescription(clinic["doctor"].user, rx.pk).status == PrescriptionStatus.PENDING_REVIEW
        else:
            assert expected in refusals
            assert sign_refusal(clinic, rx).code == "prescription_blocked"


def test_longer_supply_needs_a_chronic_diagnosis(clinic):
    with clock.frozen(NOON):
        acute = follow_up_consultation(clinic["doctor"], clinic["patient_user"], clinic["patient"], "J06.9")
        rx = actions.create_prescription(
            clinic["doctor"].user, acute.pk, supply_kind="chronic", supply_reason="患者要求"
        )
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amlodipine-5", days=20)])
        assert rules_of(result)["supply_not_chronic"] == "refusal"


# --- allergies, duplicates, interactions, maximum dose ---------------------------------------------
def test_allergy_warning_blocks_until_overridden_with_a_reason(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amoxicillin-500", frequency="tid", days=5)])
        allergy = next(f for f in result.findings if f.rule == "allergy")
        assert allergy.severity == "warning" and "青霉素" in allergy.message
        assert sign_refusal(clinic, rx).code == "prescription_blocked"
        assert code_of(
            lambda: actions.override_warning(clinic["doctor"].user, rx.pk, "allergy", allergy.subject, "")
        ) == ("override_reason_required")
        actions.override_warning(clinic["doctor"].user, rx.pk, "allergy", allergy.subject, "皮试阴性，既往耐受")
        signed = actions.sign_prescription(clinic["doctor"].user, rx.pk)
        assert signed.status == PrescriptionStatus.PENDING_REVIEW
        assert signed.overrides.get().reason == "皮试阴性，既往耐受"


def test_changing_items_withdraws_overrides_and_keeps_the_old_list(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amoxicillin-500", frequency="tid", days=5)])
        subject = next(f.subject for f in result.findings if f.rule == "allergy")
        actions.override_warning(clinic["doctor"].user, rx.pk, "allergy", subject, "耐受")
        again = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amoxicillin-500", frequency="bid", days=5)])
        assert next(f for f in again.findings if f.rule == "allergy").overridden is False
        assert PrescriptionItem.all_objects.filter(prescription=rx).count() == 2
        assert rx.items.count() == 1


def test_duplicate_ingredient_and_class_are_warnings(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        result = actions.set_items(
            clinic["doctor"].user,
            rx.pk,
            [item("t-amlodipine-5"), item("t-amlodipine-10"), item("t-nifedipine-30")],
        )
        found = rules_of(result)
        assert found["duplicate_ingredient"] == "warning"
        assert found["duplicate_class"] == "warning"


def test_interactions_contraindicated_is_refused_serious_is_a_warning(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        result = actions.set_items(
            clinic["doctor"].user, rx.pk, [item("t-simvastatin-20"), item("t-clarithromycin-250", frequency="bid")]
        )
        interaction = next(f for f in result.findings if f.rule == "interaction")
        assert interaction.severity == "refusal" and "横纹肌溶解" in interaction.message
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-warfarin-3"), item("t-aspirin-100")])
        assert rules_of(result)["interaction"] == "warning"


def test_maximum_daily_dose_is_refused(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amlodipine-5", dose="2", frequency="bid")])
        refusal = next(f for f in result.findings if f.rule == "max_daily_dose")
        assert refusal.severity == "refusal" and "20" in refusal.message and "10" in refusal.message


def test_quantity_is_computed_and_may_not_exceed_the_days(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amoxicillin-500", frequency="tid", days=7)])
        assert rx.items.get().quantity == 1  # 21 capsules, one pack of 24
        result = actions.set_items(
            clinic["doctor"].user, rx.pk, [item("t-amoxicillin-500", frequency="tid", days=7, quantity=3)]
        )
        assert rules_of(result)["quantity"] == "refusal"


# --- children -----------------------------------------------------------------------------------------
def test_children_need_weight_and_suitable_drugs(clinic):
    with clock.frozen(NOON):
        birth = dt.date(2018, 3, 1)
        link = account_actions.add_family_member(
            clinic["patient_user"],
            legal_name="张小明",
            id_number=make_number("110101", birth, 12, Sex.MALE),
            birth_date=birth,
            sex=Sex.MALE,
            relationship=Relationship.CHILD,
        )
        consultation = follow_up_consultation(clinic["doctor"], clinic["patient_user"], link.patient, "J45.9")
        rx = actions.create_prescription(clinic["doctor"].user, consultation.pk)
        result = actions.set_items(clinic["doctor"].user, rx.pk, [item("t-aspirin-100"), item("t-amlodipine-5")])
        found = rules_of(result)
        assert (found["child_weight"], found["paediatric"], found["paediatric_caution"]) == (
            "refusal",
            "refusal",
            "warning",
        )
        assert code_of(lambda: actions.update_draft(clinic["doctor"].user, rx.pk, patient_weight_kg="-3")) == (
            "weight_invalid"
        )
        result = actions.update_draft(clinic["doctor"].user, rx.pk, patient_weight_kg="24.5")
        assert "child_weight" not in rules_of(result)


# --- bad input ----------------------------------------------------------------------------------------
def test_bad_items_are_refused_and_change_nothing(clinic):
    with clock.frozen(NOON):
        rx = draft(clinic)
        actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amlodipine-5")])
        doctor_user = clinic["doctor"].user
        assert code_of(lambda: actions.set_items(doctor_user, rx.pk, [item("no-such-drug")])) == "unknown_drug"
        assert code_of(lambda: actions.set_items(doctor_user, rx.pk, [item("t-amlodipine-5", dose="0")])) == (
            "dose_not_positive"
        )
        assert code_of(lambda: actions.set_items(doctor_user, rx.pk, [item("t-amlodipine-5", dose="-1")])) == (
            "dose_not_positive"
        )
        assert code_of(lambda: actions.set_items(doctor_user, rx.pk, [item("t-amlodipine-5", days=0)])) == (
            "days_not_positive"
        )
        assert code_of(lambda: actions.set_items(doctor_user, rx.pk, [item("t-amlodipine-5", days=400)])) == (
            "days_too_many"
        )
        assert code_of(lambda: actions.set_items(doctor_user, rx.pk, [item("t-amlodipine-5", dose="20000")])) == (
            "dose_too_large"
        )
        assert code_of(lambda: actions.set_items(doctor_user, rx.pk, [])) == "prescription_empty"
        assert code_of(lambda: draft(clinic, valid_days=4)) == "valid_days_invalid"
        assert [(i.drug.code, i.dose) for i in rx.items.all()] == [("t-amlodipine-5", Decimal("1.000"))]


# --- R10: signature, verification, review ---------------------------------------------------------
def signed(clinic, drug="t-amlodipine-5", **fields):
    rx = draft(clinic, **fields)
    actions.set_items(clinic["doctor"].user, rx.pk, [item(drug)])
    return actions.sign_prescription(clinic["doctor"].user, rx.pk)


def test_signature_verifies_and_a_tampered_prescription_fails(clinic):
    with clock.frozen(NOON):
        rx = signed(clinic)
        assert signing.verify(rx).valid
        assert code_of(lambda: actions.set_items(clinic["doctor"].user, rx.pk, [item("t-amlodipine-10")])) == (
            "prescription_not_draft"
        )
        # Someone changes the dose behind the system's back: verification breaks, review is refused.
        PrescriptionItem.objects.filter(prescription=rx).update(dose=Decimal("2"))
        rx.refresh_from_db()
        check = signing.verify(rx)
        assert (check.valid, check.reason) == (False, "content_changed")
        assert code_of(lambda: actions.review_prescription(clinic["pharmacist"], rx.pk, "approve")) == (
            "signature_invalid"
        )
        # A forged signature with the right content fails too.
        PrescriptionItem.objects.filter(prescription=rx).update(dose=Decimal("1"))
        Prescription.objects.filter(pk=rx.pk).update(signature="00" * 64)
        rx.refresh_from_db()
        assert signing.verify(rx).reason == "bad_signature"


def test_private_key_is_stored_encrypted(clinic):
    with clock.frozen(NOON):
        rx = signed(clinic)
        key = rx.signing_key
        assert key is not None and len(key.public_key) == 64
        assert key.public_key not in key.private_key_encrypted
        assert key.private_key_encrypted.startswith("gAAAA")  # a Fernet token


def test_validity_ends_with_the_day_and_expired_cannot_be_approved(clinic):
    with clock.frozen(NOON):
        rx = signed(clinic)
        assert rx.valid_until == dt.datetime(2026, 11, 24, 0, 0, tzinfo=NOON.tzinfo)
        three_days = signed(clinic, valid_days=3)
        assert three_days.valid_until == dt.datetime(2026, 11, 26, 0, 0, tzinfo=NOON.tzinfo)
        clock.advance(dt.timedelta(hours=12))
        assert code_of(lambda: actions.review_prescription(clinic["pharmacist"], rx.pk, "approve")) == (
            "prescription_expired"
        )
        rx.refresh_from_db()
        assert rx.status == PrescriptionStatus.PENDING_REVIEW
        actions.review_prescription(clinic["pharmacist"], three_days.pk, "approve")


def test_pharmacist_review_rules(clinic, city_hospital):
    with clock.frozen(NOON):
        rx = signed(clinic)
        outsider = factories.staff_user()
        platform = factories.User.objects.filter(is_superuser=True).first()
        platform.is_mfa_verified = True
        other = factories.hospital(name_zh="他院", name_en="Other")
        account_actions.grant_role(platform, outsider, Role.PHARMACIST, organization_id=other.pk)
        outsider.is_mfa_verified = True
        assert code_of(lambda: actions.review_prescription(outsider, rx.pk, "approve")) == "not_a_reviewer"
        # The doctor holds a pharmacist's role too: still may not review their own prescription.
        account_actions.grant_role(platform, clinic["doctor"].user, Role.PHARMACIST, organization_id=city_hospital.pk)
        clinic["doctor"].user.forget_cached_roles()
        assert code_of(lambda: actions.review_prescription(clinic["doctor"].user, rx.pk, "approve")) == (
            "own_prescription"
        )
        pharmacist = clinic["pharmacist"]
        assert code_of(lambda: actions.review_prescription(pharmacist, rx.pk, "reject")) == "reject_reason_required"
        assert code_of(lambda: actions.review_prescription(pharmacist, rx.pk, "question")) == "question_required"
        pharmacist.is_mfa_verified = False
        assert code_of(lambda: actions.review_prescription(pharmacist, rx.pk, "approve")) == "mfa_required"
        pharmacist.is_mfa_verified = True
        actions.review_prescription(pharmacist, rx.pk, "question", note="请确认剂量")
        rx.refresh_from_db()
        assert rx.status == PrescriptionStatus.QUESTIONED
        amended = actions.amend_prescription(clinic["doctor"].user, rx.pk, "按药师意见调整")
        actions.set_items(clinic["doctor"].user, amended.pk, [item("t-amlodipine-5", days=5)])
        amended = actions.sign_prescription(clinic["doctor"].user, amended.pk)
        rx.refresh_from_db()
        assert (rx.status, amended.version, amended.number) == (PrescriptionStatus.SUPERSEDED, 2, rx.number)
        review = actions.review_prescription(pharmacist, amended.pk, "approve")
        assert review.decision == "approve"
        assert AuditEntry.objects.filter(action="prescription.review.approve", object_id=str(amended.pk)).exists()


# --- R9 / R15: used once, only when approved --------------------------------------------------------
def test_dispensed_once_and_only_when_approved(clinic):
    with clock.frozen(NOON):
        rx = signed(clinic)
        assert code_of(lambda: actions.mark_dispensed(clinic["pharmacist"], rx.pk)) == "not_approved"
        actions.review_prescription(clinic["pharmacist"], rx.pk, "approve")
        assert actions.mark_dispensed(clinic["pharmacist"], rx.pk).status == PrescriptionStatus.DISPENSED
        assert code_of(lambda: actions.mark_dispensed(clinic["pharmacist"], rx.pk)) == "already_dispensed"


# --- R12 / R16 ----------------------------------------------------------------------------------------
def test_prescribing_statistics_are_for_the_regulator_only(clinic):
    with clock.frozen(NOON):
        signed(clinic)
        for user in (clinic["doctor"].user, clinic["admin"], clinic["pharmacist"], clinic["patient_user"]):
            assert code_of(lambda user=user: actions.prescribing_statistics(user)) == "statistics_forbidden"
        regulator = factories.staff_user()
        platform = factories.User.objects.filter(is_superuser=True).first()
        platform.is_mfa_verified = True
        account_actions.grant_role(platform, regulator, Role.REGULATOR)
        regulator.is_mfa_verified = True
        rows = actions.prescribing_statistics(regulator)
        assert rows == [
            {
                "practitioner_id": clinic["doctor"].pk,
                "practitioner__legal_name": clinic["doctor"].legal_name,
                "hospital_id": clinic["consultation"].hospital_id,
                "prescriptions": 1,
            }
        ]


def test_patient_confirms_the_prescription_notice(clinic):
    with clock.frozen(NOON):
        rx = signed(clinic)
        stranger = factories.patient_user()
        assert code_of(lambda: actions.confirm_notice(stranger, rx.pk)) == "prescription_not_found"
        confirmed = actions.confirm_notice(clinic["patient_user"], rx.pk)
        assert confirmed.notice_confirmed_at == NOON
