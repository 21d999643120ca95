"""Who may see and act on prescriptions (R6, R8, R10, R12, R23).

- the patient's side (the patient and family members acting for them) sees their prescriptions;
- the prescribing doctor, with MFA, sees and amends their own;
- pharmacists of the prescribing hospital (or its internet hospital / physical parent), with MFA,
  see the review queue and review — never a prescription they wrote themselves;
- per-doctor prescribing statistics: the regulator only (R12).
Every opening of a prescription is audited.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from nethospital.accounts.access import acts_for, patients_acted_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.core import audit
from nethospital.core.choices import AuditOutcome
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, DomainError
from nethospital.directory.models import Organization
from nethospital.prescriptions import errors
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.models import Prescription


def related_hospital_ids(organization_ids: set[int]) -> set[int]:
    """The organisations plus their internet hospitals and physical parents."""
    if not organization_ids:
        return set()
    parents = Organization.objects.filter(pk__in=organization_ids).values_list("attached_to_id", flat=True)
    children = Organization.objects.filter(attached_to_id__in=organization_ids).values_list("pk", flat=True)
    return set(organization_ids) | {p for p in parents if p} | set(children)


def pharmacist_hospital_ids(user: User) -> set[int]:
    if not user.is_authenticated or not user.has_role(Role.PHARMACIST):
        return set()
    return related_hospital_ids(user.organisation_ids(Role.PHARMACIST))


def is_reviewer_for(user: User, prescription: Prescription) -> bool:
    return prescription.hospital_id in pharmacist_hospital_ids(user)


def viewer_role(user: User, prescription: Prescription) -> str | None:
    if not user.is_authenticated:
        return None
    if prescription.practitioner.user_id == user.pk:
        return "doctor"
    if acts_for(user, prescription.patient):
        return "patient"
    if is_reviewer_for(user, prescription):
        return "pharmacist"
    return None


def access_prescription(user: User, prescription_id: int, action: str = "view") -> Prescription:
    """The prescription if ``user`` may see it (audited, refusals too); clinicians need MFA (R6)."""
    if not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)
    prescription = (
        Prescription.objects.select_related("patient", "practitioner", "practitioner__user", "hospital", "consultation")
        .filter(pk=prescription_id)
        .first()
    )
    if prescription is None:
        raise DomainError(errors.PRESCRIPTION_NOT_FOUND)
    role = viewer_role(user, prescription)
    refusal = None
    if role is None:
        refusal = errors.PRESCRIPTION_NOT_FOUND
    elif role != "doctor" and prescription.status == PrescriptionStatus.DRAFT:
        # A draft is the doctor's until signed: the patient's side and the reviewers see it only then.
        refusal = errors.PRESCRIPTION_NOT_FOUND
    elif role in ("doctor", "pharmacist") and not user.is_mfa_verified:
        refusal = MFA_REQUIRED
    if refusal is not None:
        audit.record(
            user,
            f"prescription.{action}",
            prescription,
            patient=prescription.patient_id,
            hospital=prescription.hospital_id,
            outcome=AuditOutcome.DENIED,
            detail={"reason": refusal.code},
        )
        raise DomainError(refusal)
    audit.record(
        user, f"prescription.{action}", prescription, patient=prescription.patient_id, hospital=prescription.hospital_id
    )
    prescription.viewer_role = role  # type: ignore[attr-defined]
    return prescription


def prescriptions_for_patient_side(user: User) -> QuerySet[Prescription]:
    ids = [p.pk for p in patients_acted_for(user)]
    return (
        Prescription.objects.filter(patient_id__in=ids)
        .exclude(status__in=[PrescriptionStatus.DRAFT, PrescriptionStatus.SUPERSEDED])
        .select_related("practitioner", "hospital", "patient")
    )


def review_queue(user: User) -> QuerySet[Prescription]:
    """Signed prescriptions waiting for a pharmacist of these hospitals (own ones left out)."""
    if not user.is_authenticated or not user.is_mfa_verified:
        return Prescription.objects.none()
    hospitals = pharmacist_hospital_ids(user)
    return (
        Prescription.objects.filter(status=PrescriptionStatus.PENDING_REVIEW, hospital_id__in=hospitals)
        .exclude(practitioner__user=user)
        .select_related("patient", "practitioner", "hospital")
        .order_by("signed_at")
    )


def prescriptions_of_doctor(user: User) -> QuerySet[Prescription]:
    return Prescription.objects.filter(practitioner__user=user).filter(~Q(status=PrescriptionStatus.SUPERSEDED))


def may_see_prescribing_statistics(user: User) -> bool:
    """R12: per-doctor prescribing figures exist only for the regulator's supervision."""
    return bool(user.is_authenticated and user.has_role(Role.REGULATOR) and user.is_mfa_verified)
