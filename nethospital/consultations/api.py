"""Consultations API: open a consultation (department queue, ask a doctor, from a booked appointment)
with the declaration of the follow-up gate (R1, R2), list and read them (audited), the chat
(messages after a sequence number, idempotent posting by client id, read receipts, files), and the
doctor's steps (pick the next patient, accept, confirm the visit type, refer in person, sign and
correct the visit record, complete), reviews and their moderation, and the ICD-10 search.

Thin: each handler parses its input (pydantic limits every length and number, so huge or malformed
input is a 422), calls one action and shapes the answer. Refusals are 4xx bodies
``{"error": {"code", "message", "fields"}}`` (nethospital.api). Live updates come over the
websocket (consumers.py); this API is for apps and for clients that cannot hold a socket open.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, File, Form, Path, Query, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.security import django_auth

from nethospital.accounts.access import authenticated_user
from nethospital.accounts.models import User
from nethospital.consultations import access, actions, attachments, errors, icd10
from nethospital.consultations.actions import Declaration, RecordInput
from nethospital.consultations.models import Consultation, Message, VisitRecord
from nethospital.core.errors import ensure

router = Router(tags=["consultations"])

MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
MAX_CHARS = settings.NETHOSPITAL_MESSAGE_MAX_CHARS


# --- schemas -------------------------------------------------------------------------------------------
class DeclarationIn(Schema):
    """The patient's declaration (R1, R2). A follow-up needs proof: ``record`` (proof_record_id, one of
    the patient's visit records here), ``other_hospital`` (proof_hospital and proof_summary) or
    ``document`` (proof_attachment_id from ``POST /consultations/proof-documents``)."""

    condition: str = Field(..., max_length=200)
    first_visit: bool
    proof_kind: Literal["none", "record", "other_hospital", "document"] = "none"
    proof_record_id: Id | None = None
    proof_hospital: str = Field("", max_length=120)
    proof_summary: str = Field("", max_length=2000)
    proof_attachment_id: Id | None = None

    def to_declaration(self) -> Declaration:
        return Declaration(
            condition=self.condition,
            first_visit=self.first_visit,
            proof_kind=self.proof_kind,
            proof_record_id=self.proof_record_id,
            proof_hospital=self.proof_hospital,
            proof_summary=self.proof_summary,
            proof_attachment_id=self.proof_attachment_id,
        )


class QueueIn(DeclarationIn):
    patient_id: Id
    department_id: Id
    channel: Literal["text", "video"] = "text"


class AskIn(DeclarationIn):
    patient_id: Id
    practitioner_id: Id
    question: str = Field(..., max_length=MAX_CHARS)
    client_id: str = Field("", max_length=64)


class FromAppointmentIn(DeclarationIn):
    appointment_id: Id


class QueuePositionOut(Schema):
    position: int
    ahead: int
    estimated_minutes: int


class ConsultationOut(Schema):
    id: int
    kind: str
    channel: str
    status: str
    status_display: str
    patient_id: int
    patient_name: str
    practitioner_id: int | None
    doctor_name: str | None
    hospital_id: int
    hospital: str
    department_id: int | None
    department: str | None
    appointment_id: int | None
    declared_condition: str
    declared_first_visit: bool
    proof_kind: str
    visit_type: str
    visit_type_reason: str
    guardian_present: bool
    created_at: dt.datetime
    accept_deadline: dt.datetime | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_reason: str
    followup_until: dt.datetime | None
    followup_questions_left: int
    last_seq: int
    room_url: str
    ws_url: str


class ConsultationDetailOut(ConsultationOut):
    role: str
    may_diagnose: bool
    queue: QueuePositionOut | None
    has_record: bool


class AttachmentOut(Schema):
    id: int
    name: str
    content_type: str
    size: int
    url: str


class MessageOut(Schema):
    seq: int
    client_id: str
    sender_id: int | None
    sender_role: str
    kind: str
    body: str
    sent_at: dt.datetime
    system_code: str | None = None
    attachment: AttachmentOut | None = None


class MessageIn(Schema):
    client_id: str = Field(..., min_length=1, max_length=64)
    body: str = Field(..., max_length=MAX_CHARS)


class MessagesQuery(Schema):
    after: int = Field(0, ge=0, le=MAX_ID)
    limit: int = Field(500, ge=1, le=1000)


class ReadIn(Schema):
    seq: int = Field(..., ge=0, le=MAX_ID)


class ReadOut(Schema):
    seq: int


class ProofDocumentOut(Schema):
    id: int
    patient_id: int
    name: str
    content_type: str
    size: int


class VisitTypeIn(Schema):
    visit_type: Literal["follow_up", "advice_only"]
    reason: str = Field("", max_length=300)


class ReasonIn(Schema):
    reason: str = Field(..., max_length=300)


class RecordIn(Schema):
    chief_complaint: str = Field(..., max_length=300)
    present_illness: str = Field("", max_length=4000)
    past_history: str = Field("", max_length=4000)
    allergies: str = Field("", max_length=1000)
    findings: str = Field("", max_length=4000)
    advice: str = Field("", max_length=4000)
    followup_plan: str = Field("", max_length=2000)
    diagnosis_codes: list[Annotated[str, Field(max_length=10)]] = Field(default_factory=list, max_length=10)

    def to_input(self) -> RecordInput:
        return RecordInput(
            chief_complaint=self.chief_complaint,
            present_illness=self.present_illness,
            past_history=self.past_history,
            allergies=self.allergies,
            findings=self.findings,
            advice=self.advice,
            followup_plan=self.followup_plan,
            diagnosis_codes=list(self.diagnosis_codes),
        )


class CorrectionIn(RecordIn):
    reason: str = Field(..., max_length=300)


class DiagnosisOut(Schema):
    code: str
    name_en: str
    name_zh: str


class RecordOut(Schema):
    id: int
    consultation_id: int
    version: int
    is_current: bool
    replaces_id: int | None
    correction_reason: str
    chief_complaint: str
    present_illness: str
    past_history: str
    allergies: str
    findings: str
    advice: str
    followup_plan: str
    diagnoses: list[DiagnosisOut]
    practitioner_id: int
    signed_at: dt.datetime
    content_hash: str
    retain_until: dt.date
    pdf_url: str


class RecordsOut(Schema):
    current: RecordOut | None
    versions: list[RecordOut]


class PickIn(Schema):
    department_id: Id | None = None


class ParticipantIn(Schema):
    email: str = Field(..., max_length=254)


class ParticipantOut(Schema):
    user_id: int
    role: str


class ReviewIn(Schema):
    rating: int = Field(..., ge=1, le=5)
    text: str = Field("", max_length=1000)


class ReviewOut(Schema):
    id: int
    consultation_id: int
    practitioner_id: int
    rating: int
    text: str
    status: str
    created_at: dt.datetime


class ModerateIn(Schema):
    publish: bool
    reason: str = Field("", max_length=200)


class IcdQuery(Schema):
    q: str = Field("", max_length=50)
    limit: int = Field(20, ge=1, le=50)


class IcdOut(Schema):
    code: str
    name_en: str
    name_zh: str
    is_chronic: bool


# --- shaping -------------------------------------------------------------------------------------------
def consultation_out(c: Consultation) -> dict[str, Any]:
    return {
        "id": c.pk,
        "kind": c.kind,
        "channel": c.channel,
        "status": c.status,
        "status_display": str(c.get_status_display()),
        "patient_id": c.patient_id,
        "patient_name": c.patient.legal_name,
        "practitioner_id": c.practitioner_id,
        "doctor_name": c.practitioner.legal_name if c.practitioner else None,
        "hospital_id": c.hospital_id,
        "hospital": str(c.hospital),
        "department_id": c.department_id,
        "department": str(c.department) if c.department else None,
        "appointment_id": c.appointment_id,
        "declared_condition": c.declared_condition,
        "declared_first_visit": c.declared_first_visit,
        "proof_kind": c.proof_kind,
        "visit_type": c.visit_type,
        "visit_type_reason": c.visit_type_reason,
        "guardian_present": c.guardian_present,
        "created_at": c.created_at,
        "accept_deadline": c.accept_deadline,
        "started_at": c.started_at,
        "ended_at": c.ended_at,
        "end_reason": c.end_reason,
        "followup_until": c.followup_until,
        "followup_questions_left": c.followup_questions_left,
        "last_seq": c.last_seq,
        "room_url": f"/consultations/{c.pk}/",
        "ws_url": f"/ws/consultations/{c.pk}/",
    }


def _loaded(consultation_id: int) -> Consultation:
    return Consultation.objects.select_related("patient", "practitioner", "hospital", "department").get(
        pk=consultation_id
    )


def _detail(user: User, consultation: Consultation) -> ConsultationDetailOut:
    position = actions.queue_position(consultation)
    return ConsultationDetailOut(
        **consultation_out(consultation),
        role=getattr(consultation, "viewer_role", None) or access.participant_role(user, consultation) or "",
        may_diagnose=consultation.may_diagnose,
        queue=QueuePositionOut(
            position=position.position, ahead=position.ahead, estimated_minutes=position.estimated_minutes
        )
        if position.position
        else None,
        has_record=consultation.records.exists(),
    )


def record_out(record: VisitRecord) -> RecordOut:
    rows = record.diagnosis_rows.select_related("code").order_by("position")
    return RecordOut(
        id=record.pk,
        consultation_id=record.consultation_id,
        version=record.version,
        is_current=record.is_current,
        replaces_id=record.replaces_id,
        correction_reason=record.correction_reason,
        chief_complaint=record.chief_complaint,
        present_illness=record.present_illness,
        past_history=record.past_history,
        allergies=record.allergies,
        findings=record.findings,
        advice=record.advice,
        followup_plan=record.followup_plan,
        diagnoses=[DiagnosisOut(code=r.code.code, name_en=r.code.name_en, name_zh=r.code.name_zh) for r in rows],
        practitioner_id=record.practitioner_id,
        signed_at=record.signed_at,
        content_hash=record.content_hash,
        retain_until=record.retain_until,
        pdf_url=f"/consultations/{record.consultation_id}/record.pdf?version={record.version}",
    )


def message_out(message: Message) -> MessageOut:
    return MessageOut(**actions.message_payload(message))


# --- opening ---------------------------------------------------------------------------------------------
@router.post("/consultations/queue", response={201: ConsultationDetailOut}, auth=django_auth)
def join_queue(request: HttpRequest, payload: QueueIn) -> Status:
    """Join a department's queue for the next available doctor."""
    user = authenticated_user(request)
    consultation = actions.join_queue(
        user, payload.patient_id, payload.department_id, payload.to_declaration(), channel=payload.channel
    )
    return Status(201, _detail(user, _loaded(consultation.pk)))


@router.post("/consultations/ask", response={201: ConsultationDetailOut}, auth=django_auth)
def ask_doctor(request: HttpRequest, payload: AskIn) -> Status:
    """Write to a chosen doctor, who has NETHOSPITAL_ASK_ACCEPT_HOURS to accept (else it lapses, refunded)."""
    user = authenticated_user(request)
    consultation = actions.ask_doctor(
        user,
        payload.patient_id,
        payload.practitioner_id,
        payload.to_declaration(),
        payload.question,
        client_id=payload.client_id,
    )
    return Status(201, _detail(user, _loaded(consultation.pk)))


@router.post(
    "/consultations/from-appointment",
    response={200: ConsultationDetailOut, 201: ConsultationDetailOut},
    auth=django_auth,
)
def from_appointment(request: HttpRequest, payload: FromAppointmentIn) -> Status:
    """A booked video or text appointment becomes a consultation (200 with the same one when repeated)."""
    user = authenticated_user(request)
    existed = Consultation.objects.filter(appointment_id=payload.appointment_id).exists()
    consultation = actions.open_booked_consultation(user, payload.appointment_id, payload.to_declaration())
    return Status(200 if existed else 201, _detail(user, _loaded(consultation.pk)))


@router.post("/consultations/proof-documents", response={201: ProofDocumentOut}, auth=django_auth)
def upload_proof_document(
    request: HttpRequest,
    file: File[UploadedFile],
    patient_id: int = Form(..., ge=1, le=MAX_ID),
) -> Status:
    """Upload an outpatient or discharge document (PDF or image, type read from the content) as proof of
    an earlier diagnosis, before the consultation exists; pass its id as ``proof_attachment_id``."""
    attachment = attachments.upload_attachment(
        authenticated_user(request), file, file.name or "document", patient_id=patient_id
    )
    return Status(
        201,
        ProofDocumentOut(
            id=attachment.pk,
            patient_id=attachment.patient_id,
            name=attachment.original_name,
            content_type=attachment.content_type,
            size=attachment.size,
        ),
    )


# --- reading ---------------------------------------------------------------------------------------------
@router.get("/consultations", response=list[ConsultationOut], auth=django_auth)
def my_consultations(request: HttpRequest) -> list[dict[str, Any]]:
    """Mine and my family's (and those I was invited into); for a doctor with a second factor in this
    session, also the consultations they hold."""
    user = authenticated_user(request)
    rows = list(access.consultations_for_patient_side(user).order_by("-created_at", "-pk")[:200])
    practitioner = access.practitioner_of(user)
    if practitioner is not None and user.is_mfa_verified:
        seen = {c.pk for c in rows}
        own = access.consultations_for_doctor(practitioner).select_related("hospital", "practitioner")
        rows += [c for c in own.order_by("-created_at", "-pk")[:200] if c.pk not in seen]
    return [consultation_out(c) for c in rows]


@router.get("/consultations/icd10", response=list[IcdOut], auth=django_auth, tags=["doctor"])
def icd_search(request: HttpRequest, filters: Query[IcdQuery]) -> list[IcdOut]:
    """Search the bilingual ICD-10 subset by code prefix or words in Chinese or English."""
    authenticated_user(request)
    return [
        IcdOut(code=c.code, name_en=c.name_en, name_zh=c.name_zh, is_chronic=c.is_chronic)
        for c in icd10.search(filters.q, limit=filters.limit)
    ]


@router.get("/consultations/{int:consultation_id}", response=ConsultationDetailOut, auth=django_auth)
def consultation_detail(request: HttpRequest, consultation_id: PathId) -> ConsultationDetailOut:
    """One consultation, for its participants (an audited read)."""
    user = authenticated_user(request)
    return _detail(user, access.access_consultation(user, consultation_id))


@router.get("/consultations/{int:consultation_id}/messages", response=list[MessageOut], auth=django_auth)
def messages(request: HttpRequest, consultation_id: PathId, filters: Query[MessagesQuery]) -> list[MessageOut]:
    """Everything after the sequence number the client saw, in order (an audited read)."""
    found = actions.messages_after(authenticated_user(request), consultation_id, filters.after, filters.limit)
    return [message_out(m) for m in found]


@router.post(
    "/consultations/{int:consultation_id}/messages", response={200: MessageOut, 201: MessageOut}, auth=django_auth
)
def post_message(request: HttpRequest, consultation_id: PathId, payload: MessageIn) -> Status:
    """Send a message. A resend with the same ``client_id`` returns the stored one (200), never a copy."""
    posted = actions.post_message(authenticated_user(request), consultation_id, payload.client_id, payload.body)
    return Status(201 if posted.created else 200, message_out(posted.message))


@router.post("/consultations/{int:consultation_id}/read", response=ReadOut, auth=django_auth)
def mark_read(request: HttpRequest, consultation_id: PathId, payload: ReadIn) -> ReadOut:
    """Read receipt up to ``seq`` (never moves backwards; capped at the last message)."""
    return ReadOut(seq=actions.mark_read(authenticated_user(request), consultation_id, payload.seq))


@router.post(
    "/consultations/{int:consultation_id}/attachments",
    response={200: MessageOut, 201: MessageOut},
    auth=django_auth,
)
def upload_attachment(
    request: HttpRequest,
    consultation_id: PathId,
    file: File[UploadedFile],
    client_id: str = Form(..., min_length=1, max_length=64),
    body: str = Form("", max_length=MAX_CHARS),
) -> Status:
    """Send a file (JPEG, PNG, WebP or PDF, type read from the content; size limited) as a message."""
    user = authenticated_user(request)
    sent = (
        Message.objects.filter(consultation_id=consultation_id, sender=user, client_id=client_id)
        .select_related("attachment")
        .first()
    )
    if sent is not None:
        return Status(200, message_out(sent))
    ensure(client_id.strip() and client_id.isprintable(), errors.CLIENT_ID_INVALID, field="client_id")
    attachment = attachments.upload_attachment(user, file, file.name or "file", consultation_id=consultation_id)
    posted = actions.post_message(user, consultation_id, client_id, body, attachment_id=attachment.pk)
    return Status(201 if posted.created else 200, message_out(posted.message))


@router.get("/consultations/{int:consultation_id}/record", response=RecordsOut, auth=django_auth)
def visit_record(request: HttpRequest, consultation_id: PathId) -> RecordsOut:
    """The visit record: the current version and every version before it (an audited read)."""
    consultation = access.access_consultation(authenticated_user(request), consultation_id, "record.view")
    versions = [record_out(r) for r in consultation.records.order_by("-version")]
    return RecordsOut(current=next((r for r in versions if r.is_current), None), versions=versions)


# --- the patient's side ------------------------------------------------------------------------------------
@router.post("/consultations/{int:consultation_id}/cancel", response=ConsultationDetailOut, auth=django_auth)
def cancel(request: HttpRequest, consultation_id: PathId) -> ConsultationDetailOut:
    user = authenticated_user(request)
    consultation = actions.cancel_consultation(user, consultation_id)
    return _detail(user, _loaded(consultation.pk))


@router.post("/consultations/{int:consultation_id}/participants", response={201: ParticipantOut}, auth=django_auth)
def add_participant(request: HttpRequest, consultation_id: PathId, payload: ParticipantIn) -> Status:
    """A registered guardian of the patient, or a village station operator hosting them, joins."""
    participant = actions.add_participant(authenticated_user(request), consultation_id, payload.email)
    return Status(201, ParticipantOut(user_id=participant.user_id, role=participant.role))


@router.post("/consultations/{int:consultation_id}/review", response={201: ReviewOut}, auth=django_auth)
def review(request: HttpRequest, consultation_id: PathId, payload: ReviewIn) -> Status:
    """Rate the doctor once per completed consultation; published after the hospital's moderation."""
    created = actions.submit_review(authenticated_user(request), consultation_id, payload.rating, payload.text)
    return Status(201, ReviewOut.from_orm(created))


# --- the doctor ----------------------------------------------------------------------------------------------
@router.post("/consultations/pick-next", response=ConsultationDetailOut, auth=django_auth, tags=["doctor"])
def pick_next(request: HttpRequest, payload: PickIn) -> ConsultationDetailOut:
    """Take the longest-waiting patient of my departments' queues whom I may see (R3, R5, R6)."""
    user = authenticated_user(request)
    consultation = actions.pick_next(user, payload.department_id)
    return _detail(user, _loaded(consultation.pk))


@router.post(
    "/consultations/{int:consultation_id}/accept", response=ConsultationDetailOut, auth=django_auth, tags=["doctor"]
)
def accept(request: HttpRequest, consultation_id: PathId) -> ConsultationDetailOut:
    """Accept an "ask a doctor" request in time, or start a booked visit."""
    user = authenticated_user(request)
    consultation = actions.accept_request(user, consultation_id)
    return _detail(user, _loaded(consultation.pk))


@router.post(
    "/consultations/{int:consultation_id}/visit-type",
    response=ConsultationDetailOut,
    auth=django_auth,
    tags=["doctor"],
)
def confirm_visit_type(request: HttpRequest, consultation_id: PathId, payload: VisitTypeIn) -> ConsultationDetailOut:
    """Confirm "follow_up" (proof accepted) or "advice_only" (no diagnosis, no prescription: R1)."""
    user = authenticated_user(request)
    consultation = actions.confirm_visit_type(user, consultation_id, payload.visit_type, payload.reason)
    return _detail(user, _loaded(consultation.pk))


@router.post(
    "/consultations/{int:consultation_id}/refer", response=ConsultationDetailOut, auth=django_auth, tags=["doctor"]
)
def refer(request: HttpRequest, consultation_id: PathId, payload: ReasonIn) -> ConsultationDetailOut:
    """End the online visit: "please see a doctor in person", with the reason."""
    user = authenticated_user(request)
    consultation = actions.refer_in_person(user, consultation_id, payload.reason)
    return _detail(user, _loaded(consultation.pk))


@router.post(
    "/consultations/{int:consultation_id}/record", response={201: RecordOut}, auth=django_auth, tags=["doctor"]
)
def sign_record(request: HttpRequest, consultation_id: PathId, payload: RecordIn) -> Status:
    """Sign the visit record (once); diagnoses only in a confirmed follow-up visit (R1)."""
    record = actions.sign_visit_record(authenticated_user(request), consultation_id, payload.to_input())
    return Status(201, record_out(record))


@router.post(
    "/consultations/records/{int:record_id}/correct", response={201: RecordOut}, auth=django_auth, tags=["doctor"]
)
def correct_record(request: HttpRequest, record_id: PathId, payload: CorrectionIn) -> Status:
    """A correction: a new signed version that names the one it replaces and why (R21)."""
    record = actions.correct_visit_record(authenticated_user(request), record_id, payload.to_input(), payload.reason)
    return Status(201, record_out(record))


@router.post(
    "/consultations/{int:consultation_id}/complete", response=ConsultationDetailOut, auth=django_auth, tags=["doctor"]
)
def complete(request: HttpRequest, consultation_id: PathId) -> ConsultationDetailOut:
    """Close the visit (it needs a signed record); the free follow-up window starts."""
    user = authenticated_user(request)
    consultation = actions.complete_consultation(user, consultation_id)
    return _detail(user, _loaded(consultation.pk))


# --- hospital admins -------------------------------------------------------------------------------------------
@router.post("/reviews/{int:review_id}/moderate", response=ReviewOut, auth=django_auth, tags=["hospital admin"])
def moderate_review(request: HttpRequest, review_id: PathId, payload: ModerateIn) -> ReviewOut:
    """Publish a review (its rating then counts in the directory) or hide it with a reason."""
    moderated = actions.moderate_review(authenticated_user(request), review_id, payload.publish, payload.reason)
    return ReviewOut.from_orm(moderated)
