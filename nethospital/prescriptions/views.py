"""Prescription pages (R1, R6, R8-R16).

- the doctor writes a prescription from a consultation: the head (kind of supply, validity, weight,
  notes) and the items; every change is checked at once (htmx) and the findings shown, refusals in
  red, warnings in amber each with "go on, with a reason"; signing is possible only when nothing
  blocks; the doctor's list shows pharmacists' questions with amend and cancel;
- the pharmacist's review queue and review page (approve, reject with reasons, send back);
- the patient's list and detail (prescription and OTC drugs apart with the notice to confirm, R16;
  the pharmacist's review; a printable PDF with a QR code);
- the public verification page (authenticity only) and the regulator's statistics (R12).

Thin (CONVENTIONS): parse the form, call one action or read helper, render. A refusal
(``DomainError``) is shown next to its field, or as the page with its 4xx status.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from nethospital.accounts.models import User
from nethospital.accounts.views import render_domain_error
from nethospital.consultations import access as consultation_access
from nethospital.core import ratelimit
from nethospital.core.errors import RATE_LIMITED, DomainError
from nethospital.core.idempotency import new_key
from nethospital.core.middleware import client_address
from nethospital.directory.models import Organization
from nethospital.prescriptions import access, actions, errors, pdf, presentation, rules
from nethospital.prescriptions.choices import PrescriptionStatus, ReviewDecision
from nethospital.prescriptions.forms import (
    DraftForm,
    ItemRowForm,
    NewDraftForm,
    OverrideForm,
    ReasonForm,
    ReviewForm,
    item_rows,
)
from nethospital.prescriptions.models import Prescription
from nethospital.records.models import Allergy

INVALID_FORM_STATUS = 422
VERIFY_RATE_PER_ADDRESS = 60  # a minute: verifying is public, listing other people's prescriptions is not


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _one_line(form: Any) -> str:
    return " ".join(str(e) for errors_ in form.errors.values() for e in errors_)


def _open(request: HttpRequest, prescription_id: int, action: str = "view") -> Prescription:
    return access.access_prescription(_user(request), prescription_id, action)


def _allergies(prescription: Prescription) -> list[Allergy]:
    return list(Allergy.objects.filter(patient_id=prescription.patient_id, is_refuted=False).order_by("substance"))


# --- drug search (the catalogue, for the item rows) ---------------------------------------------
@login_required
@require_GET
def drug_search(request: HttpRequest) -> HttpResponse:
    """``<option>``s for the drug field's datalist. Any field ending in ``-drug`` (the row's own input,
    sent by htmx) or ``q`` is the search text."""
    text = request.GET.get("q") or next((str(v) for k, v in request.GET.items() if k.endswith("-drug")), "")
    return render(request, "prescriptions/_drug_options.html", {"drugs": presentation.search_drugs(text)})


# --- the doctor writes ---------------------------------------------------------------------------
def _show_errors(form: Any, exc: DomainError) -> None:
    """The action's field errors next to their fields, anything else above the form."""
    field_errors = exc.field_errors()
    for name, texts in field_errors.items():
        for text in texts:
            visible = name in form.fields and not form.fields[name].widget.is_hidden
            form.add_error(name if visible else None, text)
    if not field_errors:
        form.add_error(None, exc.message)


def _draft_initial(prescription: Prescription) -> dict[str, Any]:
    weight = prescription.patient_weight_kg
    return {
        "supply_kind": prescription.supply_kind,
        "supply_reason": prescription.supply_reason,
        "valid_days": prescription.valid_days,
        "patient_weight_kg": "" if weight is None else format(weight.normalize(), "f"),
        "notes": prescription.notes,
    }


def _rows_initial(prescription: Prescription) -> list[dict[str, Any]]:
    """The saved items as rows. A quantity equal to the computed one is left empty, so that it is
    computed again when the dose, frequency or days change."""
    rows = []
    for item in presentation.live_items(prescription):
        needed = rules.needed_packs(item.drug, item.dose, item.frequency, item.days)
        rows.append(
            {
                "drug": item.drug.code,
                "dose": format(item.dose.normalize(), "f"),
                "frequency": item.frequency,
                "route": item.route if item.route != item.drug.route else "",
                "days": item.days,
                "quantity": item.quantity if item.quantity != needed else None,
                "notes": item.notes,
            }
        )
    return rows


def _row_infos(prescription: Prescription, rows: list[ItemRowForm]) -> list[dict[str, Any] | None]:
    """For each row on the page, the saved item it shows (drug, computed quantity), if any."""
    items = presentation.live_items(prescription)
    infos: list[dict[str, Any] | None] = []
    position = 0
    for row in rows:
        if not _row_has_drug(row) or position >= len(items):
            infos.append(None)
            continue
        item = items[position]
        position += 1
        infos.append(
            {
                "item": item,
                "needed": rules.needed_packs(item.drug, item.dose, item.frequency, item.days),
                "number": position,
            }
        )
    return infos


def _row_has_drug(row: ItemRowForm) -> bool:
    if row.is_bound:
        return bool((row.data.get(row.add_prefix("drug")) or "").strip())
    return bool(row.initial.get("drug"))


def _editor_context(
    prescription: Prescription,
    *,
    draft_form: DraftForm | None = None,
    rows: list[ItemRowForm] | None = None,
    findings: list[rules.Finding] | None = None,
    override_errors: dict[tuple[str, str], str] | None = None,
    sign_error: DomainError | None = None,
    items_errors: list[str] | None = None,
    show_saved: bool = True,
) -> dict[str, Any]:
    if findings is None:
        findings = rules.check(prescription)
    rows = rows if rows is not None else item_rows(initial=_rows_initial(prescription))
    has_items = prescription.items.exists()
    blocking = rules.blocking(findings)
    finding_rows = presentation.finding_rows(prescription, findings)
    override_errors = override_errors or {}
    infos = _row_infos(prescription, rows) if show_saved else [None] * len(rows)
    last_filled = max((i for i, row in enumerate(rows) if _row_has_drug(row)), default=-1)
    return {
        "prescription": prescription,
        "consultation": prescription.consultation,
        "patient": prescription.patient,
        "allergies": _allergies(prescription),
        "diagnoses": presentation.diagnoses(prescription.diagnosis_codes),
        "draft_form": draft_form or DraftForm(initial=_draft_initial(prescription), prefix="draft"),
        "rows": list(zip(rows, infos, strict=True)),
        # The filled rows and one empty row are open; the others wait under "More drugs".
        "visible_rows": min(len(rows), last_filled + 2),
        "items_errors": items_errors or [],
        "finding_rows": [
            {"row": row, "error": override_errors.get((row.finding.rule, row.finding.subject), "")}
            for row in finding_rows
        ],
        "has_items": has_items,
        "blocking_count": len(blocking),
        "may_sign": has_items and not blocking,
        "sign_error": sign_error,
        "drugs": [item.drug for item in presentation.live_items(prescription)],
    }


def _own_draft(request: HttpRequest, prescription_id: int) -> Prescription:
    """The doctor's own prescription (with MFA, R6/R8), opened and audited."""
    prescription = access.access_prescription(_user(request), prescription_id, "edit")
    if getattr(prescription, "viewer_role", None) != "doctor":
        raise DomainError(errors.PRESCRIPTION_NOT_FOUND)
    return prescription


@login_required
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """Start a prescription from a consultation: only its own doctor (R8), only from a confirmed
    follow-up with a signed diagnosis (R1). The items are added on the next page."""
    user = _user(request)
    try:
        consultation = consultation_access.access_consultation(user, consultation_id, "prescribe")
        if consultation.practitioner is None or consultation.practitioner.user_id != user.pk:
            raise DomainError(errors.NOT_TREATING_DOCTOR)
    except DomainError as exc:
        return render_domain_error(request, exc)
    status = 200
    if request.method == "POST":
        form = NewDraftForm(request.POST, prefix="draft")
        status = INVALID_FORM_STATUS
        if form.is_valid():
            try:
                prescription = actions.create_prescription(user, consultation.pk, **form.cleaned_data)
            except DomainError as exc:
                if exc.status in (401, 403, 404):
                    return render_domain_error(request, exc)
                _show_errors(form, exc)
                status = exc.status
            else:
                messages.success(request, _("Draft prescription %(number)s started.") % {"number": prescription.number})
                return redirect("prescriptions:edit", prescription_id=prescription.pk)
    else:
        form = NewDraftForm(
            initial={"supply_kind": "normal", "valid_days": 1, "idempotency_key": new_key()}, prefix="draft"
        )
    record = consultation.records.filter(is_current=True).first()
    codes = [d.code for d in record.diagnoses.all()] if record else []
    context = {
        "consultation": consultation,
        "patient": consultation.patient,
        "form": form,
        "diagnoses": presentation.diagnoses(codes),
        "allergies": list(Allergy.objects.filter(patient=consultation.patient, is_refuted=False)),
        "advice_only": not consultation.may_diagnose,
        "drafts": list(
            Prescription.objects.filter(
                consultation=consultation, practitioner__user=user, status=PrescriptionStatus.DRAFT
            ).order_by("-created_at")
        ),
    }
    return render(request, "prescriptions/new.html", context, status=status)


@login_required
@require_GET
def edit(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """The draft: head, items, findings, sign."""
    try:
        prescription = _own_draft(request, prescription_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    if prescription.status != PrescriptionStatus.DRAFT:
        return redirect("prescriptions:detail", prescription_id=prescription.pk)
    return render(request, "prescriptions/edit.html", _editor_context(prescription))


def _after_change(
    request: HttpRequest,
    prescription: Prescription,
    *,
    draft_form: DraftForm | None = None,
    rows: list[ItemRowForm] | None = None,
    findings: list[rules.Finding] | None = None,
    items_errors: list[str] | None = None,
    show_saved: bool = True,
    status: int = 200,
) -> HttpResponse:
    """htmx: the findings panel, and the forms' error and item boxes out of band (the inputs are
    not replaced, so nothing the doctor is typing is lost). Without htmx: the whole page."""
    context = _editor_context(
        prescription,
        draft_form=draft_form,
        rows=rows,
        findings=findings,
        items_errors=items_errors,
        show_saved=show_saved,
    )
    if _is_htmx(request):
        return render(request, "prescriptions/_after_change.html", context, status=status)
    if status == 200:
        return redirect("prescriptions:edit", prescription_id=prescription.pk)
    return render(request, "prescriptions/edit.html", context, status=status)


@login_required
@require_POST
def update_head(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """Kind of supply, validity, weight, notes → ``actions.update_draft``; the findings again."""
    user = _user(request)
    try:
        prescription = _own_draft(request, prescription_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    form = DraftForm(request.POST, prefix="draft")
    if not form.is_valid():
        return _after_change(request, prescription, draft_form=form, status=INVALID_FORM_STATUS)
    try:
        result = actions.update_draft(user, prescription.pk, **form.cleaned_data)
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            return render_domain_error(request, exc)
        _show_errors(form, exc)
        return _after_change(request, prescription, draft_form=form, status=exc.status)
    return _after_change(request, result.prescription, draft_form=form, findings=result.findings)


@login_required
@require_POST
def update_items(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """The item list → ``actions.set_items`` (it replaces the list); the findings again. Errors of
    the action name the item by its place among the filled rows (``items.1.dose``)."""
    user = _user(request)
    try:
        prescription = _own_draft(request, prescription_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    rows = item_rows(request.POST)
    filled = [row for row in rows if _row_has_drug(row)]
    if not all(row.is_valid() for row in filled):
        return _after_change(request, prescription, rows=rows, show_saved=False, status=INVALID_FORM_STATUS)
    try:
        result = actions.set_items(user, prescription.pk, [row.item_input() for row in filled])
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            return render_domain_error(request, exc)
        general = _show_item_errors(filled, exc)
        return _after_change(
            request, prescription, rows=rows, items_errors=general, show_saved=False, status=exc.status
        )
    return _after_change(request, result.prescription, rows=rows, findings=result.findings)


def _show_item_errors(filled: list[ItemRowForm], exc: DomainError) -> list[str]:
    """Put the action's errors on the rows they name (``items.<n>.<field>``, n counting filled rows);
    return the ones about the list as a whole."""
    general: list[str] = []
    for name, texts in exc.field_errors().items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "items" and parts[1].isdigit() and int(parts[1]) < len(filled):
            row = filled[int(parts[1])]
            for text in texts:
                row.add_error(parts[2] if parts[2] in row.fields else None, text)
        else:
            general.extend(texts)
    if not exc.field_errors():
        general.append(exc.message)
    return general


@login_required
@require_POST
def override(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """Go on despite a warning, with a reason → ``actions.override_warning`` (never a refusal)."""
    user = _user(request)
    try:
        prescription = _own_draft(request, prescription_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    form = OverrideForm(request.POST)
    status = 200
    override_errors: dict[tuple[str, str], str] = {}
    findings = None
    if not form.is_valid():
        status = INVALID_FORM_STATUS
        override_errors[(form.data.get("rule", ""), form.data.get("subject", ""))] = _one_line(form)
    else:
        data = form.cleaned_data
        try:
            result = actions.override_warning(user, prescription.pk, data["rule"], data["subject"], data["reason"])
        except DomainError as exc:
            if exc.status in (401, 403, 404):
                return render_domain_error(request, exc)
            status = exc.status
            override_errors[(data["rule"], data["subject"])] = exc.message
        else:
            findings = result.findings
            prescription = result.prescription
    context = _editor_context(prescription, findings=findings, override_errors=override_errors)
    if _is_htmx(request):
        return render(request, "prescriptions/_findings.html", context, status=status)
    if status == 200:
        return redirect(f"{reverse('prescriptions:edit', args=[prescription.pk])}#findings")
    return render(request, "prescriptions/edit.html", context, status=status)


@login_required
@require_POST
def sign(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """The doctor signs in their own MFA-verified session (R10); the rules run once more."""
    user = _user(request)
    try:
        prescription = _own_draft(request, prescription_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    try:
        signed = actions.sign_prescription(user, prescription.pk)
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            return render_domain_error(request, exc)
        prescription.refresh_from_db()
        if prescription.status != PrescriptionStatus.DRAFT:
            return render_domain_error(request, exc)
        return render(
            request, "prescriptions/edit.html", _editor_context(prescription, sign_error=exc), status=exc.status
        )
    messages.success(
        request,
        _("Prescription %(number)s signed. It now waits for a pharmacist's review.") % {"number": signed.number},
    )
    return redirect("prescriptions:detail", prescription_id=signed.pk)


@login_required
@require_GET
def doctor_list(request: HttpRequest) -> HttpResponse:
    """The doctor's prescriptions with their status; the ones a pharmacist sent back show the
    question, with amend (a new signed version) or cancel."""
    user = _user(request)
    try:
        consultation_access.acting_doctor(user)
    except DomainError as exc:
        return render_domain_error(request, exc)
    return render(request, "prescriptions/doctor_list.html", _doctor_list_context(user))


def _doctor_list_context(user: User, errors_by_id: dict[int, str] | None = None) -> dict[str, Any]:
    prescriptions = list(
        access.prescriptions_of_doctor(user)
        .select_related("patient", "hospital")
        .prefetch_related("reviews")
        .order_by("-created_at", "-pk")[:200]
    )
    for p in prescriptions:
        reviews = sorted(p.reviews.all(), key=lambda r: (r.reviewed_at, r.pk))
        p.latest_review = reviews[-1] if reviews else None  # type: ignore[attr-defined]
        p.shown_status = presentation.display_status(p)  # type: ignore[attr-defined]
        p.shown_status_label = presentation.status_label(p.shown_status)  # type: ignore[attr-defined]
        p.error = (errors_by_id or {}).get(p.pk, "")  # type: ignore[attr-defined]
    questioned = [p for p in prescriptions if p.status == PrescriptionStatus.QUESTIONED]
    return {"questioned": questioned, "prescriptions": prescriptions}


def _doctor_action(request: HttpRequest, prescription_id: int, action: Any, message: str) -> HttpResponse:
    user = _user(request)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        exc = DomainError(errors.OVERRIDE_REASON_REQUIRED, field="reason")
    else:
        try:
            result = action(user, prescription_id, form.cleaned_data["reason"])
        except DomainError as caught:
            exc = caught
        else:
            messages.success(request, message % {"number": result.number})
            if result.status == PrescriptionStatus.DRAFT:
                return redirect("prescriptions:edit", prescription_id=result.pk)
            return redirect("prescriptions:doctor_list")
    if exc.status in (401, 403, 404):
        return render_domain_error(request, exc)
    return render(
        request,
        "prescriptions/doctor_list.html",
        _doctor_list_context(user, {prescription_id: exc.message}),
        status=exc.status,
    )


@login_required
@require_POST
def amend(request: HttpRequest, prescription_id: int) -> HttpResponse:
    return _doctor_action(
        request, prescription_id, actions.amend_prescription, _("Prescription %(number)s: a new version to sign.")
    )


@login_required
@require_POST
def cancel(request: HttpRequest, prescription_id: int) -> HttpResponse:
    return _doctor_action(
        request, prescription_id, actions.cancel_prescription, _("Prescription %(number)s has been cancelled.")
    )


# --- everyone who may see it: the detail, the PDF ------------------------------------------------
def _detail_context(request: HttpRequest, prescription: Prescription) -> dict[str, Any]:
    items = presentation.live_items(prescription)
    rx_items, otc_items = presentation.split_items(items)
    review = presentation.latest_review(prescription)
    shown = presentation.display_status(prescription)
    role = getattr(prescription, "viewer_role", None)
    signed = bool(prescription.signature)
    url = presentation.verification_url(request, prescription) if signed else ""
    reviews = list(prescription.reviews.select_related("pharmacist").order_by("reviewed_at", "pk"))
    for r in reviews:
        r.reason_labels = presentation.review_reasons(r)  # type: ignore[attr-defined]
        r.decision_label = presentation.REVIEW_LABELS.get(r.decision, r.decision)  # type: ignore[attr-defined]
    return {
        "prescription": prescription,
        "role": role,
        "items": items,
        "rx_items": rx_items,
        "otc_items": otc_items,
        "review": review,
        "review_reasons": presentation.review_reasons(review),
        "reviews": reviews,
        "shown_status": shown,
        "shown_status_label": presentation.status_label(shown),
        "diagnoses": presentation.diagnoses(prescription.diagnosis_codes),
        "verification_url": url,
        "qr_svg": presentation.qr_svg(url) if url else "",
        "overrides": list(prescription.overrides.all()),
        "finding_rows": presentation.finding_rows(prescription) if role in ("doctor", "pharmacist") else [],
        "needs_notice": role == "patient" and signed and prescription.notice_confirmed_at is None,
        "is_signed": signed,
    }


@login_required
@require_GET
def detail(request: HttpRequest, prescription_id: int) -> HttpResponse:
    try:
        prescription = _open(request, prescription_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    return render(request, "prescriptions/detail.html", _detail_context(request, prescription))


@login_required
@require_POST
def confirm_notice(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """The patient's side confirms the prescription-drug notice (R16)."""
    try:
        actions.confirm_notice(_user(request), prescription_id)
    except DomainError as exc:
        return render_domain_error(request, exc)
    messages.success(request, _("Thank you: you have confirmed the notice."))
    return redirect("prescriptions:detail", prescription_id=prescription_id)


@login_required
@require_GET
def prescription_pdf(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """The printable prescription (signed ones only) with the QR code of its verification URL."""
    try:
        prescription = _open(request, prescription_id, "pdf")
        if not prescription.signature:
            raise DomainError(errors.PRESCRIPTION_NOT_FOUND)
    except DomainError as exc:
        return render_domain_error(request, exc)
    content = pdf.render_prescription(prescription, presentation.verification_url(request, prescription))
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'inline; filename="prescription-{prescription.number}-v{prescription.version}.pdf"'
    )
    response["Cache-Control"] = "no-store"
    return response


# --- the patient's side --------------------------------------------------------------------------
@login_required
@require_GET
def my_prescriptions(request: HttpRequest) -> HttpResponse:
    rows = list(access.prescriptions_for_patient_side(_user(request)).order_by("-signed_at", "-pk")[:200])
    for p in rows:
        p.shown_status = presentation.display_status(p)  # type: ignore[attr-defined]
        p.shown_status_label = presentation.status_label(p.shown_status)  # type: ignore[attr-defined]
    return render(request, "prescriptions/my_list.html", {"prescriptions": rows})


# --- the pharmacist ------------------------------------------------------------------------------
@login_required
@require_GET
def review_queue(request: HttpRequest) -> HttpResponse:
    """Signed prescriptions waiting for a pharmacist of these hospitals, oldest first."""
    user = _user(request)
    try:
        presentation.ensure_pharmacist(user)
    except DomainError as exc:
        return render_domain_error(request, exc)
    rows = list(access.review_queue(user)[:200])
    for p in rows:
        p.is_expired = actions.is_expired(p)  # type: ignore[attr-defined]
    return render(request, "prescriptions/review_queue.html", {"prescriptions": rows})


def _review_context(request: HttpRequest, prescription: Prescription, form: ReviewForm) -> dict[str, Any]:
    context = _detail_context(request, prescription)
    context.update(
        {
            "form": form,
            "allergies": _allergies(prescription),
            "patient": prescription.patient,
            "patient_age": prescription.patient.age,
            "verification": presentation.public_verification(prescription),
            "is_expired": actions.is_expired(prescription),
            "may_review": prescription.status == PrescriptionStatus.PENDING_REVIEW,
            "finding_rows": presentation.finding_rows(prescription),
        }
    )
    return context


@login_required
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """Patient (masked id, age, weight, allergies), diagnoses, items, findings and the doctor's
    overrides, the signature check; approve, reject with reasons or send back (R10)."""
    user = _user(request)
    try:
        presentation.ensure_pharmacist(user)
        prescription = access.access_prescription(user, prescription_id, "review")
        if not access.is_reviewer_for(user, prescription) or prescription.status == PrescriptionStatus.DRAFT:
            raise DomainError(errors.PRESCRIPTION_NOT_FOUND)
    except DomainError as exc:
        return render_domain_error(request, exc)
    status = 200
    if request.method == "POST":
        form = ReviewForm(request.POST)
        status = INVALID_FORM_STATUS
        if form.is_valid():
            data = form.cleaned_data
            try:
                done = actions.review_prescription(
                    user, prescription.pk, data["decision"], reason_codes=data["reason_codes"], note=data["note"]
                )
            except DomainError as exc:
                if exc.status in (401, 404):
                    return render_domain_error(request, exc)
                _show_errors(form, exc)
                status = exc.status
            else:
                messages.success(
                    request,
                    _("Prescription %(number)s: %(decision)s.")
                    % {"number": prescription.number, "decision": ReviewDecision(done.decision).label},
                )
                return redirect("prescriptions:review_queue")
        prescription.refresh_from_db()
    else:
        form = ReviewForm(initial={"decision": ReviewDecision.APPROVE})
    return render(request, "prescriptions/review.html", _review_context(request, prescription, form), status=status)


# --- public verification (no login) --------------------------------------------------------------
@require_GET
def verify(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """Is this prescription authentic? Number, version, times, hospital, doctor and licence, the key
    and the hash, and the status, but no patient and no drugs. ``?hash=`` compares the hash printed
    on the paper. Rate limited per address: verifying one is public, walking through all is not."""
    retry_after = ratelimit.hit(
        "rx-verify-address", client_address(request) or "unknown", limit=VERIFY_RATE_PER_ADDRESS, window_seconds=60
    )
    if retry_after is not None:
        error = DomainError(RATE_LIMITED, retry_after=retry_after)
        response = render(request, "error.html", {"error": error}, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    prescription = (
        Prescription.objects.select_related("practitioner", "hospital", "signing_key")
        .filter(pk=prescription_id)
        .first()
    )
    if prescription is None:
        return render(request, "error.html", {"error": DomainError(errors.PRESCRIPTION_NOT_FOUND)}, status=404)
    result = presentation.public_verification(prescription, request.GET.get("hash", ""))
    response = render(
        request,
        "prescriptions/verify.html",
        {"result": result, "api_url": reverse("api:verify_prescription", args=[prescription.pk])},
    )
    response["Cache-Control"] = "no-store"
    return response


# --- the regulator (R12) -------------------------------------------------------------------------
@login_required
@require_GET
def statistics(request: HttpRequest) -> HttpResponse:
    """Per-doctor prescribing counts, for the regulator's supervision only (R12)."""
    try:
        rows = actions.prescribing_statistics(_user(request))
    except DomainError as exc:
        return render_domain_error(request, exc)
    hospitals = {o.pk: str(o) for o in Organization.objects.filter(pk__in={r["hospital_id"] for r in rows})}
    for row in rows:
        row["hospital"] = hospitals.get(row["hospital_id"], row["hospital_id"])
    return render(request, "prescriptions/statistics.html", {"rows": rows})
