"""Consultation pages: my consultations, starting one (department queue, ask a doctor, from a booked
video or text appointment) with the declaration of the follow-up gate (R1, R2, R3), the waiting
page with the live queue position, the room (chat and video, the doctor's decisions and the visit
record), the visit record with its versions and PDF, the review, the doctor's workbench and the
hospital's review moderation.

Thin (CONVENTIONS): parse the form, call one action, render. Every read of a consultation's content
goes through ``access.access_consultation``, which checks and audits it (R23). A refusal
(``DomainError``) is shown next to its field or on the page, with its 4xx status; nothing here needs
JavaScript except the live parts (chat, video, queue position, workbench refresh), which are
progressive (static/nethospital/js/{consultation,queue,workbench}.js).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from nethospital.accounts.access import patients_acted_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.accounts.views import render_domain_error
from nethospital.consultations import access, actions, attachments, errors, icd10, pdf
from nethospital.consultations.choices import (
    ConsultationKind,
    ConsultationStatus,
    MessageKind,
    ParticipantRole,
    ReviewStatus,
    VisitType,
)
from nethospital.consultations.forms import (
    AskForm,
    CorrectionForm,
    DeclarationForm,
    IcdSearchForm,
    InviteForm,
    ModerateForm,
    PickForm,
    QueueForm,
    RecordForm,
    ReferForm,
    ReviewForm,
    SendForm,
    UploadForm,
    VisitTypeForm,
    new_client_id,
    patient_choices,
    record_choices,
)
from nethospital.consultations.models import Consultation, Message, Review, VisitRecord
from nethospital.core import clock
from nethospital.core.errors import (
    INVALID_INPUT,
    LOGIN_REQUIRED,
    MFA_REQUIRED,
    NOT_FOUND,
    PERMISSION_DENIED,
    DomainError,
)
from nethospital.directory.access import administered_organisation_ids
from nethospital.directory.choices import OrganizationKind, Profession, VerificationStatus
from nethospital.directory.models import Department
from nethospital.directory.rules import bookable_practitioners
from nethospital.scheduling import access as scheduling_access
from nethospital.scheduling.choices import ACTIVE_STATUSES, Modality
from nethospital.scheduling.models import Appointment

# A form that does not parse is refused like the actions refuse invalid input (INVALID_INPUT).
INVALID_FORM_STATUS = 422
# Action field names that the page forms call differently.
FIELD_ALIASES = {
    "patient_id": "patient",
    "proof_record_id": "proof_record",
    "proof_attachment_id": "proof_file",
    "department_id": "department",
    "file": "proof_file",
}
# Clearer words, on these pages, for a generic refusal of one field.
FIELD_MESSAGES = {
    ("permission_denied", "patient_id"): gettext_lazy(
        "You may start a consultation only for yourself or a family member registered on your account."
    ),
    ("permission_denied", "email"): gettext_lazy(
        "This person is neither a registered guardian of the patient nor a village station operator."
    ),
    ("not_found", "email"): gettext_lazy("No active account has this e-mail address."),
}
ROOM_MESSAGE_LIMIT = 2000


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def show_errors(form: Any, exc: DomainError, aliases: dict[str, str] | None = None) -> None:
    """Each of the action's field errors next to its field; anything else above the form."""
    names = {**FIELD_ALIASES, **(aliases or {})}
    field_errors = exc.field_errors()
    for name, texts in field_errors.items():
        target = names.get(name, name)
        override = FIELD_MESSAGES.get((exc.code, name))
        for text in texts:
            form.add_error(target if target in form.fields else None, str(override) if override else text)
    if not field_errors:
        form.add_error(None, exc.message)


def _is_page_refusal(exc: DomainError) -> bool:
    """Refusals about who may do this (not about the input) get the error page, not a form error."""
    return exc.status in (401, 403, 404) and not exc.field


def _json_error(exc: DomainError) -> JsonResponse:
    status = exc.status if 400 <= exc.status < 500 else 400
    return JsonResponse(exc.as_dict(), status=status, json_dumps_params={"ensure_ascii": False})


def _form_json_error(form: Any) -> JsonResponse:
    fields = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    body = {"error": {"code": INVALID_INPUT.code, "message": str(INVALID_INPUT.message), "fields": fields}}
    return JsonResponse(body, status=INVALID_FORM_STATUS, json_dumps_params={"ensure_ascii": False})


# --- my consultations -----------------------------------------------------------------------------
def _open_remote_appointments(user: User) -> list[Appointment]:
    """Booked video or text appointments of the patients the user acts for that have no consultation yet."""
    return list(
        scheduling_access.appointments_visible_to(user)
        .filter(
            slot__modality__in=[Modality.VIDEO, Modality.TEXT],
            status__in=ACTIVE_STATUSES,
            slot__ends_at__gt=clock.now(),
            consultation__isnull=True,
        )
        .select_related("slot", "patient", "practitioner", "hospital")
        .order_by("slot__starts_at", "pk")[:50]
    )


@login_required
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    """The consultations of the patients I act for (and those I was invited into), and the ways to start one."""
    user = _user(request)
    rows = list(access.consultations_for_patient_side(user).order_by("-created_at", "-pk")[:200])
    return render(
        request,
        "consultations/mine.html",
        {
            "open": [c for c in rows if c.is_open],
            "earlier": [c for c in rows if not c.is_open],
            "appointments": _open_remote_appointments(user),
            "has_patients": bool(patients_acted_for(user)),
            "is_doctor": access.practitioner_of(user) is not None,
        },
    )


# --- starting a consultation ----------------------------------------------------------------------
def _queue_departments() -> list[tuple[int, str]]:
    """Departments with at least one verified doctor: their queues have someone to pick patients up."""
    departments = (
        Department.objects.filter(
            is_active=True,
            organization__is_active=True,
            organization__kind__in=[OrganizationKind.HOSPITAL, OrganizationKind.INTERNET_HOSPITAL],
            practitioners__verification_status=VerificationStatus.VERIFIED,
            practitioners__profession=Profession.PHYSICIAN,
        )
        .select_related("organization")
        .distinct()
        .order_by("organization__name_zh", "name_zh", "pk")
    )
    return [(d.pk, f"{d.organization} · {d}") for d in departments]


def _form_kwargs(user: User) -> dict[str, Any]:
    patients = patients_acted_for(user)
    return {"patients": patient_choices(patients, user.pk), "records": record_choices(patients)}


def _upload_proof(user: User, form: DeclarationForm) -> int | None:
    """The uploaded proof document (R2), stored as the patient's file before the consultation exists."""
    if not form.wants_upload:
        return None
    upload = form.cleaned_data["proof_file"]
    attachment = attachments.upload_attachment(user, upload, upload.name, patient_id=form.cleaned_data["patient"])
    return attachment.pk


def _start_page(request: HttpRequest, template: str, context: dict[str, Any], status: int) -> HttpResponse:
    context.setdefault("first_visit_note", True)
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def join_queue(request: HttpRequest) -> HttpResponse:
    """Join a department's queue ("next available doctor"); the declaration decides follow-up or advice."""
    user = _user(request)
    kwargs = {**_form_kwargs(user), "departments": _queue_departments()}
    status = 200
    if request.method == "GET":
        department = request.GET.get("department", "")
        initial: dict[str, Any] = {
            "department": int(department) if department.isdigit() and len(department) < 18 else None
        }
        if kwargs["patients"]:
            initial["patient"] = kwargs["patients"][0][0]
        form = QueueForm(initial=initial, **kwargs)
    else:
        form = QueueForm(request.POST, request.FILES, **kwargs)
        status = INVALID_FORM_STATUS
        if form.is_valid():
            data = form.cleaned_data
            try:
                attachment_id = _upload_proof(user, form)
                consultation = actions.join_queue(
                    user, data["patient"], data["department"], form.declaration(attachment_id), channel=data["channel"]
                )
            except DomainError as exc:
                show_errors(form, exc)
                status = exc.status
            else:
                messages.success(request, _("You are in the queue. A doctor of the department will see you."))
                return redirect("consultations:waiting", consultation_id=consultation.pk)
    return _start_page(
        request,
        "consultations/start.html",
        {"form": form, "kind": "queue", "has_patients": bool(kwargs["patients"])},
        status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def ask(request: HttpRequest, practitioner_id: int) -> HttpResponse:
    """Ask a chosen doctor in writing; the doctor has NETHOSPITAL_ASK_ACCEPT_HOURS to accept."""
    user = _user(request)
    doctor = (
        bookable_practitioners()
        .filter(pk=practitioner_id, profession=Profession.PHYSICIAN)
        .select_related("primary_institution", "department")
        .first()
    )
    if doctor is None:
        return render_domain_error(request, DomainError(NOT_FOUND))
    kwargs = _form_kwargs(user)
    status = 200
    if request.method == "GET":
        initial: dict[str, Any] = {"client_id": new_client_id()}
        if kwargs["patients"]:
            initial["patient"] = kwargs["patients"][0][0]
        form = AskForm(initial=initial, **kwargs)
    else:
        form = AskForm(request.POST, request.FILES, **kwargs)
        status = INVALID_FORM_STATUS
        if form.is_valid():
            data = form.cleaned_data
            # The same form posted twice (a double tap) opens one consultation.
            sent = Message.objects.filter(sender=user, client_id=data["client_id"], seq=1).first()
            if sent is not None:
                return redirect("consultations:room", consultation_id=sent.consultation_id)
            try:
                attachment_id = _upload_proof(user, form)
                consultation = actions.ask_doctor(
                    user,
                    data["patient"],
                    doctor.pk,
                    form.declaration(attachment_id),
                    data["question"],
                    client_id=data["client_id"],
                )
            except DomainError as exc:
                show_errors(form, exc, {"body": "question", "practitioner_id": "question"})
                status = exc.status
            else:
                messages.success(
                    request,
                    _("Your question has been sent. The doctor has %(hours)s hours to accept it.")
                    % {"hours": settings.NETHOSPITAL_ASK_ACCEPT_HOURS},
                )
                return redirect("consultations:room", consultation_id=consultation.pk)
    return _start_page(
        request,
        "consultations/start.html",
        {
            "form": form,
            "kind": "ask",
            "doctor": doctor,
            "accept_hours": settings.NETHOSPITAL_ASK_ACCEPT_HOURS,
            "has_patients": bool(kwargs["patients"]),
        },
        status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def from_appointment(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """A booked video or text appointment becomes an online consultation (the declaration first)."""
    user = _user(request)
    try:
        appointment = scheduling_access.access_appointment(user, appointment_id, action="open")
    except DomainError as exc:
        return render_domain_error(request, exc)
    existing = Consultation.objects.filter(appointment=appointment).values_list("pk", flat=True).first()
    if existing is not None:
        return redirect("consultations:room", consultation_id=existing)
    patients = [appointment.patient]
    kwargs = {"patients": patient_choices(patients, user.pk), "records": record_choices(patients)}
    status = 200
    if request.method == "GET":
        form = DeclarationForm(initial={"patient": appointment.patient_id}, **kwargs)
    else:
        form = DeclarationForm(request.POST, request.FILES, **kwargs)
        status = INVALID_FORM_STATUS
        if form.is_valid():
            try:
                attachment_id = _upload_proof(user, form)
                consultation = actions.open_booked_consultation(user, appointment.pk, form.declaration(attachment_id))
            except DomainError as exc:
                show_errors(form, exc)
                status = exc.status
            else:
                messages.success(request, _("Your online visit is open. The doctor will join at the appointment time."))
                return redirect("consultations:room", consultation_id=consultation.pk)
    return _start_page(
        request,
        "consultations/start.html",
        {
            "form": form,
            "kind": "booked",
            "appointment": appointment,
            "doctor": appointment.practitioner,
            "has_patients": True,
        },
        status,
    )


# --- waiting in the queue --------------------------------------------------------------------------
@login_required
@require_GET
def waiting(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The patient's side waits here for a doctor of the department, with the live position."""
    try:
        consultation = access.access_consultation(_user(request), consultation_id, "queue.view")
    except DomainError as exc:
        return render_domain_error(request, exc)
    role = consultation.viewer_role  # type: ignore[attr-defined]
    if consultation.kind != ConsultationKind.QUEUE or role not in access.PATIENT_SIDE:
        return redirect("consultations:room", consultation_id=consultation.pk)
    return render(
        request,
        "consultations/waiting.html",
        {
            "consultation": consultation,
            "position": actions.queue_position(consultation),
            "is_waiting": consultation.status == ConsultationStatus.WAITING,
        },
    )


# --- the room ----------------------------------------------------------------------------------------
def _role_labels() -> dict[str, str]:
    return {
        ParticipantRole.PATIENT: _("Patient"),
        ParticipantRole.FAMILY: _("Family member"),
        ParticipantRole.GUARDIAN: _("Guardian"),
        ParticipantRole.DOCTOR: _("Doctor"),
        ParticipantRole.STATION_OPERATOR: _("Village station operator"),
        "system": _("System"),
    }


def _room_texts() -> dict[str, str]:
    """Words the chat script shows, in the page's language (data-text-* on #consultation-room)."""
    labels = _role_labels()
    return {
        "connecting": _("Connecting…"),
        "connected": _("Connected"),
        "reconnecting": _("Reconnecting…"),
        "offline": _("Offline: reconnecting. Messages you write are sent when the line is back."),
        "refused": _("You cannot take part in this consultation from this page."),
        "you": _("You"),
        "doctor": labels[ParticipantRole.DOCTOR],
        "patient": labels[ParticipantRole.PATIENT],
        "family": labels[ParticipantRole.FAMILY],
        "guardian": labels[ParticipantRole.GUARDIAN],
        "station-operator": labels[ParticipantRole.STATION_OPERATOR],
        "system": labels["system"],
        "sending": _("Sending…"),
        "sent": _("Sent"),
        "read": _("Read"),
        "failed": _("Not sent"),
        "uploading": _("Uploading…"),
        "attachment": _("File"),
        "file-too-large": _("The file is too large."),
        "upload-failed": _("The file could not be sent."),
        "call-idle": _("No call"),
        "call-ringing": _("The call is waiting to be joined"),
        "call-joining": _("Joining the call…"),
        "call-connecting": _("Connecting the call…"),
        "call-connected": _("In a call"),
        "call-ended": _("The call ended."),
        "call-failed": _("The call could not connect; continue in the chat."),
        "call-no-media": _("The camera or microphone is not available."),
        "join-call": _("Join the call"),
        "start-call": _("Start the video call"),
    }


def _message_row(message: Message, user: User, labels: dict[str, str]) -> dict[str, Any]:
    is_system = message.kind == MessageKind.SYSTEM
    role = "system" if is_system else (message.sender_role or "system")
    mine = not is_system and message.sender_id == user.pk
    attachment = None
    if message.attachment_id and message.attachment is not None:
        att = message.attachment
        attachment = {
            "name": att.original_name,
            "size": att.size,
            "content_type": att.content_type,
            "url": reverse("consultations:file", args=[message.consultation_id, att.pk]),
        }
    return {
        "seq": message.seq,
        "client_id": message.client_id,
        "role": role,
        "kind": message.kind,
        "mine": mine,
        "label": _("You") if mine else labels.get(role, role),
        "sent_at": message.sent_at,
        "body": str(actions.SYSTEM_TEXTS.get(message.body, "")) if is_system else message.body,
        "attachment": attachment,
        "is_followup_question": message.is_followup_question,
    }


def _may_write(consultation: Consultation, role: str) -> bool:
    status = consultation.status
    if status == ConsultationStatus.ACTIVE:
        return True
    if status in (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING):
        return role in access.PATIENT_SIDE
    if status == ConsultationStatus.COMPLETED and consultation.followup_until is not None:
        return clock.now() < consultation.followup_until
    return False


def _render_room(
    request: HttpRequest,
    consultation: Consultation,
    *,
    forms: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    role: str = consultation.viewer_role  # type: ignore[attr-defined]
    is_doctor = role == ParticipantRole.DOCTOR
    patient_side = role in access.PATIENT_SIDE
    labels = _role_labels()
    chat = [
        _message_row(m, user, labels)
        for m in consultation.messages.select_related("attachment").order_by("seq")[:ROOM_MESSAGE_LIMIT]
    ]
    record = actions.current_record(consultation)
    is_active = consultation.status == ConsultationStatus.ACTIVE
    has_review = Review.objects.filter(consultation=consultation).exists()
    context: dict[str, Any] = {
        "consultation": consultation,
        "role": role,
        "role_label": labels.get(role, role),
        "is_doctor": is_doctor,
        "patient_side": patient_side,
        "chat": chat,
        "last_seq": chat[-1]["seq"] if chat else 0,
        "record": record,
        "proof_record": consultation.proof_record,
        "participants": list(consultation.participants.select_related("user").order_by("joined_at", "pk")),
        "calls": list(consultation.calls.order_by("-started_at")[:10]),
        "ice_servers_json": json.dumps(settings.NETHOSPITAL_ICE_SERVERS),
        "room_texts": _room_texts(),
        "may_write": _may_write(consultation, role),
        "may_accept": is_doctor and consultation.status in (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING),
        "may_confirm": is_doctor and is_active and record is None,
        "may_refer": is_doctor and is_active,
        "may_sign": is_doctor and is_active and record is None,
        "may_complete": is_doctor and is_active and record is not None,
        "may_cancel": patient_side
        and consultation.status in (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING),
        "may_review": patient_side
        and role != ParticipantRole.STATION_OPERATOR
        and consultation.status == ConsultationStatus.COMPLETED
        and not has_review,
        "has_review": has_review,
        "may_invite": consultation.is_open,
        "is_video": consultation.channel == "video",
        "max_chars": settings.NETHOSPITAL_MESSAGE_MAX_CHARS,
        "max_bytes": settings.NETHOSPITAL_ATTACHMENT_MAX_BYTES,
        "error": error,
        "invite_form": InviteForm(),
        "review_form": ReviewForm(),
        "visit_type_form": VisitTypeForm(
            initial={"visit_type": consultation.visit_type} if consultation.visit_type != VisitType.UNDECIDED else None
        ),
        "refer_form": ReferForm(),
        "record_form": RecordForm(),
        "young_child": actions.is_young_child(consultation.patient),
        "client_id": new_client_id(),
    }
    context.update(forms or {})
    return render(request, "consultations/room.html", context, status=status)


@login_required
@require_GET
def room(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The consultation for its participants: header, chat, video, and the decisions of each side."""
    try:
        consultation = access.access_consultation(_user(request), consultation_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    return _render_room(request, consultation)


def _room_after(
    request: HttpRequest,
    consultation_id: int,
    exc: DomainError | None,
    *,
    form_name: str = "",
    form: Any = None,
    status: int | None = None,
    chat_error: bool = False,
) -> HttpResponse:
    """The room again after a refused post: the form with its errors, or the reason above the page
    (or under the chat box)."""
    if exc is not None and _is_page_refusal(exc):
        return render_domain_error(request, exc)
    try:
        consultation = access.access_consultation(_user(request), consultation_id)
    except DomainError as refusal:
        return render_domain_error(request, refusal)
    extra: dict[str, Any] = {form_name: form} if form_name else {}
    error = exc.message if exc is not None and not form_name else ""
    if chat_error:
        extra["chat_error"], error = error, ""
    code = status or (exc.status if exc is not None else INVALID_FORM_STATUS)
    return _render_room(request, consultation, forms=extra, error=error, status=code)


def _post_on_room(
    request: HttpRequest,
    consultation_id: int,
    *,
    run: Callable[[dict[str, Any]], object],
    success: str,
    anchor: str = "",
    form: Any = None,
    form_name: str = "",
    aliases: dict[str, str] | None = None,
) -> HttpResponse:
    """Parse the form (if any), call one action, then back to the room with a message or the refusal."""
    data: dict[str, Any] = {}
    if form is not None:
        if not form.is_valid():
            return _room_after(
                request, consultation_id, None, form_name=form_name, form=form, status=INVALID_FORM_STATUS
            )
        data = form.cleaned_data
    try:
        run(data)
    except DomainError as exc:
        if form is not None and not _is_page_refusal(exc):
            show_errors(form, exc, aliases)
            return _room_after(request, consultation_id, exc, form_name=form_name, form=form)
        return _room_after(request, consultation_id, exc)
    messages.success(request, success)
    return redirect(reverse("consultations:room", args=[consultation_id]) + anchor)


@login_required
@require_POST
def cancel(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The patient's side withdraws a consultation the doctor has not started."""
    try:
        actions.cancel_consultation(_user(request), consultation_id)
    except DomainError as exc:
        return _room_after(request, consultation_id, exc)
    messages.success(request, _("The consultation has been cancelled."))
    return redirect("consultations:mine")


@login_required
@require_POST
def invite(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """A guardian of the patient or a village station operator joins the consultation."""
    user = _user(request)
    return _post_on_room(
        request,
        consultation_id,
        form=InviteForm(request.POST),
        form_name="invite_form",
        run=lambda d: actions.add_participant(user, consultation_id, d["email"]),
        success=_("They have been added to the consultation."),
        anchor="#participants",
    )


@login_required
@require_POST
def accept(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The doctor accepts an "ask a doctor" request in time, or starts a booked visit."""
    user = _user(request)
    return _post_on_room(
        request,
        consultation_id,
        run=lambda d: actions.accept_request(user, consultation_id),
        success=_("The consultation has started."),
    )


@login_required
@require_POST
def visit_type(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The doctor confirms "follow-up" (proof accepted) or "advice only" (R1, R2)."""
    user = _user(request)
    return _post_on_room(
        request,
        consultation_id,
        form=VisitTypeForm(request.POST),
        form_name="visit_type_form",
        run=lambda d: actions.confirm_visit_type(user, consultation_id, d["visit_type"], d["reason"]),
        success=_("The visit type is recorded."),
        anchor="#doctor-decisions",
    )


@login_required
@require_POST
def refer(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """End the online visit with "please see a doctor in person" and the reason."""
    user = _user(request)
    return _post_on_room(
        request,
        consultation_id,
        form=ReferForm(request.POST),
        form_name="refer_form",
        run=lambda d: actions.refer_in_person(user, consultation_id, d["reason"]),
        success=_("The patient has been asked to see a doctor in person."),
    )


@login_required
@require_POST
def sign_record(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The doctor signs the visit record of an active consultation (once; corrections are versions)."""
    user = _user(request)
    form = RecordForm(request.POST)
    return _post_on_room(
        request,
        consultation_id,
        form=form,
        form_name="record_form",
        run=lambda d: actions.sign_visit_record(user, consultation_id, form.record_input()),
        success=_("The visit record is signed. Complete the consultation when you are done."),
        anchor="#record",
    )


@login_required
@require_POST
def complete(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """Close the visit (it needs a signed record); the free follow-up window starts."""
    user = _user(request)
    return _post_on_room(
        request,
        consultation_id,
        run=lambda d: actions.complete_consultation(user, consultation_id),
        success=_("The consultation is completed. The patient can ask follow-up questions for a few days."),
    )


@login_required
@require_POST
def review(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The patient's side rates the doctor once; the hospital moderates before it is published."""
    user = _user(request)
    return _post_on_room(
        request,
        consultation_id,
        form=ReviewForm(request.POST),
        form_name="review_form",
        run=lambda d: actions.submit_review(user, consultation_id, d["rating"], d["text"]),
        success=_("Thank you. Your review will be published after the hospital has checked it."),
        anchor="#review",
    )


@login_required
@require_POST
def send(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The chat without JavaScript: the form posts here (the script sends over the websocket instead).
    The form's client id makes a double submit land once."""
    form = SendForm(request.POST)
    if not form.is_valid():
        return _room_after(
            request, consultation_id, DomainError(INVALID_INPUT), status=INVALID_FORM_STATUS, chat_error=True
        )
    data = form.cleaned_data
    try:
        actions.post_message(_user(request), consultation_id, data["client_id"], data["body"])
    except DomainError as exc:
        if _is_page_refusal(exc):
            return render_domain_error(request, exc)
        return _room_after(request, consultation_id, exc, chat_error=True)
    return redirect(reverse("consultations:room", args=[consultation_id]) + "#chat-form")


# --- files -------------------------------------------------------------------------------------------
@require_POST
def upload(request: HttpRequest, consultation_id: int) -> JsonResponse:
    """A file in the chat (multipart ``file``, ``client_id``, optional ``body``): stored, type read from
    the content, then posted as a message. Answers ``{"message": payload}`` or a 4xx error body."""
    user = _user(request)
    if not user.is_authenticated:
        return _json_error(DomainError(LOGIN_REQUIRED))
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _form_json_error(form)
    data = form.cleaned_data
    client_id = data["client_id"].strip()
    # A resend after a dropped line: the message was stored, answer with it and store nothing.
    sent = (
        Message.objects.filter(consultation_id=consultation_id, sender=user, client_id=client_id)
        .select_related("attachment")
        .first()
    )
    if sent is not None:
        return JsonResponse({"message": actions.message_payload(sent)}, status=200)
    if not client_id or not client_id.isprintable():
        return _json_error(DomainError(errors.CLIENT_ID_INVALID, field="client_id"))
    try:
        attachment = attachments.upload_attachment(
            user, data["file"], data["file"].name, consultation_id=consultation_id
        )
        posted = actions.post_message(user, consultation_id, client_id, data["body"], attachment_id=attachment.pk)
    except DomainError as exc:
        return _json_error(exc)
    return JsonResponse({"message": actions.message_payload(posted.message)}, status=201 if posted.created else 200)


@require_GET
def attachment_file(request: HttpRequest, consultation_id: int, attachment_id: int) -> HttpResponseBase:
    """A file of the consultation, to its participants only (audited): always a download, with the type
    read from the content at upload and no sniffing by the browser."""
    user = _user(request)
    try:
        attachment = attachments.access_attachment(user, consultation_id, attachment_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    path = attachments.path_of(attachment)
    if not path.is_file():
        return render_domain_error(request, DomainError(NOT_FOUND))
    response = FileResponse(
        path.open("rb"), content_type=attachment.content_type, as_attachment=True, filename=attachment.original_name
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- the visit record --------------------------------------------------------------------------------
def _record_rows(consultation: Consultation) -> list[VisitRecord]:
    return list(
        consultation.records.select_related("practitioner", "signed_by", "hospital")
        .prefetch_related("diagnosis_rows__code")
        .order_by("-version")
    )


def _render_record(
    request: HttpRequest, consultation: Consultation, *, correction_form: Any = None, status: int = 200
) -> HttpResponse:
    records = _record_rows(consultation)
    current = next((r for r in records if r.is_current), None)
    is_doctor = consultation.viewer_role == ParticipantRole.DOCTOR  # type: ignore[attr-defined]
    may_correct = is_doctor and current is not None
    if may_correct and correction_form is None:
        assert current is not None
        correction_form = CorrectionForm(initial={**RecordForm.initial_from(current), "record": current.pk})
    return render(
        request,
        "consultations/record.html",
        {
            "consultation": consultation,
            "current": current,
            "history": [r for r in records if not r.is_current],
            "is_doctor": is_doctor,
            "may_correct": may_correct,
            "correction_form": correction_form,
            "diagnoses_allowed": consultation.may_diagnose,
        },
        status=status,
    )


@login_required
@require_GET
def record(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The visit record: the current version and every earlier one with the reason it was corrected."""
    try:
        consultation = access.access_consultation(_user(request), consultation_id, "record.view")
    except DomainError as exc:
        return render_domain_error(request, exc)
    return _render_record(request, consultation)


@login_required
@require_POST
def correct_record(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """A correction is a new signed version naming the one it replaces and why (R21)."""
    user = _user(request)
    form = CorrectionForm(request.POST)
    status = INVALID_FORM_STATUS
    if form.is_valid():
        record_id = form.cleaned_data["record"]
        belongs = VisitRecord.objects.filter(pk=record_id, consultation_id=consultation_id).exists()
        try:
            if not belongs:
                raise DomainError(errors.CONSULTATION_NOT_FOUND)
            actions.correct_visit_record(user, record_id, form.record_input(), form.cleaned_data["reason"])
        except DomainError as exc:
            if _is_page_refusal(exc):
                return render_domain_error(request, exc)
            show_errors(form, exc)
            status = exc.status
        else:
            messages.success(request, _("The correction is signed as a new version."))
            return redirect("consultations:record", consultation_id=consultation_id)
    try:
        consultation = access.access_consultation(user, consultation_id, "record.view")
    except DomainError as exc:
        return render_domain_error(request, exc)
    return _render_record(request, consultation, correction_form=form, status=status)


@login_required
@require_GET
def record_pdf(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """The visit record as a PDF (the current version, or ``?version=n``)."""
    try:
        consultation = access.access_consultation(_user(request), consultation_id, "record.download")
    except DomainError as exc:
        return render_domain_error(request, exc)
    version = request.GET.get("version", "")
    records = consultation.records.all()
    if version:
        if not version.isdigit() or len(version) > 4:
            return render_domain_error(request, DomainError(NOT_FOUND))
        found = records.filter(version=int(version)).first()
    else:
        found = records.filter(is_current=True).first()
    if found is None:
        return render_domain_error(request, DomainError(NOT_FOUND))
    response = HttpResponse(pdf.render_record(found), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="visit-record-{consultation.pk}-v{found.version}.pdf"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# --- ICD-10 search -----------------------------------------------------------------------------------
@login_required
@require_GET
def icd_search(request: HttpRequest) -> HttpResponse:
    """Options for the diagnoses field's datalist: the last code being typed is completed, the codes
    before it are kept (``I10, E7`` offers ``I10, E78.0`` …)."""
    form = IcdSearchForm({"q": request.GET.get("q") or request.GET.get("diagnosis_codes") or ""})
    raw = form.cleaned_data["q"] if form.is_valid() else ""
    head, _sep, last = raw.rpartition(",")
    prefix = f"{head.strip()}, " if head.strip() else ""
    codes = icd10.search(last.strip(), limit=20) if last.strip() else []
    return render(request, "consultations/_icd_options.html", {"codes": codes, "prefix": prefix})


# --- the doctor's workbench --------------------------------------------------------------------------
def _workbench_context(user: User) -> dict[str, Any]:
    """What the doctor needs at a glance. Raises DomainError unless the user may see patients now (R5, R6).
    The unclaimed queue shows no names or conditions (those are read, audited, in the room); the
    doctor's own consultations show who and why."""
    practitioner = access.acting_doctor(user)
    now = clock.now()
    today = clock.today()
    department_ids = access.department_ids_of(practitioner)
    departments = {d.pk: d for d in Department.objects.filter(pk__in=department_ids).select_related("organization")}
    queue = list(access.waiting_queue(practitioner).select_related("patient", "department")[:200])
    queues = []
    for department_id, department in sorted(departments.items(), key=lambda item: item[0]):
        waiting_here = [c for c in queue if c.department_id == department_id]
        queues.append(
            {
                "department": department,
                "count": len(waiting_here),
                "next": [
                    {
                        "age": c.patient.age_on(today),
                        "sex": c.patient.get_sex_display(),
                        "channel": c.get_channel_display(),
                        "first_visit": c.declared_first_visit,
                        "minutes": int((now - c.created_at).total_seconds() // 60),
                    }
                    for c in waiting_here[:5]
                ],
            }
        )
    own = access.consultations_for_doctor(practitioner).select_related("patient", "department")
    requests = list(own.filter(status=ConsultationStatus.REQUESTED).order_by("accept_deadline", "pk")[:100])
    booked_waiting = list(
        own.filter(status=ConsultationStatus.WAITING, kind=ConsultationKind.BOOKED)
        .select_related("appointment__slot")
        .order_by("appointment__slot__starts_at", "pk")[:100]
    )
    active = list(own.filter(status=ConsultationStatus.ACTIVE).order_by("started_at", "pk")[:100])
    for consultation in active:
        consultation.unread = actions.unread_count(user, consultation)  # type: ignore[attr-defined]
    followups = []
    for consultation in own.filter(status=ConsultationStatus.COMPLETED, followup_until__gt=now).order_by("-ended_at")[
        :50
    ]:
        unread = actions.unread_count(user, consultation)
        if unread:
            consultation.unread = unread  # type: ignore[attr-defined]
            followups.append(consultation)
    video_today = list(
        Appointment.objects.filter(
            practitioner=practitioner, day=today, slot__modality=Modality.VIDEO, status__in=ACTIVE_STATUSES
        )
        .select_related("slot", "patient")
        .order_by("slot__starts_at", "pk")
    )
    opened = dict(Consultation.objects.filter(appointment__in=video_today).values_list("appointment_id", "pk"))
    for appointment in video_today:
        appointment.consultation_id = opened.get(appointment.pk)  # type: ignore[attr-defined]
    return {
        "practitioner": practitioner,
        "queues": queues,
        "queue_total": len(queue),
        "requests": requests,
        "booked_waiting": booked_waiting,
        "active": active,
        "followups": followups,
        "video_today": video_today,
        "now": now,
    }


@login_required
@require_GET
def workbench(request: HttpRequest) -> HttpResponse:
    """The doctor's workbench (R6: a second factor in this session), refreshed live."""
    try:
        context = _workbench_context(_user(request))
    except DomainError as exc:
        return render_domain_error(request, exc)
    return render(request, "consultations/workbench.html", {**context, "pick_form": PickForm()})


@require_GET
def workbench_panel(request: HttpRequest) -> HttpResponse:
    """The workbench's panel as a fragment (htmx): on load, on a live "refresh", every 30 s."""
    user = _user(request)
    try:
        if not user.is_authenticated:
            raise DomainError(LOGIN_REQUIRED)
        context = _workbench_context(user)
    except DomainError as exc:
        status = exc.status if 400 <= exc.status < 500 else 400
        return render(
            request,
            "consultations/_workbench_error.html",
            {"error": exc, "is_mfa_required": exc.code == MFA_REQUIRED.code},
            status=status,
        )
    return render(request, "consultations/_workbench_panel.html", context)


@login_required
@require_POST
def pick_next(request: HttpRequest) -> HttpResponse:
    """Take the longest-waiting patient of my departments' queues whom I may see, into the room."""
    user = _user(request)
    form = PickForm(request.POST)
    if not form.is_valid():
        return render_domain_error(request, DomainError(INVALID_INPUT))
    department = form.cleaned_data.get("department")
    try:
        consultation = actions.pick_next(user, department)
    except DomainError as exc:
        if exc.code in (LOGIN_REQUIRED.code, MFA_REQUIRED.code, PERMISSION_DENIED.code) or exc.status == 404:
            return render_domain_error(request, exc)
        try:
            context = _workbench_context(user)
        except DomainError as refusal:
            return render_domain_error(request, refusal)
        return render(
            request,
            "consultations/workbench.html",
            {**context, "pick_form": form, "error": exc.message},
            status=exc.status,
        )
    return redirect("consultations:room", consultation_id=consultation.pk)


# --- review moderation (hospital admins) -------------------------------------------------------------
def _moderation_scope(user: User) -> Q | None:
    """Reviews this admin moderates (R6: with a second factor), or a refusal."""
    is_platform = user.is_superuser or user.has_role(Role.PLATFORM_ADMIN)
    if not (is_platform or user.has_role(Role.HOSPITAL_ADMIN)):
        raise DomainError(PERMISSION_DENIED)
    if not user.is_mfa_verified:
        raise DomainError(MFA_REQUIRED)
    if is_platform:
        return None
    hospitals = administered_organisation_ids(user)
    return Q(hospital_id__in=hospitals) | Q(practitioner__primary_institution_id__in=hospitals)


def _render_reviews(
    request: HttpRequest, *, error: str = "", failed: int | None = None, status: int = 200
) -> HttpResponse:
    try:
        scope = _moderation_scope(_user(request))
    except DomainError as exc:
        return render_domain_error(request, exc)
    reviews = Review.objects.select_related("practitioner", "hospital")
    if scope is not None:
        reviews = reviews.filter(scope)
    pending = list(reviews.filter(status=ReviewStatus.PENDING).order_by("created_at", "pk")[:200])
    for row in pending:
        row.stars = "★" * row.rating  # type: ignore[attr-defined]
    return render(
        request,
        "consultations/reviews.html",
        {
            "pending": pending,
            "moderated": list(reviews.exclude(status=ReviewStatus.PENDING).order_by("-moderated_at", "-pk")[:50]),
            "error": error,
            "failed": failed,
        },
        status=status,
    )


@login_required
@require_GET
def reviews(request: HttpRequest) -> HttpResponse:
    """Patients' reviews waiting for the hospital's moderation, and the latest decisions."""
    return _render_reviews(request)


@login_required
@require_POST
def moderate(request: HttpRequest, review_id: int) -> HttpResponse:
    """Publish a review (its rating then counts in the directory) or hide it with a reason."""
    form = ModerateForm(request.POST)
    if not form.is_valid():
        return _render_reviews(
            request, error=_("Choose publish or hide."), failed=review_id, status=INVALID_FORM_STATUS
        )
    data = form.cleaned_data
    try:
        actions.moderate_review(_user(request), review_id, data["decision"] == "publish", data["reason"])
    except DomainError as exc:
        if _is_page_refusal(exc):
            return render_domain_error(request, exc)
        return _render_reviews(request, error=exc.message, failed=review_id, status=exc.status)
    messages.success(
        request,
        _("The review has been published.") if data["decision"] == "publish" else _("The review has been hidden."),
    )
    return redirect("consultations:reviews")
