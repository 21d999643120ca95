"""Who may open a patient's chart, and the audit of every opening (R6, R23).

The rule, in one place:
- the patient, and an account holder with an active family link to the patient, may;
- a doctor may if their session passed a second factor (R6), they may practise today (R5), and
  the patient is registered at one of the hospitals they work for;
- nobody else (admins and regulators included) opens clinical data through this door.
Every opening is audited; every refusal is audited as denied.
"""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from nethospital.accounts.access import acts_for, patients_acted_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import Patient, User
from nethospital.core import audit
from nethospital.core.choices import AuditOutcome
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, NOT_FOUND, PERMISSION_DENIED, DomainError
from nethospital.directory.models import Organization, Practitioner
from nethospital.directory.rules import ensure_can_practise
from nethospital.records.models import Registration

__all__ = ["access_log_for", "access_patient_chart", "acts_for", "clinician_hospital_ids", "patients_acted_for"]


def clinician_hospital_ids(user: User) -> set[int]:
    """The hospitals a doctor works for, each with its internet hospital or physical parent."""
    ids = user.organisation_ids(Role.DOCTOR)
    if not ids:
        return set()
    related = Organization.objects.filter(pk__in=ids).values_list("attached_to_id", flat=True)
    attached = Organization.objects.filter(attached_to_id__in=ids).values_list("pk", flat=True)
    return ids | {i for i in related if i} | set(attached)


def _check_clinician(user: User, patient: Patient) -> None:
    if not user.has_role(Role.DOCTOR):
        raise DomainError(PERMISSION_DENIED)
    if not user.is_mfa_verified:
        raise DomainError(MFA_REQUIRED)
    practitioner = Practitioner.objects.select_related("user").filter(user=user).first()
    if practitioner is None:
        raise DomainError(PERMISSION_DENIED)
    ensure_can_practise(practitioner)
    if not Registration.objects.filter(patient=patient, hospital_id__in=clinician_hospital_ids(user)).exists():
        raise DomainError(PERMISSION_DENIED)


def access_patient_chart(user: User, patient_id: int, action: str = "view") -> Patient:
    """Return the patient whose chart ``user`` may open, auditing the read; raise otherwise."""
    if not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        audit.record(user, f"patient.chart.{action}", None, outcome=AuditOutcome.DENIED, detail={"reason": "not_found"})
        raise DomainError(NOT_FOUND)
    try:
        if not acts_for(user, patient):
            _check_clinician(user, patient)
    except DomainError as refusal:
        audit.record(
            user,
            f"patient.chart.{action}",
            patient,
            patient=patient,
            outcome=AuditOutcome.DENIED,
            detail={"reason": refusal.code},
        )
        if refusal.code not in (MFA_REQUIRED.code,) and refusal.status == 403 and not user.has_role(Role.DOCTOR):
            # Do not confirm to outsiders that the patient exists.
            raise DomainError(NOT_FOUND) from None
        raise
    audit.record(user, f"patient.chart.{action}", patient, patient=patient)
    return patient


class AccessLogRow(TypedDict):
    when: dt.datetime
    who: str
    institution: str
    role: str
    action: str
    outcome: str
    is_self: bool


def access_log_for(user: User, patient_id: int) -> list[AccessLogRow]:
    """Who opened this patient's records: for the patient and their family holders only."""
    from nethospital.core.models import AuditEntry

    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None or not user.is_authenticated or not acts_for(user, patient):
        raise DomainError(NOT_FOUND)
    entries = list(
        AuditEntry.objects.filter(patient_id=patient.pk, action__startswith="patient.chart.").order_by("-sequence")[
            :200
        ]
    )
    actor_ids = {e.actor_id for e in entries if e.actor_id}
    names = {u.pk: str(u) for u in User.objects.filter(pk__in=actor_ids)}
    practitioners = {
        p.user_id: p for p in Practitioner.objects.filter(user_id__in=actor_ids).select_related("primary_institution")
    }
    rows: list[AccessLogRow] = []
    for entry in entries:
        practitioner = practitioners.get(entry.actor_id or 0)
        rows.append(
            AccessLogRow(
                when=entry.occurred_at,
                who=practitioner.legal_name if practitioner else names.get(entry.actor_id or 0, "—"),
                institution=str(practitioner.primary_institution) if practitioner else "",
                role=entry.actor_role,
                action=entry.action,
                outcome=entry.outcome,
                is_self=entry.actor_id == user.pk,
            )
        )
    return rows
