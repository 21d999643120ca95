"""Who may see and take part in a consultation (R6, R23), in one place.

- the patient's side: the patient's own account and family members acting for them (R30), plus
  anyone the consultation lists as a participant (a guardian, a village station operator);
- the doctor of the consultation, only with a second factor in this session (R6) and while they may
  practise (R5);
- for queued consultations not yet picked up, the verified doctors of that department (they see the
  queue, not the chat).
Every opening of a consultation's content is audited, refusals included.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from nethospital.accounts.access import acts_for, patients_acted_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import FamilyLink, User
from nethospital.consultations import errors
from nethospital.consultations.choices import ConsultationKind, ConsultationStatus, ParticipantRole
from nethospital.consultations.models import Consultation, Participant
from nethospital.core import audit
from nethospital.core.choices import AuditOutcome
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, PERMISSION_DENIED, DomainError
from nethospital.directory.models import Practitioner
from nethospital.directory.rules import ensure_can_practise

PATIENT_SIDE = frozenset(
    {ParticipantRole.PATIENT, ParticipantRole.FAMILY, ParticipantRole.GUARDIAN, ParticipantRole.STATION_OPERATOR}
)


def practitioner_of(user: User) -> Practitioner | None:
    if not user.is_authenticated or not user.has_role(Role.DOCTOR):
        return None
    return Practitioner.objects.select_related("department", "primary_institution").filter(user=user).first()


def acting_doctor(user: User) -> Practitioner:
    """The user as a doctor who may see patients now: a doctor's role, MFA (R6), allowed to practise (R5)."""
    if not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)
    practitioner = practitioner_of(user)
    if practitioner is None:
        raise DomainError(PERMISSION_DENIED)
    if not user.is_mfa_verified:
        raise DomainError(MFA_REQUIRED)
    ensure_can_practise(practitioner)
    return practitioner


def is_guardian_of(user: User, consultation: Consultation) -> bool:
    return FamilyLink.objects.filter(
        holder=user, patient_id=consultation.patient_id, ended_at__isnull=True, is_guardian=True
    ).exists()


def participant_role(user: User, consultation: Consultation) -> str | None:
    """The role in which ``user`` takes part, or None. Doctors are checked for MFA and R5 separately."""
    if not user.is_authenticated:
        return None
    if consultation.practitioner is not None and consultation.practitioner.user_id == user.pk:
        return ParticipantRole.DOCTOR
    listed = Participant.objects.filter(consultation=consultation, user=user).values_list("role", flat=True).first()
    if listed:
        return listed
    if consultation.patient.account_id == user.pk:
        return ParticipantRole.PATIENT
    if acts_for(user, consultation.patient):
        return ParticipantRole.GUARDIAN if is_guardian_of(user, consultation) else ParticipantRole.FAMILY
    return None


def _load(consultation_id: int) -> Consultation:
    consultation = (
        Consultation.objects.select_related("patient", "practitioner", "practitioner__user", "hospital", "department")
        .filter(pk=consultation_id)
        .first()
    )
    if consultation is None:
        raise DomainError(errors.CONSULTATION_NOT_FOUND)
    return consultation


def check_participant(user: User, consultation: Consultation) -> str:
    """Return the user's role in the consultation or raise; doctors need MFA and R5."""
    if not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)
    role = participant_role(user, consultation)
    if role is None:
        # Not a participant: do not confirm to outsiders that the consultation exists.
        raise DomainError(errors.CONSULTATION_NOT_FOUND)
    if role == ParticipantRole.DOCTOR:
        acting_doctor(user)
    return role


def access_consultation(
    user: User, consultation_id: int, action: str = "view", *, audited: bool = True
) -> Consultation:
    """The consultation if ``user`` takes part in it; the read is audited (refusals too)."""
    consultation = Consultation.objects.filter(pk=consultation_id).only("pk", "patient_id", "hospital_id").first()
    if consultation is None:
        raise DomainError(errors.CONSULTATION_NOT_FOUND)
    full = _load(consultation_id)
    try:
        role = check_participant(user, full)
    except DomainError as refusal:
        audit.record(
            user,
            f"consultation.{action}",
            full,
            patient=full.patient_id,
            hospital=full.hospital_id,
            outcome=AuditOutcome.DENIED,
            detail={"reason": refusal.code},
        )
        raise
    full.viewer_role = role  # type: ignore[attr-defined]
    if audited:
        audit.record(user, f"consultation.{action}", full, patient=full.patient_id, hospital=full.hospital_id)
    return full


def access_for_doctor(user: User, consultation_id: int) -> tuple[Consultation, Practitioner]:
    """The consultation and the acting doctor, who must be its doctor (or, for an unclaimed queue
    entry, a doctor of its department)."""
    practitioner = acting_doctor(user)
    consultation = _load(consultation_id)
    if consultation.practitioner_id == practitioner.pk:
        return consultation, practitioner
    if (
        consultation.kind == ConsultationKind.QUEUE
        and consultation.practitioner_id is None
        and consultation.department_id in department_ids_of(practitioner)
    ):
        return consultation, practitioner
    raise DomainError(errors.CONSULTATION_NOT_FOUND)


def department_ids_of(practitioner: Practitioner) -> set[int]:
    """The departments whose queues a doctor serves: their own department, and the department of the
    same code in the internet hospital attached to their hospital."""
    from nethospital.directory.models import Department

    if practitioner.department is None:
        return set()
    code = practitioner.department.code
    hospital_id = practitioner.primary_institution_id
    return set(
        Department.objects.filter(
            Q(pk=practitioner.department_id)
            | Q(code=code, organization__attached_to_id=hospital_id)
            | Q(code=code, organization_id=practitioner.primary_institution.attached_to_id)
        ).values_list("pk", flat=True)
    )


def consultations_for_patient_side(user: User) -> QuerySet[Consultation]:
    """The consultations of the patients the user acts for, and those they were invited into."""
    ids = [p.pk for p in patients_acted_for(user)]
    invited = Participant.objects.filter(user=user).values_list("consultation_id", flat=True)
    return Consultation.objects.filter(Q(patient_id__in=ids) | Q(pk__in=invited)).select_related(
        "practitioner", "hospital", "department", "patient"
    )


def consultations_for_doctor(practitioner: Practitioner) -> QuerySet[Consultation]:
    return Consultation.objects.filter(practitioner=practitioner).select_related("patient", "department")


def waiting_queue(practitioner: Practitioner) -> QuerySet[Consultation]:
    return Consultation.objects.filter(
        kind=ConsultationKind.QUEUE,
        status=ConsultationStatus.WAITING,
        practitioner__isnull=True,
        department_id__in=department_ids_of(practitioner),
    ).order_by("created_at", "pk")
