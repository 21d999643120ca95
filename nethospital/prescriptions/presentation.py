"""Read-only helpers shared by the prescription pages, the JSON API and the PDF: the status a person
sees (expired is computed, R13), prescription and OTC drugs apart (R16), the verification URL and
its QR code, and what the public verification may show (authenticity only: no patient, no drugs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.consultations.models import ICD10Code
from nethospital.core.errors import MFA_REQUIRED, PERMISSION_DENIED, DomainError
from nethospital.prescriptions import actions, rules, signing
from nethospital.prescriptions.choices import PrescriptionStatus, RejectReason, ReviewDecision
from nethospital.prescriptions.models import Drug, PharmacistReview, Prescription, PrescriptionItem, RuleOverride

EXPIRED = "expired"
# What each status means to the people who see it (the patient's words, R13 / R15).
STATUS_LABELS: dict[str, Any] = {
    PrescriptionStatus.DRAFT: _("draft (not yet signed)"),
    PrescriptionStatus.PENDING_REVIEW: _("pending pharmacist review"),
    PrescriptionStatus.QUESTIONED: _("sent back to the doctor"),
    PrescriptionStatus.APPROVED: _("approved"),
    PrescriptionStatus.REJECTED: _("rejected"),
    PrescriptionStatus.CANCELLED: _("cancelled"),
    PrescriptionStatus.SUPERSEDED: _("replaced by an amended version"),
    PrescriptionStatus.DISPENSED: _("dispensed (used)"),
    EXPIRED: _("expired"),
}
# A decision as it is shown afterwards ("approved"), not as it is offered ("approve").
REVIEW_LABELS: dict[str, Any] = {
    ReviewDecision.APPROVE: _("approved by the pharmacist"),
    ReviewDecision.REJECT: _("rejected by the pharmacist"),
    ReviewDecision.QUESTION: _("sent back to the doctor with a question"),
}
VERIFY_REASONS: dict[str, Any] = {
    "ok": _("The signature is valid: this is the prescription the doctor signed, unchanged."),
    "unsigned": _("This prescription has not been signed."),
    "content_changed": _("The prescription was changed after it was signed: do not accept it."),
    "bad_signature": _("The signature does not match the doctor's key: do not accept it."),
}


def search_drugs(text: str, limit: int = 20) -> list[Drug]:
    """Active drugs whose Chinese or English name, brand or code contains ``text``."""
    text = (text or "").strip()[:40]
    if not text:
        return []
    return list(
        Drug.objects.filter(is_active=True)
        .filter(
            Q(generic_name_zh__icontains=text)
            | Q(generic_name_en__icontains=text)
            | Q(brand__icontains=text)
            | Q(code__icontains=text)
        )
        .order_by("generic_name_zh", "strength_value", "code")[:limit]
    )


def ensure_pharmacist(user: User) -> None:
    """The review queue is for pharmacists, with a second factor in this session (R6)."""
    if not user.has_role(Role.PHARMACIST):
        raise DomainError(PERMISSION_DENIED)
    if not user.is_mfa_verified:
        raise DomainError(MFA_REQUIRED)


def display_status(prescription: Prescription) -> str:
    """The stored status, except that a signed prescription not yet used is expired after its
    validity (R13): it can then be neither reviewed nor dispensed."""
    if prescription.status in (
        PrescriptionStatus.PENDING_REVIEW,
        PrescriptionStatus.APPROVED,
        PrescriptionStatus.QUESTIONED,
    ) and actions.is_expired(prescription):
        return EXPIRED
    return prescription.status


def status_label(code: str) -> str:
    return str(STATUS_LABELS.get(code, code))


def live_items(prescription: Prescription) -> list[PrescriptionItem]:
    return list(
        prescription.items.select_related("drug", "drug__therapeutic_class").prefetch_related(
            "drug__ingredients__allergy_class"
        )
    )


def split_items(items: list[PrescriptionItem]) -> tuple[list[PrescriptionItem], list[PrescriptionItem]]:
    """Prescription drugs and non-prescription (OTC) drugs, shown apart (R16)."""
    return [i for i in items if i.drug.is_prescription], [i for i in items if not i.drug.is_prescription]


def diagnoses(codes: list[str]) -> list[dict[str, str]]:
    names = {c.code: c for c in ICD10Code.objects.filter(code__in=codes)}
    rows = []
    for code in codes:
        found = names.get(code)
        rows.append(
            {"code": code, "name_zh": found.name_zh if found else "", "name_en": found.name_en if found else ""}
        )
    return rows


def latest_review(prescription: Prescription) -> PharmacistReview | None:
    return prescription.reviews.select_related("pharmacist").order_by("-reviewed_at", "-pk").first()


def review_reasons(review: PharmacistReview | None) -> list[str]:
    if review is None:
        return []
    labels = dict(RejectReason.choices)
    return [str(labels.get(code, code)) for code in review.reason_codes]


def overrides_by_key(prescription: Prescription) -> dict[tuple[str, str], RuleOverride]:
    return {(o.rule, o.subject): o for o in prescription.overrides.all()}


@dataclass(frozen=True)
class FindingRow:
    finding: rules.Finding
    override: RuleOverride | None

    @property
    def is_refusal(self) -> bool:
        return self.finding.severity == rules.REFUSAL


def finding_rows(prescription: Prescription, findings: list[rules.Finding] | None = None) -> list[FindingRow]:
    """Refusals first, then warnings, each with the doctor's override reason when there is one."""
    if findings is None:
        findings = rules.check(prescription)
    overrides = overrides_by_key(prescription)
    rows = [FindingRow(f, overrides.get((f.rule, f.subject))) for f in findings]
    return sorted(rows, key=lambda r: (not r.is_refusal,))


def verification_path(prescription: Prescription) -> str:
    path = reverse("prescriptions:verify", args=[prescription.pk])
    if prescription.canonical_hash:
        path += "?" + urlencode({"hash": prescription.canonical_hash})
    return path


def verification_url(request: HttpRequest, prescription: Prescription) -> str:
    """The address printed as the QR code: the public verification page with the signed hash, so
    the verifier sees at once whether the paper and the system agree."""
    return request.build_absolute_uri(verification_path(prescription))


def qr_svg(text: str) -> SafeString:
    """The QR code of ``text`` as inline SVG (made here, not by a third-party service)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    return mark_safe(svg)  # noqa: S308 - generated by the qrcode package from our own URL


def qr_matrix(text: str) -> list[list[bool]]:
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    return code.get_matrix()


def for_verification(prescription_id: int) -> Prescription | None:
    return (
        Prescription.objects.select_related("practitioner", "hospital", "signing_key")
        .filter(pk=prescription_id)
        .first()
    )


@dataclass(frozen=True)
class PublicVerification:
    """What anyone may learn from a prescription's id: that it is authentic, and who signed it when
    (never the patient, never the drugs)."""

    prescription_id: int
    valid: bool
    reason: str
    reason_text: str
    number: str | None = None
    version: int | None = None
    issued_at: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    hospital: str | None = None
    doctor_name: str | None = None
    doctor_licence: str | None = None
    key_id: str | None = None
    public_key: str | None = None
    content_hash: str | None = None
    signed_hash: str | None = None
    status: str | None = None
    status_label: str | None = None
    hash_given: str | None = None
    hash_matches: bool | None = None


def public_verification(prescription: Prescription, given_hash: str = "") -> PublicVerification:
    check = signing.verify(prescription)
    given = (given_hash or "").strip().lower()[:64] or None
    if check.reason == "unsigned":
        # A draft is not a prescription yet: confirm nothing about it.
        return PublicVerification(
            prescription_id=prescription.pk,
            valid=False,
            reason="unsigned",
            reason_text=str(VERIFY_REASONS["unsigned"]),
            hash_given=given,
            hash_matches=False if given else None,
        )
    status = display_status(prescription)
    return PublicVerification(
        prescription_id=prescription.pk,
        valid=check.valid,
        reason=check.reason,
        reason_text=str(VERIFY_REASONS.get(check.reason, check.reason)),
        number=prescription.number,
        version=prescription.version,
        issued_at=prescription.signed_at,
        valid_until=prescription.valid_until,
        hospital=str(prescription.hospital),
        doctor_name=prescription.practitioner.legal_name,
        doctor_licence=prescription.practitioner.licence_number,
        key_id=check.key_id,
        public_key=check.public_key,
        content_hash=check.content_hash,
        signed_hash=prescription.canonical_hash,
        status=status,
        status_label=status_label(status),
        hash_given=given,
        hash_matches=None if given is None else (check.valid and given == prescription.canonical_hash),
    )
