"""Every write to consultations (R1, R2, R3, R5, R6, R21, R22, R30).

Locks are taken in one order: consultation row, then its children. Live events go out after commit
(``events.publish``). Message bodies never reach logs or the audit detail.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Q
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.access import acts_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import Patient, User
from nethospital.consultations import access, errors, events, prepared
from nethospital.consultations.choices import (
    OPEN_STATUSES,
    CallOutcome,
    ConsultationChannel,
    ConsultationKind,
    ConsultationStatus,
    MessageKind,
    ParticipantRole,
    PaymentStatus,
    ProofKind,
    ReviewStatus,
    VisitType,
)
from nethospital.consultations.models import (
    Attachment,
    CallRecord,
    Consultation,
    ICD10Code,
    Message,
    Participant,
    Review,
    VisitDiagnosis,
    VisitRecord,
)
from nethospital.consultations.prepared import Prepared
from nethospital.core import audit, bulk, clock, context
from nethospital.core.errors import INVALID_INPUT, MFA_REQUIRED, NOT_FOUND, PERMISSION_DENIED, DomainError, ensure
from nethospital.core.notify import notify
from nethospital.directory.access import may_administer
from nethospital.directory.choices import VerificationStatus
from nethospital.directory.models import Department, Practitioner
from nethospital.directory.rules import ensure_can_practise
from nethospital.records.models import Allergy
from nethospital.scheduling.choices import ACTIVE_STATUSES, AppointmentStatus, Modality
from nethospital.scheduling.models import Appointment


# --- the declaration and the follow-up gate (R1, R2, R3) ----------------------------------------
@dataclass(frozen=True)
class Declaration:
    """What the patient declares before a consultation opens."""

    condition: str
    first_visit: bool
    proof_kind: str = ProofKind.NONE
    proof_record_id: int | None = None
    proof_hospital: str = ""
    proof_summary: str = ""
    proof_attachment_id: int | None = None


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _clean_declaration(patient: Patient, declaration: Declaration) -> dict[str, Any]:
    condition = (declaration.condition or "").strip()
    ensure(condition, errors.CONDITION_REQUIRED, field="condition")
    ensure(len(condition) <= 200, INVALID_INPUT, field="condition")
    proof_kind = declaration.proof_kind or ProofKind.NONE
    ensure(proof_kind in ProofKind.values, INVALID_INPUT, field="proof_kind")
    values: dict[str, Any] = {
        "declared_condition": condition,
        "declared_first_visit": declaration.first_visit,
        "proof_kind": ProofKind.NONE if declaration.first_visit else proof_kind,
    }
    if declaration.first_visit:
        return values
    # R2: a follow-up needs proof of the earlier diagnosis.
    ensure(proof_kind != ProofKind.NONE, errors.PROOF_REQUIRED, field="proof_kind")
    if proof_kind == ProofKind.RECORD_IN_SYSTEM:
        record = VisitRecord.objects.filter(
            pk=declaration.proof_record_id or 0, patient=patient, is_current=True
        ).first()
        ensure(record is not None, errors.PROOF_RECORD_INVALID, field="proof_record_id")
        values["proof_record"] = record
    elif proof_kind == ProofKind.OTHER_HOSPITAL:
        hospital = (declaration.proof_hospital or "").strip()
        summary = (declaration.proof_summary or "").strip()
        ensure(hospital and summary, errors.PROOF_HOSPITAL_REQUIRED, field="proof_hospital")
        ensure(len(hospital) <= 120 and len(summary) <= 2000, INVALID_INPUT, field="proof_summary")
        values["proof_hospital"] = hospital
        values["proof_summary"] = summary
    else:
        attachment = Attachment.objects.filter(pk=declaration.proof_attachment_id or 0, patient=patient).first()
        ensure(attachment is not None, errors.PROOF_DOCUMENT_INVALID, field="proof_attachment_id")
        values["proof_attachment"] = attachment
        values["proof_summary"] = (declaration.proof_summary or "").strip()[:2000]
    return values


def is_young_child(patient: Patient) -> bool:
    return patient.age_on(clock.today()) < settings.NETHOSPITAL_YOUNG_CHILD_AGE


def _requester_role(user: User, patient: Patient) -> str:
    """R30: only the patient or a family member acting for them; R3: a young child needs a guardian."""
    if not acts_for(user, patient):
        raise DomainError(PERMISSION_DENIED, field="patient_id")
    if patient.account_id == user.pk:
        role = ParticipantRole.PATIENT
    else:
        from nethospital.accounts.models import FamilyLink

        is_guardian = FamilyLink.objects.filter(
            holder=user, patient=patient, ended_at__isnull=True, is_guardian=True
        ).exists()
        role = ParticipantRole.GUARDIAN if is_guardian else ParticipantRole.FAMILY
    if is_young_child(patient):
        ensure(role == ParticipantRole.GUARDIAN, errors.GUARDIAN_REQUIRED)
    return role


def paediatric_ok(practitioner: Practitioner, department: Department | None) -> bool:
    """R3: a child under 6 is seen by a paediatric doctor — one holding a paediatric specialty, or
    working in a department whose specialty is paediatric."""
    if practitioner.specialties.filter(is_paediatric=True).exists():
        return True
    for dept in (department, practitioner.department):
        if dept is not None and dept.specialty is not None and dept.specialty.is_paediatric:
            return True
    return False


def _ensure_doctor_may_see(practitioner: Practitioner, consultation: Consultation) -> None:
    ensure_can_practise(practitioner)  # R5, read afresh
    if is_young_child(consultation.patient):
        ensure(consultation.guardian_present, errors.GUARDIAN_REQUIRED)
        ensure(paediatric_ok(practitioner, consultation.department), errors.NOT_PAEDIATRIC)


def _new_consultation(user: User, patient: Patient, role: str, declaration: Declaration, **fields: Any) -> Consultation:
    now = clock.now()
    consultation = Consultation.objects.create(
        patient=patient,
        requested_by=user,
        created_at=now,
        guardian_present=role == ParticipantRole.GUARDIAN,
        retain_until=_years_after(clock.today(), settings.NETHOSPITAL_CHAT_RETENTION_YEARS),
        **_clean_declaration(patient, declaration),
        **fields,
    )
    Participant.objects.create(consultation=consultation, user=user, role=role, joined_at=now)
    if consultation.proof_attachment_id:
        Attachment.objects.filter(pk=consultation.proof_attachment_id, consultation__isnull=True).update(
            consultation=consultation, hospital=consultation.hospital
        )
    return consultation


def _lock(consultation_id: int) -> Consultation:
    consultation = (
        Consultation.objects.select_for_update(of=("self",))
        .select_related("patient", "practitioner", "practitioner__user", "department")
        .filter(pk=consultation_id)
        .first()
    )
    ensure(consultation is not None, errors.CONSULTATION_NOT_FOUND)
    assert consultation is not None
    return consultation


def _patient_for(user: User, patient_id: int) -> Patient:
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None or not acts_for(user, patient):
        raise DomainError(PERMISSION_DENIED, field="patient_id")
    return patient


# --- opening a consultation ---------------------------------------------------------------------
def open_booked_consultation(user: User, appointment_id: int, declaration: Declaration) -> Consultation:
    """A booked video or text appointment becomes a consultation that waits for the doctor."""
    appointment = Appointment.objects.select_related("slot", "practitioner").filter(pk=appointment_id).first()
    ensure(appointment is not None, NOT_FOUND)
    assert appointment is not None
    patient = _patient_for(user, appointment.patient_id)
    ensure(appointment.slot.modality in (Modality.VIDEO, Modality.TEXT), errors.APPOINTMENT_NOT_REMOTE)
    ensure(appointment.status in ACTIVE_STATUSES, errors.APPOINTMENT_NOT_ACTIVE)
    role = _requester_role(user, patient)
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        existing = Consultation.objects.filter(appointment=appointment).first()
        if existing is not None:
            return existing  # opening twice returns the same consultation
        consultation = _new_consultation(
            user,
            patient,
            role,
            declaration,
            kind=ConsultationKind.BOOKED,
            channel=ConsultationChannel.VIDEO
            if appointment.slot.modality == Modality.VIDEO
            else ConsultationChannel.TEXT,
            status=ConsultationStatus.WAITING,
            hospital_id=appointment.hospital_id,
            department_id=appointment.slot.department_id,
            practitioner_id=appointment.practitioner_id,
            appointment=appointment,
            fee=appointment.slot.fee,
            payment_status=PaymentStatus.PAID if appointment.slot.fee else PaymentStatus.NONE,
        )
        audit.record(user, "consultation.open", consultation, patient=patient, hospital=consultation.hospital_id)
        events.publish(
            events.workbench_group(appointment.practitioner_id), "bench.changed", {"consultation": consultation.pk}
        )
    return consultation


def join_queue(
    user: User, patient_id: int, department_id: int, declaration: Declaration, channel: str = ConsultationChannel.TEXT
) -> Consultation:
    """Join a department's queue for the next available doctor."""
    patient = _patient_for(user, patient_id)
    department = Department.objects.select_related("organization").filter(pk=department_id, is_active=True).first()
    ensure(department is not None, NOT_FOUND, field="department_id")
    assert department is not None
    ensure(channel in ConsultationChannel.values, INVALID_INPUT, field="channel")
    role = _requester_role(user, patient)
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        ensure(
            not Consultation.objects.filter(
                patient=patient, kind=ConsultationKind.QUEUE, status=ConsultationStatus.WAITING
            ).exists(),
            errors.ALREADY_QUEUED,
        )
        consultation = _new_consultation(
            user,
            patient,
            role,
            declaration,
            kind=ConsultationKind.QUEUE,
            channel=channel,
            status=ConsultationStatus.WAITING,
            hospital_id=department.organization_id,
            department=department,
        )
        audit.record(
            user, "consultation.queue.join", consultation, patient=patient, hospital=department.organization_id
        )
        _publish_queue(department.pk)
    return consultation


def ask_doctor(
    user: User, patient_id: int, practitioner_id: int, declaration: Declaration, question: str, client_id: str = ""
) -> Consultation:
    """Write to a chosen doctor; the doctor has NETHOSPITAL_ASK_ACCEPT_HOURS to accept."""
    patient = _patient_for(user, patient_id)
    practitioner = Practitioner.objects.select_related("department").filter(pk=practitioner_id).first()
    ensure(practitioner is not None, NOT_FOUND, field="practitioner_id")
    assert practitioner is not None
    ensure_can_practise(practitioner)
    role = _requester_role(user, patient)
    body = _clean_body(question)
    now = clock.now()
    with transaction.atomic():
        consultation = _new_consultation(
            user,
            patient,
            role,
            declaration,
            kind=ConsultationKind.ASK,
            channel=ConsultationChannel.TEXT,
            status=ConsultationStatus.REQUESTED,
            hospital_id=practitioner.primary_institution_id,
            department_id=practitioner.department_id,
            practitioner=practitioner,
            accept_deadline=now + dt.timedelta(hours=settings.NETHOSPITAL_ASK_ACCEPT_HOURS),
        )
        _append_message(consultation, user, role, body=body, client_id=client_id or uuid.uuid4().hex)
        audit.record(user, "consultation.ask", consultation, patient=patient, hospital=consultation.hospital_id)
        events.publish(events.workbench_group(practitioner.pk), "bench.changed", {"consultation": consultation.pk})
    transaction.on_commit(
        lambda: notify(
            practitioner.user,
            "consultation_request",
            _("New question from a patient"),
            _("A patient asked you a question. Please accept it within %(hours)s hours."),
            params={"hours": settings.NETHOSPITAL_ASK_ACCEPT_HOURS},
            link=f"/consultations/{consultation.pk}/",
            email=False,
        )
    )
    return consultation


def cancel_consultation(user: User, consultation_id: int) -> Consultation:
    """The patient's side withdraws a consultation that has not started."""
    with transaction.atomic():
        consultation = _lock(consultation_id)
        role = access.check_participant(user, consultation)
        ensure(role in access.PATIENT_SIDE, PERMISSION_DENIED)
        ensure(consultation.status in (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING), errors.WRONG_STATE)
        consultation.status = ConsultationStatus.CANCELLED
        consultation.ended_at = clock.now()
        if consultation.payment_status == PaymentStatus.PAID and consultation.appointment_id is None:
            consultation.payment_status = PaymentStatus.REFUNDED
        consultation.save(update_fields=["status", "ended_at", "payment_status"])
        audit.record(user, "consultation.cancel", consultation, patient=consultation.patient_id)
        _publish_status(consultation)
    return consultation


# --- the doctor takes the patient -----------------------------------------------------------------
def _start(consultation: Consultation, practitioner: Practitioner, user: User) -> None:
    now = clock.now()
    consultation.status = ConsultationStatus.ACTIVE
    consultation.practitioner = practitioner
    consultation.started_at = now
    consultation.save(update_fields=["status", "practitioner", "started_at"])
    Participant.objects.get_or_create(
        consultation=consultation, user=user, defaults={"role": ParticipantRole.DOCTOR, "joined_at": now}
    )
    from nethospital.records.actions import register_patient_at_hospital

    register_patient_at_hospital(user, consultation.patient, consultation.hospital)
    _append_message(consultation, None, "", body="", kind=MessageKind.SYSTEM, system_code="started")


def pick_next(user: User, department_id: int | None = None) -> Consultation:
    """A doctor takes the longest-waiting patient of their department's queue whom they may see."""
    practitioner = access.acting_doctor(user)
    departments = access.department_ids_of(practitioner)
    if department_id is not None:
        ensure(department_id in departments, errors.NOT_IN_DEPARTMENT)
        departments = {department_id}
    with transaction.atomic():
        candidates = (
            Consultation.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("patient", "department", "department__specialty")
            .filter(
                kind=ConsultationKind.QUEUE,
                status=ConsultationStatus.WAITING,
                practitioner__isnull=True,
                department_id__in=departments,
            )
            .order_by("created_at", "pk")[:20]
        )
        chosen = None
        for candidate in candidates:
            try:
                _ensure_doctor_may_see(practitioner, candidate)
            except DomainError:
                continue  # e.g. a young child for a doctor who is not paediatric: leave for another
            chosen = candidate
            break
        ensure(chosen is not None, errors.QUEUE_EMPTY)
        assert chosen is not None
        _start(chosen, practitioner, user)
        audit.record(user, "consultation.queue.pick", chosen, patient=chosen.patient_id, hospital=chosen.hospital_id)
        _publish_queue(chosen.department_id)
        _publish_status(chosen)
    return chosen


def accept_request(user: User, consultation_id: int) -> Consultation:
    """The doctor accepts an "ask a doctor" request in time, or starts a booked visit."""
    consultation, practitioner = access.access_for_doctor(user, consultation_id)
    with transaction.atomic():
        consultation = _lock(consultation_id)
        ensure(consultation.practitioner_id == practitioner.pk, errors.CONSULTATION_NOT_FOUND)
        ensure(consultation.status in (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING), errors.WRONG_STATE)
        if consultation.status == ConsultationStatus.REQUESTED:
            ensure(
                consultation.accept_deadline is None or clock.now() < consultation.accept_deadline,
                errors.ACCEPT_EXPIRED,
            )
        _ensure_doctor_may_see(practitioner, consultation)
        _start(consultation, practitioner, user)
        audit.record(user, "consultation.start", consultation, patient=consultation.patient_id)
        _publish_status(consultation)
    return consultation


def lapse_unaccepted_requests() -> int:
    """Task: requests the doctor did not accept in time lapse; a paid fee is refunded."""
    now = clock.now()
    lapsed = 0
    due = Consultation.objects.filter(status=ConsultationStatus.REQUESTED, accept_deadline__lte=now).values_list(
        "pk", flat=True
    )
    for consultation_id in list(due[:500]):
        with transaction.atomic():
            consultation = _lock(consultation_id)
            if consultation.status != ConsultationStatus.REQUESTED:
                continue
            consultation.status = ConsultationStatus.LAPSED
            consultation.ended_at = now
            if consultation.payment_status == PaymentStatus.PAID:
                consultation.payment_status = PaymentStatus.REFUNDED
            consultation.save(update_fields=["status", "ended_at", "payment_status"])
            audit.record(None, "consultation.lapse", consultation, patient=consultation.patient_id)
            _publish_status(consultation)
            transaction.on_commit(functools.partial(_tell_lapsed, consultation))
            lapsed += 1
    return lapsed


def _tell_lapsed(consultation: Consultation) -> None:
    refunded = consultation.payment_status == PaymentStatus.REFUNDED
    notify(
        consultation.requested_by,
        "consultation_lapsed",
        _("Your question was not accepted in time"),
        _("The doctor did not accept your question in time; it has been closed and refunded.")
        if refunded
        else _("The doctor did not accept your question in time; it has been closed."),
        link=f"/consultations/{consultation.pk}/",
    )


def confirm_visit_type(user: User, consultation_id: int, visit_type: str, reason: str = "") -> Consultation:
    """The doctor confirms "follow-up" (proof accepted) or "advice only" (R1, R2)."""
    access.access_for_doctor(user, consultation_id)
    ensure(visit_type in (VisitType.FOLLOW_UP, VisitType.ADVICE_ONLY), INVALID_INPUT, field="visit_type")
    reason = (reason or "").strip()[:300]
    with transaction.atomic():
        consultation = _lock(consultation_id)
        ensure(consultation.status == ConsultationStatus.ACTIVE, errors.CONSULTATION_NOT_ACTIVE)
        ensure(not consultation.records.exists(), errors.RECORD_ALREADY_SIGNED)
        if visit_type == VisitType.FOLLOW_UP:
            ensure(
                not consultation.declared_first_visit and consultation.proof_kind != ProofKind.NONE,
                errors.FOLLOW_UP_NEEDS_PROOF,
            )
        consultation.visit_type = visit_type
        consultation.visit_type_reason = reason
        consultation.save(update_fields=["visit_type", "visit_type_reason"])
        audit.record(
            user, "consultation.visit_type", consultation, patient=consultation.patient_id, detail={"type": visit_type}
        )
        _publish_status(consultation)
    return consultation


def refer_in_person(user: User, consultation_id: int, reason: str) -> Consultation:
    """End the visit with "please see a doctor in person" and the reason."""
    access.access_for_doctor(user, consultation_id)
    reason = (reason or "").strip()
    ensure(reason, errors.REASON_REQUIRED, field="reason")
    ensure(len(reason) <= 300, INVALID_INPUT, field="reason")
    with transaction.atomic():
        consultation = _lock(consultation_id)
        ensure(consultation.status == ConsultationStatus.ACTIVE, errors.CONSULTATION_NOT_ACTIVE)
        consultation.status = ConsultationStatus.REFERRED_IN_PERSON
        consultation.end_reason = reason
        consultation.ended_at = clock.now()
        consultation.save(update_fields=["status", "end_reason", "ended_at"])
        _append_message(consultation, None, "", body="", kind=MessageKind.SYSTEM, system_code="referred")
        _close_appointment(consultation)
        audit.record(user, "consultation.refer_in_person", consultation, patient=consultation.patient_id)
        _publish_status(consultation)
    return consultation


def _close_appointment(consultation: Consultation) -> None:
    if consultation.appointment_id:
        Appointment.objects.filter(pk=consultation.appointment_id, status__in=ACTIVE_STATUSES).update(
            status=AppointmentStatus.COMPLETED
        )


def complete_consultation(user: User, consultation_id: int) -> Consultation:
    """Close the visit; it needs a signed record (R21). The free follow-up window starts."""
    access.access_for_doctor(user, consultation_id)
    with transaction.atomic():
        consultation = _lock(consultation_id)
        ensure(consultation.status == ConsultationStatus.ACTIVE, errors.CONSULTATION_NOT_ACTIVE)
        ensure(consultation.records.filter(is_current=True).exists(), errors.RECORD_REQUIRED)
        now = clock.now()
        consultation.status = ConsultationStatus.COMPLETED
        consultation.ended_at = now
        consultation.followup_until = now + dt.timedelta(days=settings.NETHOSPITAL_FOLLOWUP_DAYS)
        consultation.followup_questions_left = settings.NETHOSPITAL_FOLLOWUP_QUESTIONS
        consultation.save(update_fields=["status", "ended_at", "followup_until", "followup_questions_left"])
        _append_message(consultation, None, "", body="", kind=MessageKind.SYSTEM, system_code="completed")
        _close_appointment(consultation)
        audit.record(user, "consultation.complete", consultation, patient=consultation.patient_id)
        _publish_status(consultation)
    return consultation


def add_participant(user: User, consultation_id: int, invitee_email: str) -> Participant:
    """A third person joins: a guardian of the patient, or a village station operator hosting them."""
    with transaction.atomic():
        consultation = _lock(consultation_id)
        access.check_participant(user, consultation)
        ensure(consultation.is_open, errors.CONSULTATION_CLOSED)
        invitee = User.objects.filter(email__iexact=(invitee_email or "").strip(), is_active=True).first()
        ensure(invitee is not None, NOT_FOUND, field="email")
        assert invitee is not None
        if invitee.has_role(Role.STATION_OPERATOR):
            role = ParticipantRole.STATION_OPERATOR
        elif access.is_guardian_of(invitee, consultation):
            role = ParticipantRole.GUARDIAN
        else:
            raise DomainError(PERMISSION_DENIED, field="email")
        participant, _created = Participant.objects.get_or_create(
            consultation=consultation, user=invitee, defaults={"role": role, "joined_at": clock.now()}
        )
        if role == ParticipantRole.GUARDIAN and not consultation.guardian_present:
            consultation.guardian_present = True
            consultation.save(update_fields=["guardian_present"])
        audit.record(
            user, "consultation.participant.add", consultation, patient=consultation.patient_id, detail={"role": role}
        )
        _publish_status(consultation)
    return participant


# --- chat -------------------------------------------------------------------------------------------
def _clean_body(body: str | None) -> str:
    text = (body or "").strip()
    ensure(text, errors.MESSAGE_EMPTY, field="body")
    limit = settings.NETHOSPITAL_MESSAGE_MAX_CHARS
    ensure(len(text) <= limit, errors.MESSAGE_TOO_LONG, field="body", limit=limit)
    return text


# Client ids are 1-64 printable characters (below): a longer value pads a list of them (prepared.py).
NO_CLIENT_ID = "~" * 65


def _clean_client_id(client_id: str | None) -> str:
    value = (client_id or "").strip()
    ensure(0 < len(value) <= 64 and value.isprintable(), errors.CLIENT_ID_INVALID, field="client_id")
    return value


SYSTEM_TEXTS = {
    "started": _("The doctor has joined the consultation."),
    "completed": _("The doctor has completed the consultation. The visit record is available."),
    "referred": _("The doctor asks you to see a doctor in person."),
    "call_started": _("A video call started."),
    "call_ended": _("The video call ended."),
}


def _append_message(
    consultation: Consultation,
    sender: User | None,
    role: str,
    *,
    body: str,
    client_id: str = "",
    kind: str = MessageKind.TEXT,
    attachment: Attachment | None = None,
    system_code: str = "",
    followup: bool = False,
) -> Message:
    """Append under the consultation's row lock: the next sequence number, no gaps."""
    seq = consultation.last_seq + 1
    Consultation.objects.filter(pk=consultation.pk).update(last_seq=seq)
    consultation.last_seq = seq
    return Message.objects.create(
        consultation=consultation,
        hospital_id=consultation.hospital_id,
        seq=seq,
        sender=sender,
        sender_role=role,
        client_id=client_id,
        kind=kind,
        body=body if kind != MessageKind.SYSTEM else system_code,
        attachment=attachment,
        is_followup_question=followup,
        sent_at=clock.now(),
    )


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool  # False when a resend returned the stored message


def message_payload(message: Message) -> dict[str, Any]:
    """What clients receive for one message (text is escaped by the client, never rendered as HTML)."""
    body = message.body
    if message.kind == MessageKind.SYSTEM:
        body = str(SYSTEM_TEXTS.get(message.body, message.body))
    payload: dict[str, Any] = {
        "seq": message.seq,
        "client_id": message.client_id,
        "sender_id": message.sender_id,
        "sender_role": message.sender_role,
        "kind": message.kind,
        "body": body,
        "sent_at": message.sent_at.isoformat(),
    }
    if message.kind == MessageKind.SYSTEM:
        payload["system_code"] = message.body  # lets each reader show it in their own language
    if message.attachment_id:
        att = message.attachment
        assert att is not None
        payload["attachment"] = {
            "id": att.pk,
            "name": att.original_name,
            "content_type": att.content_type,
            "size": att.size,
            "url": f"/consultations/{message.consultation_id}/files/{att.pk}/",
        }
    return payload


@dataclass(frozen=True)
class MessageRequest:
    """One chat message to store: who writes, where, the sender's id for it, and the request
    context to audit it under (the websocket's address; the current one when None)."""

    user: User
    consultation_id: int
    client_id: str
    body: str = ""
    attachment_id: int | None = None
    request_context: context.RequestContext | None = None


def post_message(
    user: User, consultation_id: int, client_id: str, body: str = "", attachment_id: int | None = None
) -> Posted:
    """Store a chat message before it is acknowledged; a resend with the same client id returns the
    stored one. In the free follow-up window the patient's side may ask a limited number of questions."""
    (result,) = post_messages([MessageRequest(user, consultation_id, client_id, body, attachment_id)])
    if isinstance(result, DomainError):
        raise result
    return result


def post_messages(requests: list[MessageRequest]) -> list[Posted | DomainError]:
    """Store several chat messages in one transaction: the group commit of the chat.

    Every message is audited in the transaction that stores it, and the audit chain has one head, so
    one message per transaction would serialise every chat of the platform on one commit at a time
    (docs/benchmarks.md). Messages that arrive together are stored together instead: their
    consultations are locked in id order (the order used everywhere: consultation rows, then their
    children, then the audit chain); each message is checked first, with no write, so that a refusal
    (a closed consultation, an outsider, an over-long text) refuses that message only; then the
    accepted ones are written and audited one by one, and one commit makes them all durable. The
    result for each request is in its place: ``Posted`` or the ``DomainError`` that refused it."""
    results: list[Posted | DomainError | None] = [None] * len(requests)
    cleaned: dict[int, tuple[str, str]] = {}
    limit = settings.NETHOSPITAL_MESSAGE_MAX_CHARS
    for index, request in enumerate(requests):
        try:
            client_id = _clean_client_id(request.client_id)
            body = _clean_body(request.body) if request.attachment_id is None else (request.body or "").strip()[:limit]
            cleaned[index] = (client_id, body)
        except DomainError as refusal:
            results[index] = refusal
    if cleaned:
        with transaction.atomic():
            ids = sorted({requests[index].consultation_id for index in cleaned})
            locked = {consultation.pk: consultation for consultation in _LOCK_FOR_CHAT(ids)}
            _answer_resends(requests, cleaned, results)  # under the locks: no one else can store it now
            _store_accepted(requests, cleaned, results, locked)
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


# The chat's hot queries, compiled once (prepared.py). The consultations of a batch with what the
# checks read (the patient is loaded if a check needs it, which is rare), locked in id order or not.
_LOCK_FOR_CHAT: Prepared = Prepared(
    lambda ids: (
        Consultation.objects.select_for_update(of=("self",))
        .select_related("practitioner", "practitioner__user")
        .filter(pk__in=ids)
        .order_by("pk")
    ),
    pads=(prepared.no_id,),
)
_FOR_CHAT: Prepared = Prepared(
    lambda ids: Consultation.objects.select_related("practitioner", "practitioner__user").filter(pk__in=ids),
    pads=(prepared.no_id,),
)
# Messages already stored under one of these client ids: (pk, consultation, sender, client id).
_STORED_CLIENT_IDS: Prepared = Prepared(
    lambda consultation_ids, client_ids: (
        Message.objects.filter(consultation_id__in=consultation_ids)
        .filter(client_id__in=client_ids)
        .values_list("pk", "consultation_id", "sender_id", "client_id")
    ),
    pads=(prepared.no_id, lambda index: f"{NO_CLIENT_ID}{index}"),
)
# The listed participants of these consultations among these users.
_LISTED: Prepared = Prepared(
    lambda consultation_ids, user_ids: (
        Participant.objects.filter(consultation_id__in=consultation_ids)
        .filter(user_id__in=user_ids)
        .values_list("consultation_id", "user_id", "role", "pk", "last_read_seq")
    ),
    pads=(prepared.no_id, prepared.no_id),
)


def _answer_resends(
    requests: list[MessageRequest], cleaned: dict[int, tuple[str, str]], results: list[Posted | DomainError | None]
) -> None:
    """A message whose client id is stored already is a resend: it gets the stored message."""
    if not cleaned:
        return
    consultation_ids = sorted({requests[index].consultation_id for index in cleaned})
    client_ids = sorted({client_id for client_id, _body in cleaned.values()})
    stored = {
        (consultation_id, sender_id, client_id): pk
        for pk, consultation_id, sender_id, client_id in _STORED_CLIENT_IDS(consultation_ids, client_ids)
    }
    found: dict[int, int] = {}
    for index, (client_id, _body) in list(cleaned.items()):
        request = requests[index]
        pk = stored.get((request.consultation_id, request.user.pk, client_id))
        if pk is not None:
            found[index] = pk
            del cleaned[index]
    if found:  # a resend (rare): the stored message, as it is sent
        messages = Message.objects.select_related("attachment").in_bulk(set(found.values()))
        for index, pk in found.items():
            results[index] = Posted(messages[pk], created=False)


def _store_accepted(
    requests: list[MessageRequest],
    cleaned: dict[int, tuple[str, str]],
    results: list[Posted | DomainError | None],
    locked: dict[int, Consultation],
) -> None:
    """Check each message under its consultation's lock, then write and audit the accepted ones."""
    roles: dict[tuple[int, int], str] = {}
    # The listed participants of the batch's consultations, in one query (see _role_in_batch).
    users = sorted({requests[index].user.pk for index in cleaned if requests[index].user.is_authenticated})
    listed: dict[tuple[int, int], list[Any]] = {
        (consultation_id, user_id): [role]
        for consultation_id, user_id, role, _pk, _last_read in _LISTED(sorted(locked), users)
    }
    accepted: list[tuple[int, Consultation, str, bool, Attachment | None]] = []
    firsts: dict[tuple[int, int, str], int] = {}  # the same message twice in one batch: the second is a resend
    for index, (client_id, _body) in cleaned.items():
        request = requests[index]
        consultation = locked.get(request.consultation_id)
        scope = context.using(request.request_context) if request.request_context else nullcontext()
        try:
            with scope:
                ensure(consultation is not None, errors.CONSULTATION_NOT_FOUND)
                assert consultation is not None
                key = (request.user.pk, consultation.pk)
                if key not in roles:
                    roles[key] = _role_in_batch(request.user, consultation, listed)
                same = (consultation.pk, request.user.pk, client_id)
                if same in firsts:
                    continue  # answered below, with the first one's message
                followup, attachment = _check_message(request, consultation, roles[key])
        except DomainError as refusal:
            results[index] = refusal
            continue
        firsts[same] = index
        accepted.append((index, consultation, roles[key], followup, attachment))
    if not accepted:
        return
    now = clock.now()
    rows: list[Message] = []
    for index, consultation, role, followup, attachment in accepted:
        client_id, body = cleaned[index]
        consultation.last_seq += 1
        rows.append(
            Message(
                consultation=consultation,
                hospital_id=consultation.hospital_id,
                seq=consultation.last_seq,
                sender=requests[index].user,
                sender_role=role,
                client_id=client_id,
                kind=MessageKind.ATTACHMENT if attachment else MessageKind.TEXT,
                body=body,
                attachment=attachment,
                is_followup_question=followup,
                sent_at=now,
            )
        )
    bulk.insert(rows)
    touched = {consultation.pk: consultation for _index, consultation, _role, _f, _a in accepted}
    benches: dict[int, int] = {}
    _save_counters(touched, followups={c.pk for _i, c, _r, followup, _a in accepted if followup})
    # Every message audited, all under one lock of the audit chain's head (audit.record_many).
    audit.record_many(
        [
            audit.Pending(
                requests[index].user,
                "consultation.message.write",
                consultation,
                patient=consultation.patient_id,
                hospital=consultation.hospital_id,
                role=role,
                detail={"seq": message.seq},
                request_context=requests[index].request_context,
            )
            for (index, consultation, role, _followup, _attachment), message in zip(accepted, rows, strict=True)
        ]
    )
    for (index, consultation, role, _followup, _attachment), message in zip(accepted, rows, strict=True):
        results[index] = Posted(message, created=True)
        _publish_message(consultation, message)
        if role in access.PATIENT_SIDE and consultation.practitioner_id:
            benches.setdefault(consultation.practitioner_id, consultation.pk)
    for practitioner_id, consultation_id in benches.items():
        # One refresh per doctor and batch: the workbench reloads its panels, not a message.
        events.publish(events.workbench_group(practitioner_id), "bench.changed", {"consultation": consultation_id})
    for index, (client_id, _body) in cleaned.items():
        if results[index] is None:  # the same message twice in the batch
            request = requests[index]
            first = results[firsts[(request.consultation_id, request.user.pk, client_id)]]
            assert isinstance(first, Posted)
            results[index] = Posted(first.message, created=False)


def _save_counters(consultations: dict[int, Consultation], followups: set[int]) -> None:
    """The new ``last_seq`` of each locked consultation in one statement (a plain CASE: the ORM's
    Case/When costs more to build than the rest of a small batch), and the follow-up questions left
    where one was asked."""
    table = connection.ops.quote_name(Consultation._meta.db_table)
    pk, last_seq = connection.ops.quote_name("id"), connection.ops.quote_name("last_seq")
    cases = " ".join(f"WHEN {int(key)} THEN {int(c.last_seq)}" for key, c in consultations.items())
    keys = ", ".join(str(int(key)) for key in consultations)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {last_seq} = CASE {pk} {cases} END WHERE {pk} IN ({keys})")  # noqa: S608 - integers only
    for key in followups:
        Consultation.objects.filter(pk=key).update(followup_questions_left=consultations[key].followup_questions_left)


def _as_its_doctor(user: User, consultation: Consultation) -> str | None:
    """The doctor role if ``user`` is the consultation's doctor and may act as one now, the checks of
    ``access.acting_doctor`` (a doctor's role, this session's second factor (R6), allowed to practise
    (R5)) made on the practitioner row loaded with the consultation; None if not its doctor. For the
    chat's frequent writes (messages, read receipts), where the queries of the general check add up."""
    practitioner = consultation.practitioner
    if not user.is_authenticated or practitioner is None or practitioner.user_id != user.pk:
        return None
    ensure(user.has_role(Role.DOCTOR), PERMISSION_DENIED)
    ensure(user.is_mfa_verified, MFA_REQUIRED)
    ensure_can_practise(practitioner)
    return ParticipantRole.DOCTOR


def _listed_role(user: User, consultation: Consultation, listed: dict[tuple[int, int], list[Any]]) -> str:
    """``access.check_participant`` for anyone but the consultation's doctor: a listed participant
    (the requester always is) from ``listed``, read beforehand for many at once, as
    ``access.participant_role`` looks; anyone else, and a listed doctor, through the full check."""
    row = listed.get((consultation.pk, user.pk)) if user.is_authenticated else None
    if row is not None and row[0] != ParticipantRole.DOCTOR:
        return str(row[0])
    return access.check_participant(user, consultation)


def _role_in_batch(user: User, consultation: Consultation, listed: dict[tuple[int, int], list[Any]]) -> str:
    """``access.check_participant`` for the batch, without a query in the usual cases: the doctor of
    the consultation by ``_as_its_doctor`` on the practitioner row locked with it, anyone listed by
    ``_listed_role``."""
    return _as_its_doctor(user, consultation) or _listed_role(user, consultation, listed)


def _check_message(request: MessageRequest, consultation: Consultation, role: str) -> tuple[bool, Attachment | None]:
    """May this participant write now (and is it a free follow-up question)? Changes nothing in the
    database; the follow-up question is counted on the locked row, saved with the batch."""
    followup = False
    if consultation.status == ConsultationStatus.COMPLETED:
        now = clock.now()
        in_window = consultation.followup_until is not None and now < consultation.followup_until
        ensure(in_window, errors.FOLLOWUP_OVER)
        if role in access.PATIENT_SIDE:
            ensure(consultation.followup_questions_left > 0, errors.FOLLOWUP_OVER)
            consultation.followup_questions_left -= 1
            followup = True
    elif consultation.status in (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING):
        # Before the doctor joins, the patient's side may add details; the doctor cannot write yet.
        ensure(role in access.PATIENT_SIDE, errors.CONSULTATION_NOT_ACTIVE)
    else:
        ensure(consultation.status == ConsultationStatus.ACTIVE, errors.CONSULTATION_CLOSED)
    attachment = None
    if request.attachment_id is not None:
        attachment = Attachment.objects.filter(pk=request.attachment_id, consultation=consultation).first()
        ensure(attachment is not None, NOT_FOUND, field="attachment_id")
    return followup, attachment


def _publish_message(consultation: Consultation, message: Message) -> None:
    payload = message_payload(message)
    events.publish(events.consultation_group(consultation.pk), "chat.message", payload)


def messages_after(user: User, consultation_id: int, after_seq: int = 0, limit: int = 500) -> list[Message]:
    """Everything after the last sequence the client saw, in order (an audited read)."""
    access.access_consultation(user, consultation_id, "messages.read")
    ensure(after_seq >= 0 and 0 < limit <= 1000, INVALID_INPUT, field="after")
    return list(
        Message.objects.filter(consultation_id=consultation_id, seq__gt=after_seq)
        .select_related("attachment")
        .order_by("seq")[:limit]
    )


@dataclass(frozen=True)
class ReadRequest:
    """A read receipt: ``user`` has read the consultation up to ``seq``."""

    user: User
    consultation_id: int
    seq: int


def mark_read(user: User, consultation_id: int, seq: int) -> int:
    """Read receipt: the participant has read up to ``seq``. Never moves backwards."""
    (result,) = mark_read_many([ReadRequest(user, consultation_id, seq)])
    if isinstance(result, DomainError):
        raise result
    return result


def mark_read_many(requests: list[ReadRequest]) -> list[int | DomainError]:
    """Read receipts that arrive together, stored together: receipts come as often as messages, so
    they are read in two queries for all of them (the consultations, their listed participants) and
    stored in one statement that never moves a participant backwards. Each result is the seq stored
    (capped at the consultation's last) or the ``DomainError`` that refused that receipt."""
    ids = sorted({request.consultation_id for request in requests})
    consultations = {consultation.pk: consultation for consultation in _FOR_CHAT(ids)}
    users = sorted({request.user.pk for request in requests if request.user.is_authenticated})
    listed: dict[tuple[int, int], list[Any]] = {
        (consultation_id, user_id): [role, pk, last_read]
        for consultation_id, user_id, role, pk, last_read in _LISTED(ids, users)
    }
    results: list[int | DomainError] = []
    moves: dict[int, tuple[int, int, int, str]] = {}  # participant -> (seq, consultation, user, role)
    for request in requests:
        try:
            consultation = consultations.get(request.consultation_id)
            ensure(consultation is not None, errors.CONSULTATION_NOT_FOUND)
            assert consultation is not None
            role = _as_its_doctor(request.user, consultation) or _listed_role(request.user, consultation, listed)
        except DomainError as refusal:
            results.append(refusal)
            continue
        seq = max(0, min(int(request.seq), consultation.last_seq))
        results.append(seq)
        row = listed.get((consultation.pk, request.user.pk))
        if row is None:  # someone acting for the patient, reading for the first time
            defaults = {"role": role, "joined_at": clock.now(), "last_read_seq": seq}
            participant, created = Participant.objects.get_or_create(
                consultation=consultation, user=request.user, defaults=defaults
            )
            row = listed[(consultation.pk, request.user.pk)] = [role, participant.pk, 0 if created else None]
            if not created:
                row[2] = participant.last_read_seq
            elif seq > 0:
                moves[participant.pk] = (seq, consultation.pk, request.user.pk, role)
                row[2] = seq
                continue
        if seq > row[2]:
            row[2] = seq
            moves[row[1]] = (seq, consultation.pk, request.user.pk, role)
    if moves:
        _move_read_marks({pk: move[0] for pk, move in moves.items()})
        for seq, consultation_id, user_id, role in moves.values():
            events.publish(
                events.consultation_group(consultation_id), "chat.read", {"user_id": user_id, "role": role, "seq": seq}
            )
    return results


def _move_read_marks(marks: dict[int, int]) -> None:
    """Set each participant's ``last_read_seq`` to its new seq unless it is already further (a receipt
    from another tab or server process): one statement for all, never backwards."""
    table = connection.ops.quote_name(Participant._meta.db_table)
    pk, column = connection.ops.quote_name("id"), connection.ops.quote_name("last_read_seq")
    cases = " ".join(f"WHEN {pk} = {int(key)} AND {column} < {int(seq)} THEN {int(seq)}" for key, seq in marks.items())
    keys = ", ".join(str(int(key)) for key in marks)
    with connection.cursor() as cursor:
        cursor.execute(  # integers only
            f"UPDATE {table} SET {column} = CASE {cases} ELSE {column} END WHERE {pk} IN ({keys})"  # noqa: S608
        )


def unread_count(user: User, consultation: Consultation) -> int:
    read = (
        Participant.objects.filter(consultation=consultation, user=user).values_list("last_read_seq", flat=True).first()
    )
    return consultation.messages.filter(seq__gt=read or 0).exclude(sender=user).count()


# --- calls ------------------------------------------------------------------------------------------
def start_call(user: User, consultation_id: int) -> CallRecord:
    with transaction.atomic():
        consultation = _lock(consultation_id)
        access.check_participant(user, consultation)
        ensure(consultation.status == ConsultationStatus.ACTIVE, errors.CONSULTATION_NOT_ACTIVE)
        ensure(consultation.channel == ConsultationChannel.VIDEO, errors.CALL_NEEDS_VIDEO)
        call = CallRecord.objects.create(
            consultation=consultation,
            hospital_id=consultation.hospital_id,
            call_id=uuid.uuid4().hex,
            started_by=user,
            started_at=clock.now(),
            participant_ids=[user.pk],
        )
        _append_message(consultation, None, "", body="", kind=MessageKind.SYSTEM, system_code="call_started")
        audit.record(user, "consultation.call.start", consultation, patient=consultation.patient_id)
        events.publish(
            events.consultation_group(consultation.pk), "call.state", {"call_id": call.call_id, "state": "ringing"}
        )
    return call


def update_call(user: User, call_id: str, state: str) -> CallRecord:
    """A participant reports the call joined, connected, failed or ended."""
    ensure(state in ("joined", "connected", "failed", "ended"), INVALID_INPUT, field="state")
    call = CallRecord.objects.filter(call_id=call_id).first()
    ensure(call is not None, errors.CALL_NOT_FOUND)
    assert call is not None
    with transaction.atomic():
        consultation = _lock(call.consultation_id)
        access.check_participant(user, consultation)
        call = CallRecord.objects.select_for_update().get(pk=call.pk)
        now = clock.now()
        if user.pk not in call.participant_ids:
            call.participant_ids = [*call.participant_ids, user.pk]
        if call.outcome in (CallOutcome.ENDED, CallOutcome.FAILED):
            call.save(update_fields=["participant_ids"])
            return call
        if state == "connected" and call.connected_at is None:
            call.connected_at = now
            call.outcome = CallOutcome.CONNECTED
        elif state == "failed" and call.connected_at is None:
            call.outcome = CallOutcome.FAILED
            call.ended_at = now
        elif state in ("ended", "failed"):
            call.outcome = CallOutcome.ENDED
            call.ended_at = now
        call.save()
        if call.ended_at is not None:
            _append_message(consultation, None, "", body="", kind=MessageKind.SYSTEM, system_code="call_ended")
            audit.record(
                user,
                "consultation.call.end",
                consultation,
                patient=consultation.patient_id,
                detail={"outcome": call.outcome, "seconds": call.duration_seconds},
            )
        events.publish(
            events.consultation_group(consultation.pk), "call.state", {"call_id": call.call_id, "state": call.outcome}
        )
    return call


# --- the visit record (R21) ------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordInput:
    chief_complaint: str
    present_illness: str = ""
    past_history: str = ""
    allergies: str = ""
    findings: str = ""
    advice: str = ""
    followup_plan: str = ""
    diagnosis_codes: list[str] = field(default_factory=list)


RECORD_LIMITS = {
    "chief_complaint": 300,
    "present_illness": 4000,
    "past_history": 4000,
    "allergies": 1000,
    "findings": 4000,
    "advice": 4000,
    "followup_plan": 2000,
}


def _clean_record(consultation: Consultation, data: RecordInput) -> tuple[dict[str, str], list[ICD10Code]]:
    values = {name: (getattr(data, name) or "").strip() for name in RECORD_LIMITS}
    problems: dict[str, list[str]] = {}
    if not values["chief_complaint"]:
        problems["chief_complaint"] = [str(_("This field is required."))]
    for name, limit in RECORD_LIMITS.items():
        if len(values[name]) > limit:
            problems.setdefault(name, []).append(str(_("At most %(limit)s characters.") % {"limit": limit}))
    if problems:
        raise DomainError(INVALID_INPUT, fields=problems)
    codes = [c.strip().upper() for c in data.diagnosis_codes if c and c.strip()]
    if codes and not consultation.may_diagnose:
        raise DomainError(errors.DIAGNOSIS_NOT_ALLOWED, field="diagnosis_codes")  # R1
    if consultation.may_diagnose:
        ensure(codes, errors.DIAGNOSIS_REQUIRED, field="diagnosis_codes")
    found = {c.code: c for c in ICD10Code.objects.filter(code__in=codes)}
    for code in codes:
        ensure(code in found, errors.UNKNOWN_ICD10, field="diagnosis_codes", code=code[:10])
    return values, [found[c] for c in dict.fromkeys(codes)]


def _content_hash(values: dict[str, str], codes: list[ICD10Code], consultation: Consultation, version: int) -> str:
    canonical = json.dumps(
        {"consultation": consultation.pk, "version": version, **values, "diagnoses": [c.code for c in codes]},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _feed_allergies(user: User, consultation: Consultation, text: str, record: VisitRecord) -> None:
    for part in re.split(r"[,，;；、\n]+", text):
        substance = part.strip()[:100]
        if not substance or substance.lower() in {"none", "nkda", "无", "否认"}:
            continue
        Allergy.objects.get_or_create(
            patient_id=consultation.patient_id,
            substance=substance,
            defaults={"recorded_by": user, "recorded_at": clock.now(), "source": f"visit record {record.pk}"},
        )


def _write_record(
    user: User, practitioner: Practitioner, consultation: Consultation, data: RecordInput, version: int, **extra: Any
) -> VisitRecord:
    values, codes = _clean_record(consultation, data)
    record = VisitRecord.objects.create(
        consultation=consultation,
        patient_id=consultation.patient_id,
        hospital_id=consultation.hospital_id,
        practitioner=practitioner,
        version=version,
        signed_by=user,
        signed_at=clock.now(),
        content_hash=_content_hash(values, codes, consultation, version),
        retain_until=_years_after(clock.today(), settings.NETHOSPITAL_RECORD_RETENTION_YEARS),
        **values,
        **extra,
    )
    VisitDiagnosis.objects.bulk_create(
        [VisitDiagnosis(record=record, code=code, position=i) for i, code in enumerate(codes)]
    )
    _feed_allergies(user, consultation, values["allergies"], record)
    return record


def sign_visit_record(user: User, consultation_id: int, data: RecordInput) -> VisitRecord:
    """The doctor signs the record of an active consultation, once; it is locked from then on."""
    _c, practitioner = access.access_for_doctor(user, consultation_id)
    with transaction.atomic():
        consultation = _lock(consultation_id)
        ensure(consultation.practitioner_id == practitioner.pk, errors.CONSULTATION_NOT_FOUND)
        ensure(consultation.status == ConsultationStatus.ACTIVE, errors.CONSULTATION_NOT_ACTIVE)
        ensure(not consultation.records.exists(), errors.RECORD_ALREADY_SIGNED)
        if consultation.visit_type == VisitType.UNDECIDED:
            # Not confirmed as a follow-up: the record is advice only (R1).
            consultation.visit_type = VisitType.ADVICE_ONLY
            consultation.save(update_fields=["visit_type"])
        record = _write_record(user, practitioner, consultation, data, 1)
        audit.record(
            user,
            "consultation.record.sign",
            record,
            patient=consultation.patient_id,
            hospital=consultation.hospital_id,
            detail={"version": 1, "hash": record.content_hash},
        )
        _publish_status(consultation)
    return record


def correct_visit_record(user: User, record_id: int, data: RecordInput, reason: str) -> VisitRecord:
    """A correction is a new signed version naming the old one and the reason; the old one stays."""
    reason = (reason or "").strip()
    ensure(reason, errors.CORRECTION_REASON_REQUIRED, field="reason")
    ensure(len(reason) <= 300, INVALID_INPUT, field="reason")
    old = VisitRecord.objects.filter(pk=record_id).first()
    ensure(old is not None, NOT_FOUND)
    assert old is not None
    _c, practitioner = access.access_for_doctor(user, old.consultation_id)
    with transaction.atomic():
        consultation = _lock(old.consultation_id)
        ensure(consultation.practitioner_id == practitioner.pk, errors.CONSULTATION_NOT_FOUND)
        old = VisitRecord.objects.select_for_update().get(pk=record_id)
        ensure(old.is_current, errors.RECORD_NOT_CURRENT)
        VisitRecord.objects.filter(pk=old.pk).update(is_current=False)
        record = _write_record(
            user, practitioner, consultation, data, old.version + 1, replaces=old, correction_reason=reason
        )
        audit.record(
            user,
            "consultation.record.correct",
            record,
            patient=consultation.patient_id,
            hospital=consultation.hospital_id,
            detail={"version": record.version, "replaces": old.pk, "hash": record.content_hash},
        )
        _publish_status(consultation)
    return record


def current_record(consultation: Consultation) -> VisitRecord | None:
    return consultation.records.filter(is_current=True).prefetch_related("diagnoses").first()


# --- reviews ----------------------------------------------------------------------------------------
def submit_review(user: User, consultation_id: int, rating: int, text: str = "") -> Review:
    ensure(isinstance(rating, int) and 1 <= rating <= 5, errors.RATING_INVALID, field="rating")
    text = (text or "").strip()
    ensure(len(text) <= 1000, INVALID_INPUT, field="text")
    with transaction.atomic():
        consultation = _lock(consultation_id)
        role = access.check_participant(user, consultation)
        ensure(role in access.PATIENT_SIDE and role != ParticipantRole.STATION_OPERATOR, PERMISSION_DENIED)
        ensure(consultation.status == ConsultationStatus.COMPLETED, errors.REVIEW_NOT_ALLOWED)
        ensure(not Review.objects.filter(consultation=consultation).exists(), errors.REVIEW_EXISTS)
        assert consultation.practitioner_id is not None
        review = Review.objects.create(
            consultation=consultation,
            practitioner_id=consultation.practitioner_id,
            hospital_id=consultation.hospital_id,
            author=user,
            rating=rating,
            text=text,
            created_at=clock.now(),
        )
        audit.record(user, "consultation.review", review, patient=consultation.patient_id, detail={"rating": rating})
    return review


def moderate_review(user: User, review_id: int, publish: bool, reason: str = "") -> Review:
    """A hospital admin (with MFA) publishes or hides a review; published ratings feed the directory."""
    ensure(user.is_authenticated, PERMISSION_DENIED)
    review = Review.objects.select_related("practitioner").filter(pk=review_id).first()
    ensure(review is not None, NOT_FOUND)
    assert review is not None
    ensure(
        may_administer(user, review.hospital_id) or may_administer(user, review.practitioner.primary_institution_id),
        PERMISSION_DENIED,
    )
    ensure(user.is_mfa_verified, MFA_REQUIRED)
    reason = (reason or "").strip()[:200]
    if not publish:
        ensure(reason, errors.REASON_REQUIRED, field="reason")
    with transaction.atomic():
        review = Review.objects.select_for_update().get(pk=review_id)
        review.status = ReviewStatus.PUBLISHED if publish else ReviewStatus.HIDDEN
        review.moderated_by = user
        review.moderated_at = clock.now()
        review.moderation_reason = reason
        review.save(update_fields=["status", "moderated_by", "moderated_at", "moderation_reason"])
        _refresh_rating(review.practitioner_id)
        audit.record(user, "consultation.review.moderate", review, detail={"status": review.status})
    return review


def _refresh_rating(practitioner_id: int) -> None:
    stats = Review.objects.filter(practitioner_id=practitioner_id, status=ReviewStatus.PUBLISHED).aggregate(
        avg=Avg("rating"), n=Count("pk")
    )
    Practitioner.objects.filter(pk=practitioner_id).update(
        rating_average=round(stats["avg"], 2) if stats["avg"] is not None else None, rating_count=stats["n"]
    )


# --- live helpers -------------------------------------------------------------------------------------
def _publish_queue(department_id: int | None) -> None:
    if department_id is None:
        return
    events.publish(events.queue_group(department_id), "queue.changed", {"department": department_id})
    events.publish(events.department_bench_group(department_id), "bench.changed", {"department": department_id})


def _publish_status(consultation: Consultation) -> None:
    payload = {
        "consultation": consultation.pk,
        "status": consultation.status,
        "visit_type": consultation.visit_type,
        "last_seq": consultation.last_seq,
    }
    events.publish(events.consultation_group(consultation.pk), "consultation.status", payload)
    if consultation.practitioner_id:
        events.publish(events.workbench_group(consultation.practitioner_id), "bench.changed", payload)


# --- queue position -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueuePosition:
    position: int  # 1 = next; 0 = no longer waiting
    ahead: int
    estimated_minutes: int
    doctors_online: int


def queue_position(consultation: Consultation) -> QueuePosition:
    if consultation.status != ConsultationStatus.WAITING or consultation.kind != ConsultationKind.QUEUE:
        return QueuePosition(0, 0, 0, 0)
    ahead = Consultation.objects.filter(
        Q(created_at__lt=consultation.created_at) | Q(created_at=consultation.created_at, pk__lt=consultation.pk),
        kind=ConsultationKind.QUEUE,
        status=ConsultationStatus.WAITING,
        department=consultation.department,
    ).count()
    doctors = max(
        1,
        Practitioner.objects.filter(
            department__code=consultation.department.code if consultation.department else "",
            verification_status=VerificationStatus.VERIFIED,
        ).count(),
    )
    per_patient = settings.NETHOSPITAL_QUEUE_MINUTES_PER_PATIENT
    return QueuePosition(ahead + 1, ahead, -(-(ahead + 1) * per_patient // doctors), doctors)


__all__ = [
    "OPEN_STATUSES",
    "Declaration",
    "MessageRequest",
    "Posted",
    "QueuePosition",
    "ReadRequest",
    "RecordInput",
    "accept_request",
    "add_participant",
    "ask_doctor",
    "cancel_consultation",
    "complete_consultation",
    "confirm_visit_type",
    "correct_visit_record",
    "join_queue",
    "lapse_unaccepted_requests",
    "mark_read",
    "mark_read_many",
    "messages_after",
    "moderate_review",
    "open_booked_consultation",
    "pick_next",
    "post_message",
    "post_messages",
    "refer_in_person",
    "sign_visit_record",
    "start_call",
    "submit_review",
    "update_call",
]
