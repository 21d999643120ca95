"""Forms of the consultation pages. They only parse input (types, lengths, choices); every rule (the
follow-up gate R1/R2, young children R3, who may do what) is checked by the action the view calls,
whose ``DomainError`` is shown next to its field."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient
from nethospital.consultations.actions import RECORD_LIMITS, Declaration, RecordInput
from nethospital.consultations.choices import ConsultationChannel, ProofKind, VisitType
from nethospital.consultations.models import VisitRecord

FIRST_VISIT_CHOICES = [
    ("no", _("No: a doctor diagnosed this condition before (follow-up visit)")),
    ("yes", _("Yes: this is my first visit for this condition")),
]
PROOF_CHOICES = [
    (ProofKind.RECORD_IN_SYSTEM.value, _("An earlier visit record here")),
    (ProofKind.OTHER_HOSPITAL.value, _("A diagnosis from another hospital")),
    (ProofKind.DOCUMENT.value, _("Upload a document (outpatient or discharge record: PDF or photo)")),
]
CODE_SEPARATORS = re.compile(r"[\s,，;；、]+")
MAX_DIAGNOSES = 10


def new_client_id() -> str:
    """A fresh id for each rendered form: posting the same form twice sends one message."""
    return uuid.uuid4().hex


def patient_choices(patients: Iterable[Patient], own_account_id: int | None) -> list[tuple[int, str]]:
    choices = []
    for patient in patients:
        label = patient.legal_name
        if patient.account_id == own_account_id:
            label = gettext("%(name)s (myself)") % {"name": patient.legal_name}
        choices.append((patient.pk, label))
    return choices


def record_choices(patients: Iterable[Patient]) -> list[tuple[int, str]]:
    """The current visit records of the patients the user acts for, as proof of an earlier diagnosis."""
    records = (
        VisitRecord.objects.filter(patient__in=list(patients), is_current=True)
        .select_related("patient", "practitioner")
        .prefetch_related("diagnoses")
        .order_by("-signed_at")[:50]
    )
    choices: list[tuple[int, str]] = []
    for record in records:
        codes = ", ".join(c.code for c in record.diagnoses.all())
        when = formats.date_format(timezone.localtime(record.signed_at), "Y-m-d")
        label = f"{when} · {record.patient.legal_name} · {record.practitioner.legal_name} · {record.chief_complaint}"
        choices.append((record.pk, f"{label} ({codes})" if codes else label))
    return choices


class DeclarationForm(forms.Form):
    """What the patient declares before a consultation opens (R1, R2)."""

    patient = forms.TypedChoiceField(label=_("Who is the consultation for?"), coerce=int)
    condition = forms.CharField(
        label=_("Condition you want to be seen for"),
        max_length=200,
        help_text=_("e.g. 高血压复诊 / hypertension follow-up"),
    )
    first_visit = forms.ChoiceField(
        label=_("Is this your first visit for this condition?"),
        choices=FIRST_VISIT_CHOICES,
        widget=forms.RadioSelect,
        initial="no",
    )
    proof_kind = forms.ChoiceField(
        label=_("Proof of the earlier diagnosis"),
        choices=PROOF_CHOICES,
        widget=forms.RadioSelect,
        required=False,
        help_text=_("Needed for a follow-up visit; not needed for a first visit."),
    )
    proof_record = forms.TypedChoiceField(label=_("Earlier visit record"), coerce=int, required=False, empty_value=None)
    proof_hospital = forms.CharField(label=_("Hospital of the earlier diagnosis"), max_length=120, required=False)
    proof_summary = forms.CharField(
        label=_("The diagnosis as written by that hospital"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    proof_file = forms.FileField(
        label=_("Document"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png,image/webp"}),
    )

    def __init__(
        self,
        *args: Any,
        patients: list[tuple[int, str]],
        records: list[tuple[int, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient"].choices = patients  # type: ignore[attr-defined]
        self.fields["proof_record"].choices = [("", gettext("— choose a record —")), *records]  # type: ignore[attr-defined]
        self.fields["proof_file"].help_text = gettext("PDF, JPEG, PNG or WebP, at most %(mb)s MB.") % {
            "mb": settings.NETHOSPITAL_ATTACHMENT_MAX_BYTES // (1024 * 1024)
        }

    def declaration(self, proof_attachment_id: int | None = None) -> Declaration:
        data = self.cleaned_data
        first_visit = data["first_visit"] == "yes"
        return Declaration(
            condition=data["condition"],
            first_visit=first_visit,
            proof_kind=ProofKind.NONE if first_visit else (data.get("proof_kind") or ProofKind.NONE),
            proof_record_id=data.get("proof_record"),
            proof_hospital=data.get("proof_hospital") or "",
            proof_summary=data.get("proof_summary") or "",
            proof_attachment_id=proof_attachment_id,
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        wants_document = data.get("first_visit") == "no" and data.get("proof_kind") == ProofKind.DOCUMENT
        if wants_document and not data.get("proof_file"):
            self.add_error("proof_file", gettext("Choose the document to upload."))
        return data

    @property
    def wants_upload(self) -> bool:
        data = self.cleaned_data
        return data.get("first_visit") == "no" and data.get("proof_kind") == ProofKind.DOCUMENT


class QueueForm(DeclarationForm):
    """Join a department's queue: the next available doctor of that department."""

    department = forms.TypedChoiceField(label=_("Hospital and department"), coerce=int)
    channel = forms.ChoiceField(
        label=_("Consult by"),
        choices=ConsultationChannel.choices,
        widget=forms.RadioSelect,
        initial=ConsultationChannel.TEXT,
    )
    field_order = ["patient", "department", "channel"]

    def __init__(self, *args: Any, departments: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = departments  # type: ignore[attr-defined]
        self.order_fields(self.field_order)


class AskForm(DeclarationForm):
    """Write to a chosen doctor, who has a limited time to accept."""

    question = forms.CharField(
        label=_("Your question"),
        max_length=settings.NETHOSPITAL_MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    client_id = forms.CharField(widget=forms.HiddenInput, max_length=64)


class RecordForm(forms.Form):
    """The doctor's structured visit record (R21). Diagnoses are ICD-10 codes, separated by commas."""

    chief_complaint = forms.CharField(label=_("Chief complaint"), max_length=RECORD_LIMITS["chief_complaint"])
    present_illness = forms.CharField(
        label=_("Present illness"),
        max_length=RECORD_LIMITS["present_illness"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    past_history = forms.CharField(
        label=_("Past history"),
        max_length=RECORD_LIMITS["past_history"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    allergies = forms.CharField(
        label=_("Allergies"),
        max_length=RECORD_LIMITS["allergies"],
        required=False,
        help_text=_("Separated by commas; they are added to the patient's allergy list."),
    )
    findings = forms.CharField(
        label=_("Findings reported"),
        max_length=RECORD_LIMITS["findings"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    diagnosis_codes = forms.CharField(
        label=_("Diagnoses (ICD-10 codes)"),
        max_length=200,
        required=False,
        help_text=_("Type a code or a name and choose; separate several codes with commas."),
    )
    advice = forms.CharField(
        label=_("Advice"),
        max_length=RECORD_LIMITS["advice"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    followup_plan = forms.CharField(
        label=_("Follow-up plan"),
        max_length=RECORD_LIMITS["followup_plan"],
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_diagnosis_codes(self) -> list[str]:
        raw = self.cleaned_data.get("diagnosis_codes") or ""
        codes = [c.upper() for c in CODE_SEPARATORS.split(raw) if c]
        if len(codes) > MAX_DIAGNOSES:
            raise forms.ValidationError(
                gettext("At most %(count)s diagnoses.") % {"count": MAX_DIAGNOSES}, code="too_many"
            )
        return list(dict.fromkeys(codes))

    def record_input(self) -> RecordInput:
        data = self.cleaned_data
        return RecordInput(
            chief_complaint=data["chief_complaint"],
            present_illness=data.get("present_illness") or "",
            past_history=data.get("past_history") or "",
            allergies=data.get("allergies") or "",
            findings=data.get("findings") or "",
            advice=data.get("advice") or "",
            followup_plan=data.get("followup_plan") or "",
            diagnosis_codes=data.get("diagnosis_codes") or [],
        )

    @staticmethod
    def initial_from(record: VisitRecord) -> dict[str, Any]:
        values: dict[str, Any] = {name: getattr(record, name) for name in RECORD_LIMITS}
        values["diagnosis_codes"] = ", ".join(c.code for c in record.diagnoses.all())
        return values


class CorrectionForm(RecordForm):
    record = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**63 - 1)
    reason = forms.CharField(label=_("Reason for the correction"), max_length=300)
    field_order = ["reason"]


class VisitTypeForm(forms.Form):
    visit_type = forms.ChoiceField(
        label=_("Visit type"),
        choices=[
            (VisitType.FOLLOW_UP.value, _("Follow-up: I accept the proof of the earlier diagnosis")),
            (VisitType.ADVICE_ONLY.value, _("Advice only: first visit or insufficient proof (no diagnosis online)")),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(label=_("Note (optional)"), max_length=300, required=False)


class ReferForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the patient should see a doctor in person"),
        max_length=300,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. chest pain needs an ECG")}),
    )


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail of the guardian or village station operator"),
        max_length=254,
        help_text=_("A registered guardian of the patient, or the operator of a village service station."),
    )


class ReviewForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("Rating"),
        coerce=int,
        choices=[(n, "★" * n) for n in range(5, 0, -1)],
        widget=forms.RadioSelect,
    )
    text = forms.CharField(
        label=_("Review (optional)"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class ModerateForm(forms.Form):
    decision = forms.ChoiceField(choices=[("publish", _("Publish")), ("hide", _("Hide"))])
    reason = forms.CharField(label=_("Reason (needed to hide)"), max_length=200, required=False)


class PickForm(forms.Form):
    department = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class SendForm(forms.Form):
    """The chat box without JavaScript; the action checks the text (empty, too long)."""

    client_id = forms.CharField(max_length=64)
    body = forms.CharField(required=False)


class UploadForm(forms.Form):
    file = forms.FileField()
    client_id = forms.CharField(max_length=64)
    body = forms.CharField(max_length=settings.NETHOSPITAL_MESSAGE_MAX_CHARS, required=False)


class IcdSearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False)
