"""Every write to prescriptions (R1, R8-R16).

A prescription is born a draft of the treating doctor (R8) from a follow-up consultation whose signed
record holds a diagnosis (R1). Items change only while it is a draft; every change runs the rules and
returns the findings. Signing re-runs them, refuses while any refusal or un-overridden warning
remains, and signs the canonical form (R10). A pharmacist then approves, rejects or questions it;
nothing is dispensed before approval (R9) and a prescription is used once (R15).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from nethospital.accounts.models import User
from nethospital.consultations import access as consultation_access
from nethospital.consultations.choices import ConsultationStatus
from nethospital.consultations.models import Consultation
from nethospital.core import audit, clock
from nethospital.core.errors import INVALID_INPUT, MFA_REQUIRED, DomainError, ensure
from nethospital.core.idempotency import IDEMPOTENCY_KEY_REUSED, clean_key
from nethospital.core.notify import notify
from nethospital.directory.rules import ensure_can_practise
from nethospital.prescriptions import access, errors, rules, signing
from nethospital.prescriptions.choices import (
    Frequency,
    PrescriptionStatus,
    RejectReason,
    ReviewDecision,
    Route,
    SupplyKind,
)
from nethospital.prescriptions.models import (
    Drug,
    PharmacistReview,
    Prescription,
    PrescriptionItem,
    RuleOverride,
)


@dataclass(frozen=True)
class ItemInput:
    drug: str  # the drug's catalogue code (or its id as a string)
    dose: Decimal | str | float
    frequency: str
    days: int
    route: str = ""
    quantity: int | None = None  # computed from dose × frequency × days when not given
    notes: str = ""


@dataclass(frozen=True)
class Draft:
    prescription: Prescription
    findings: list[rules.Finding]


def lock_prescription(prescription_id: int) -> Prescription:
    prescription = (
        Prescription.objects.select_for_update(of=("self",))
        .select_related("patient", "practitioner", "practitioner__user", "consultation")
        .filter(pk=prescription_id)
        .first()
    )
    ensure(prescription is not None, errors.PRESCRIPTION_NOT_FOUND)
    assert prescription is not None
    return prescription


def _own_prescription(user: User, prescription_id: int) -> Prescription:
    """The prescription, locked, if ``user`` is its doctor with MFA and may practise (R5, R6, R8)."""
    practitioner = consultation_access.acting_doctor(user)
    prescription = lock_prescription(prescription_id)
    ensure(prescription.practitioner_id == practitioner.pk, errors.PRESCRIPTION_NOT_FOUND)
    return prescription


def _new_number() -> str:
    return clock.now().strftime("RX%Y%m%d") + secrets.token_hex(4).upper()


def _clean_valid_days(valid_days: int) -> int:
    ensure(isinstance(valid_days, int) and 1 <= valid_days <= 3, errors.VALID_DAYS_INVALID, field="valid_days")
    return valid_days


def _clean_weight(weight: Decimal | str | float | None) -> Decimal | None:
    if weight in (None, ""):
        return None
    try:
        value = Decimal(str(weight))
    except InvalidOperation:
        raise DomainError(errors.WEIGHT_INVALID, field="patient_weight_kg") from None
    ensure(Decimal("0.5") <= value <= Decimal("300"), errors.WEIGHT_INVALID, field="patient_weight_kg")
    return value.quantize(Decimal("0.1"))


def create_prescription(user: User, consultation_id: int, **fields: Any) -> Prescription:
    """A new draft from a follow-up consultation with a signed diagnosis, by its own doctor
    (the fields of ``create_prescription_once``)."""
    return create_prescription_once(user, consultation_id, **fields).prescription


@dataclass(frozen=True)
class NewDraft:
    prescription: Prescription
    created: bool  # False: a retry, answered with the draft its key made before


def create_prescription_once(
    user: User,
    consultation_id: int,
    *,
    supply_kind: str = SupplyKind.NORMAL,
    supply_reason: str = "",
    valid_days: int = 1,
    patient_weight_kg: Decimal | str | float | None = None,
    notes: str = "",
    idempotency_key: str | None = None,
) -> NewDraft:
    """A new draft, and whether this call made it. With an ``idempotency_key`` a retry returns the draft
    the first request made: the key is checked under the consultation's row lock, so twin requests
    with one key make one draft; a key already used for another consultation is refused."""
    practitioner = consultation_access.acting_doctor(user)
    key = clean_key(idempotency_key) if idempotency_key is not None else ""
    ensure(supply_kind in SupplyKind.values, INVALID_INPUT, field="supply_kind")
    valid_days = _clean_valid_days(valid_days)
    weight = _clean_weight(patient_weight_kg)
    ensure(len(supply_reason or "") <= 300 and len(notes or "") <= 500, INVALID_INPUT, field="notes")
    with transaction.atomic():
        consultation = (
            Consultation.objects.select_for_update().select_related("patient").filter(pk=consultation_id).first()
        )
        ensure(consultation is not None, errors.NOT_TREATING_DOCTOR)
        assert consultation is not None
        ensure(consultation.practitioner_id == practitioner.pk, errors.NOT_TREATING_DOCTOR)
        if key:
            first = Prescription.objects.filter(created_by=user, idempotency_key=key).first()
            if first is not None:
                ensure(first.consultation_id == consultation.pk, IDEMPOTENCY_KEY_REUSED, field="idempotency_key")
                return NewDraft(first, created=False)
        ensure(consultation.may_diagnose, errors.ADVICE_ONLY)  # R1
        ensure(
            consultation.status in (ConsultationStatus.ACTIVE, ConsultationStatus.COMPLETED),
            errors.CONSULTATION_STATE,
        )
        record = consultation.records.filter(is_current=True).first()
        codes = [d.code for d in record.diagnoses.all()] if record else []
        ensure(codes, errors.NO_DIAGNOSIS)
        prescription = Prescription(
            consultation=consultation,
            patient_id=consultation.patient_id,
            hospital_id=consultation.hospital_id,
            practitioner=practitioner,
            number=_new_number(),
            supply_kind=supply_kind,
            supply_reason=(supply_reason or "").strip(),
            valid_days=valid_days,
            patient_weight_kg=weight,
            diagnosis_codes=codes,
            notes=(notes or "").strip(),
            created_at=clock.now(),
            created_by=user,
            idempotency_key=key,
        )
        try:
            with transaction.atomic():
                prescription.save(force_insert=True)
        except IntegrityError:
            # The same key at once for another consultation (whose lock this request does not share).
            if key and Prescription.objects.filter(created_by=user, idempotency_key=key).exists():
                raise DomainError(IDEMPOTENCY_KEY_REUSED, field="idempotency_key") from None
            raise
        audit.record(
            user,
            "prescription.create",
            prescription,
            patient=consultation.patient_id,
            hospital=prescription.hospital_id,
        )
    return NewDraft(prescription, created=True)


def _resolve_drug(code: str, field: str = "drug") -> Drug:
    code = str(code or "").strip()
    drug = Drug.objects.filter(code=code).first()
    if drug is None and code.isdigit() and len(code) <= 18:
        drug = Drug.objects.filter(pk=int(code)).first()
    if drug is None:
        raise DomainError(errors.UNKNOWN_DRUG, field=field, drug=code[:40] or "—")
    return drug


MAX_DOSE = 10000
MAX_DAYS = 366


def _build_items(prescription: Prescription, inputs: list[ItemInput]) -> list[PrescriptionItem]:
    ensure(inputs, errors.NO_ITEMS, field="items")
    limit = settings.NETHOSPITAL_MAX_PRESCRIPTION_ITEMS
    ensure(len(inputs) <= limit, errors.TOO_MANY_ITEMS, field="items", limit=limit)
    items = []
    for position, data in enumerate(inputs):
        drug = _resolve_drug(data.drug, field=f"items.{position}.drug")
        try:
            dose = Decimal(str(data.dose))
        except InvalidOperation:
            raise DomainError(errors.DOSE_NOT_POSITIVE, field=f"items.{position}.dose") from None
        ensure(dose.is_finite() and dose > 0, errors.DOSE_NOT_POSITIVE, field=f"items.{position}.dose")
        ensure(dose < MAX_DOSE, errors.DOSE_TOO_LARGE, field=f"items.{position}.dose", limit=MAX_DOSE)
        ensure(data.frequency in Frequency.values, INVALID_INPUT, field=f"items.{position}.frequency")
        ensure(isinstance(data.days, int) and data.days > 0, errors.DAYS_NOT_POSITIVE, field=f"items.{position}.days")
        # A sanity bound on input; the rules refuse anything over 12 weeks with the R13 reason.
        ensure(data.days <= MAX_DAYS, errors.DAYS_TOO_MANY, field=f"items.{position}.days", limit=MAX_DAYS)
        route = data.route or drug.route
        ensure(route in Route.values, INVALID_INPUT, field=f"items.{position}.route")
        quantity = data.quantity
        if quantity is None:
            quantity = rules.needed_packs(drug, dose, data.frequency, data.days)
        ensure(
            isinstance(quantity, int) and 0 < quantity <= 1000,
            errors.QUANTITY_INVALID,
            field=f"items.{position}.quantity",
        )
        ensure(len(data.notes or "") <= 200, INVALID_INPUT, field=f"items.{position}.notes")
        items.append(
            PrescriptionItem(
                prescription=prescription,
                position=position,
                drug=drug,
                dose=dose.quantize(Decimal("0.001")),
                frequency=data.frequency,
                route=route,
                days=data.days,
                quantity=quantity,
                notes=(data.notes or "").strip(),
            )
        )
    return items


def set_items(user: User, prescription_id: int, inputs: list[ItemInput]) -> Draft:
    """Replace the draft's items and return the rule findings for the doctor to see at once."""
    with transaction.atomic():
        prescription = _own_prescription(user, prescription_id)
        ensure(prescription.status == PrescriptionStatus.DRAFT, errors.NOT_DRAFT)
        items = _build_items(prescription, inputs)
        now = clock.now()
        # The old list stays in the table, marked removed; overrides were given for it, so a changed
        # list must be looked at again.
        PrescriptionItem.objects.filter(prescription=prescription).update(removed_at=now)
        RuleOverride.objects.filter(prescription=prescription).update(removed_at=now)
        PrescriptionItem.objects.bulk_create(items)
        findings = rules.check(prescription)
        audit.record(
            user,
            "prescription.items",
            prescription,
            patient=prescription.patient_id,
            detail={"items": len(items), "findings": sorted({f.rule for f in findings})},
        )
    return Draft(prescription, findings)


def update_draft(
    user: User,
    prescription_id: int,
    *,
    supply_kind: str | None = None,
    supply_reason: str | None = None,
    valid_days: int | None = None,
    patient_weight_kg: Decimal | str | float | None = None,
    notes: str | None = None,
) -> Draft:
    with transaction.atomic():
        prescription = _own_prescription(user, prescription_id)
        ensure(prescription.status == PrescriptionStatus.DRAFT, errors.NOT_DRAFT)
        if supply_kind is not None:
            ensure(supply_kind in SupplyKind.values, INVALID_INPUT, field="supply_kind")
            prescription.supply_kind = supply_kind
        if supply_reason is not None:
            ensure(len(supply_reason) <= 300, INVALID_INPUT, field="supply_reason")
            prescription.supply_reason = supply_reason.strip()
        if valid_days is not None:
            prescription.valid_days = _clean_valid_days(valid_days)
        if patient_weight_kg is not None:
            prescription.patient_weight_kg = _clean_weight(patient_weight_kg)
        if notes is not None:
            ensure(len(notes) <= 500, INVALID_INPUT, field="notes")
            prescription.notes = notes.strip()
        prescription.save()
        findings = rules.check(prescription)
        audit.record(user, "prescription.update", prescription, patient=prescription.patient_id)
    return Draft(prescription, findings)


def override_warning(user: User, prescription_id: int, rule: str, subject: str, reason: str) -> Draft:
    """Go on despite a warning, with a reason. Refusals cannot be overridden."""
    reason = (reason or "").strip()
    ensure(reason, errors.OVERRIDE_REASON_REQUIRED, field="reason")
    ensure(len(reason) <= 300, INVALID_INPUT, field="reason")
    with transaction.atomic():
        prescription = _own_prescription(user, prescription_id)
        ensure(prescription.status == PrescriptionStatus.DRAFT, errors.NOT_DRAFT)
        current = [f for f in rules.check(prescription) if f.rule == rule and f.subject == subject]
        ensure(current, errors.NO_SUCH_WARNING, field="rule")
        ensure(all(f.severity == rules.WARNING for f in current), errors.NOT_OVERRIDABLE, field="rule")
        RuleOverride.objects.get_or_create(
            prescription=prescription,
            rule=rule,
            subject=subject,
            defaults={"reason": reason, "by": user, "at": clock.now()},
        )
        findings = rules.check(prescription)
        audit.record(
            user,
            "prescription.override",
            prescription,
            patient=prescription.patient_id,
            detail={"rule": rule, "subject": subject},
        )
    return Draft(prescription, findings)


def _valid_until(signed_at: dt.datetime, valid_days: int) -> dt.datetime:
    """R13: until the end of the day of issue, or of the (valid_days - 1)th day after it."""
    local = timezone.localtime(signed_at)
    last_day = local.date() + dt.timedelta(days=valid_days - 1)
    return timezone.make_aware(dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0, 0)))


def sign_prescription(user: User, prescription_id: int) -> Prescription:
    """The doctor signs (R10) in their own MFA-verified session; the rules run once more first."""
    ensure(user.is_authenticated and user.is_mfa_verified, MFA_REQUIRED)
    with transaction.atomic():
        prescription = _own_prescription(user, prescription_id)
        ensure(prescription.status == PrescriptionStatus.DRAFT, errors.NOT_DRAFT)
        ensure(prescription.items.exists(), errors.NO_ITEMS)
        ensure_can_practise(prescription.practitioner)
        blocking = rules.blocking(rules.check(prescription))
        if blocking:
            raise DomainError(
                errors.BLOCKED_BY_RULES,
                reasons=" ".join(f.message for f in blocking),
                fields={"rules": [f.message for f in blocking]},
            )
        key = signing.key_for(prescription.practitioner)
        now = clock.now().replace(microsecond=0)
        prescription.signed_at = now
        prescription.valid_until = _valid_until(now, prescription.valid_days)
        prescription.signing_key = key
        prescription.canonical_hash, prescription.signature = signing.sign(prescription, key)
        prescription.status = PrescriptionStatus.PENDING_REVIEW
        prescription.save()
        if prescription.replaces_id:
            Prescription.objects.filter(pk=prescription.replaces_id).update(status=PrescriptionStatus.SUPERSEDED)
        audit.record(
            user,
            "prescription.sign",
            prescription,
            patient=prescription.patient_id,
            hospital=prescription.hospital_id,
            detail={"hash": prescription.canonical_hash, "key": key.key_id},
        )
    return prescription


def is_expired(prescription: Prescription) -> bool:
    return prescription.valid_until is not None and clock.now() >= prescription.valid_until


def review_prescription(
    user: User, prescription_id: int, decision: str, *, reason_codes: list[str] | None = None, note: str = ""
) -> PharmacistReview:
    """A pharmacist of the prescribing hospital approves, rejects (with reasons) or questions (R10)."""
    ensure(decision in ReviewDecision.values, INVALID_INPUT, field="decision")
    reason_codes = list(dict.fromkeys(reason_codes or []))
    ensure(all(code in RejectReason.values for code in reason_codes), INVALID_INPUT, field="reason_codes")
    note = (note or "").strip()
    ensure(len(note) <= 500, INVALID_INPUT, field="note")
    ensure(user.is_authenticated, errors.NOT_A_REVIEWER)
    with transaction.atomic():
        prescription = lock_prescription(prescription_id)
        ensure(access.is_reviewer_for(user, prescription), errors.NOT_A_REVIEWER)
        ensure(user.is_mfa_verified, MFA_REQUIRED)
        ensure(prescription.practitioner.user_id != user.pk, errors.OWN_PRESCRIPTION)
        ensure(prescription.status == PrescriptionStatus.PENDING_REVIEW, errors.NOT_PENDING_REVIEW)
        ensure(not is_expired(prescription), errors.EXPIRED)
        ensure(signing.verify(prescription).valid, errors.SIGNATURE_INVALID)
        if decision == ReviewDecision.REJECT:
            ensure(reason_codes, errors.REJECT_REASON_REQUIRED, field="reason_codes")
        if decision == ReviewDecision.QUESTION:
            ensure(note, errors.QUESTION_REQUIRED, field="note")
        review = PharmacistReview.objects.create(
            prescription=prescription,
            pharmacist=user,
            decision=decision,
            reason_codes=reason_codes,
            note=note,
            reviewed_at=clock.now(),
        )
        prescription.status = {
            ReviewDecision.APPROVE: PrescriptionStatus.APPROVED,
            ReviewDecision.REJECT: PrescriptionStatus.REJECTED,
            ReviewDecision.QUESTION: PrescriptionStatus.QUESTIONED,
        }[ReviewDecision(decision)]
        prescription.save(update_fields=["status"])
        audit.record(
            user,
            f"prescription.review.{decision}",
            prescription,
            patient=prescription.patient_id,
            hospital=prescription.hospital_id,
            detail={"reasons": reason_codes},
        )
        doctor_user = prescription.practitioner.user
        transaction.on_commit(lambda: _tell_doctor(doctor_user, prescription, decision))
    return review


def _tell_doctor(doctor_user: User, prescription: Prescription, decision: str) -> None:
    from django.utils.translation import gettext_lazy as _

    if decision == ReviewDecision.APPROVE:
        return
    notify(
        doctor_user,
        f"prescription_{decision}",
        _("Prescription %(number)s needs your attention"),
        _("A pharmacist reviewed prescription %(number)s: %(decision)s."),
        params={"number": prescription.number, "decision": ReviewDecision(decision).label},
        link=f"/prescriptions/{prescription.pk}/",
        email=False,
    )


def amend_prescription(user: User, prescription_id: int, reason: str) -> Prescription:
    """The doctor answers a question (or corrects before review): a new draft version with the same
    items; signing it supersedes the old one."""
    reason = (reason or "").strip()
    ensure(reason, errors.OVERRIDE_REASON_REQUIRED, field="reason")
    ensure(len(reason) <= 300, INVALID_INPUT, field="reason")
    with transaction.atomic():
        old = _own_prescription(user, prescription_id)
        ensure(old.status in (PrescriptionStatus.QUESTIONED, PrescriptionStatus.PENDING_REVIEW), errors.NOT_AMENDABLE)
        ensure(not hasattr(old, "replaced_by") or old.replaced_by is None, errors.NOT_AMENDABLE)
        new = Prescription.objects.create(
            consultation_id=old.consultation_id,
            patient_id=old.patient_id,
            hospital_id=old.hospital_id,
            practitioner_id=old.practitioner_id,
            number=old.number,
            version=old.version + 1,
            replaces=old,
            amendment_reason=reason,
            supply_kind=old.supply_kind,
            supply_reason=old.supply_reason,
            valid_days=old.valid_days,
            patient_weight_kg=old.patient_weight_kg,
            diagnosis_codes=old.diagnosis_codes,
            notes=old.notes,
            created_at=clock.now(),
            created_by=user,
        )
        PrescriptionItem.objects.bulk_create(
            [
                PrescriptionItem(
                    prescription=new,
                    position=i.position,
                    drug_id=i.drug_id,
                    dose=i.dose,
                    frequency=i.frequency,
                    route=i.route,
                    days=i.days,
                    quantity=i.quantity,
                    notes=i.notes,
                )
                for i in old.items.all()
            ]
        )
        audit.record(user, "prescription.amend", new, patient=new.patient_id, detail={"replaces": old.pk})
    return new


def cancel_prescription(user: User, prescription_id: int, reason: str) -> Prescription:
    reason = (reason or "").strip()
    ensure(reason, errors.OVERRIDE_REASON_REQUIRED, field="reason")
    with transaction.atomic():
        prescription = _own_prescription(user, prescription_id)
        ensure(
            prescription.status
            in (PrescriptionStatus.DRAFT, PrescriptionStatus.QUESTIONED, PrescriptionStatus.PENDING_REVIEW),
            errors.NOT_AMENDABLE,
        )
        prescription.status = PrescriptionStatus.CANCELLED
        prescription.save(update_fields=["status"])
        audit.record(
            user, "prescription.cancel", prescription, patient=prescription.patient_id, detail={"reason": reason[:300]}
        )
    return prescription


def confirm_notice(user: User, prescription_id: int) -> Prescription:
    """The patient's side confirms that prescription drugs are bought and used on a prescription
    under a pharmacist's guidance (R16)."""
    prescription = access.access_prescription(user, prescription_id, "notice")
    ensure(getattr(prescription, "viewer_role", "") == "patient", errors.PRESCRIPTION_NOT_FOUND)
    with transaction.atomic():
        updated = Prescription.objects.filter(pk=prescription.pk, notice_confirmed_at__isnull=True).update(
            notice_confirmed_at=clock.now()
        )
        if updated:
            audit.record(user, "prescription.notice_confirmed", prescription, patient=prescription.patient_id)
    prescription.refresh_from_db()
    return prescription


def mark_dispensed(actor: User, prescription_id: int) -> Prescription:
    """Used once (R15), only when approved (R9) and still valid. The pharmacy's dispensing action
    calls this inside its own transaction after every box has been scanned."""
    with transaction.atomic():
        prescription = lock_prescription(prescription_id)
        ensure(prescription.status != PrescriptionStatus.DISPENSED, errors.ALREADY_DISPENSED)
        ensure(prescription.status == PrescriptionStatus.APPROVED, errors.NOT_APPROVED)
        ensure(not is_expired(prescription), errors.EXPIRED)
        ensure(signing.verify(prescription).valid, errors.SIGNATURE_INVALID)
        updated = Prescription.objects.filter(
            pk=prescription.pk, status=PrescriptionStatus.APPROVED, dispensed_at__isnull=True
        ).update(status=PrescriptionStatus.DISPENSED, dispensed_at=clock.now())
        ensure(updated == 1, errors.ALREADY_DISPENSED)
        audit.record(actor, "prescription.dispense", prescription, patient=prescription.patient_id)
    prescription.refresh_from_db()
    return prescription


def prescribing_statistics(user: User) -> list[dict[str, Any]]:
    """Per-doctor counts for the regulator's supervision only (R12)."""
    ensure(access.may_see_prescribing_statistics(user), errors.STATISTICS_FORBIDDEN)
    rows = list(
        Prescription.objects.exclude(status__in=[PrescriptionStatus.DRAFT, PrescriptionStatus.SUPERSEDED])
        .values("practitioner_id", "practitioner__legal_name", "hospital_id")
        .annotate(prescriptions=Count("pk"))
        .order_by("practitioner_id")
    )
    audit.record(user, "prescription.statistics", None, detail={"rows": len(rows)})
    return rows
