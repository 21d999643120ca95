"""Prescriptions API (R1, R8-R16): drug search; the doctor's draft (create, head, items, overrides),
sign, amend, cancel; lists for the doctor and the patient's side; detail; the pharmacist's queue
and review; the patient's notice (R16); public verification (authenticity only, no patient data);
the regulator's statistics (R12). Every refusal is a 4xx ``{"error": {"code", "message", "fields"}}``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.security import django_auth

from nethospital.accounts.access import authenticated_user
from nethospital.consultations import access as consultation_access
from nethospital.core import ratelimit
from nethospital.core.errors import RATE_LIMITED, DomainError, ensure
from nethospital.core.middleware import client_address
from nethospital.directory.models import Organization
from nethospital.prescriptions import access, actions, errors, presentation, rules
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.models import Drug, PharmacistReview, Prescription, PrescriptionItem

router = Router(tags=["prescriptions"])
VERIFY_RATE_PER_ADDRESS = 60  # a minute, shared with the page


# --- schemas ------------------------------------------------------------------------------------
class DrugOut(Schema):
    id: int
    code: str
    generic_name_zh: str
    generic_name_en: str
    brand: str
    dosage_form: str
    strength: str
    unit: str
    pack_size: int
    route: str
    is_prescription: bool
    control_class: str
    is_controlled: bool
    antibiotic_tier: str
    paediatric_use: str
    max_daily_dose: Decimal | None
    strength_value: Decimal
    strength_unit: str


class DrugSearchIn(Schema):
    q: str = Field(..., min_length=1, max_length=40, description="Chinese or English name, brand or code")
    limit: int = Field(20, ge=1, le=50)


class CreateIn(Schema):
    consultation_id: int
    supply_kind: str = Field("normal", max_length=10, description="normal, emergency, chronic or long (R13)")
    supply_reason: str = Field("", max_length=300)
    valid_days: int = Field(1, description="1 (the day of issue) to 3 (R13)")
    patient_weight_kg: Decimal | None = None
    notes: str = Field("", max_length=500)


class UpdateIn(Schema):
    supply_kind: str | None = Field(None, max_length=10)
    supply_reason: str | None = Field(None, max_length=300)
    valid_days: int | None = None
    patient_weight_kg: Decimal | str | None = Field(None, description='kilograms; "" clears it')
    notes: str | None = Field(None, max_length=500)


class ItemIn(Schema):
    drug: str = Field(..., max_length=80, description="the drug's catalogue code")
    dose: Decimal = Field(..., description="in the drug's dose unit (tablets, capsules, ml...), more than 0")
    frequency: str = Field(..., max_length=10)
    days: int
    route: str = Field("", max_length=12, description="empty: the drug's usual route")
    quantity: int | None = Field(None, description="packs; computed from dose × frequency × days when empty")
    notes: str = Field("", max_length=200)


class ItemsIn(Schema):
    items: list[ItemIn] = Field(..., max_length=50)


class OverrideIn(Schema):
    rule: str = Field(..., max_length=40)
    subject: str = Field(..., max_length=120)
    reason: str = Field("", max_length=300)


class ReasonIn(Schema):
    reason: str = Field("", max_length=300)


class ReviewIn(Schema):
    decision: str = Field(..., max_length=10, description="approve, reject or question")
    reason_codes: list[str] = Field([], max_length=10)
    note: str = Field("", max_length=500)


class FindingOut(Schema):
    rule: str
    severity: str  # "refusal" (cannot be overridden) or "warning"
    subject: str
    message: str
    overridden: bool
    override_reason: str | None
    blocks: bool


class ItemOut(Schema):
    position: int
    drug: str
    drug_name_zh: str
    drug_name_en: str
    strength: str
    unit: str
    pack_size: int
    dose: Decimal
    frequency: str
    route: str
    days: int
    quantity: int
    computed_quantity: int
    notes: str
    is_prescription: bool


class ReviewOut(Schema):
    decision: str
    reason_codes: list[str]
    note: str
    pharmacist: str
    reviewed_at: dt.datetime


class SummaryOut(Schema):
    id: int
    number: str
    version: int
    status: str
    display_status: str  # the status, or "expired" once the validity is over (R13)
    patient_id: int
    patient_name: str
    doctor_name: str
    hospital_id: int
    hospital: str
    created_at: dt.datetime
    signed_at: dt.datetime | None
    valid_until: dt.datetime | None


class PrescriptionOut(SummaryOut):
    consultation_id: int
    doctor_licence: str
    supply_kind: str
    supply_reason: str
    valid_days: int
    patient_weight_kg: Decimal | None
    diagnoses: list[str]
    notes: str
    replaces_id: int | None
    amendment_reason: str
    content_hash: str
    key_id: str | None
    dispensed_at: dt.datetime | None
    notice_confirmed_at: dt.datetime | None
    prescription_items: list[ItemOut]  # prescription drugs ...
    otc_items: list[ItemOut]  # ... and non-prescription drugs, apart (R16)
    reviews: list[ReviewOut]
    findings: list[FindingOut]  # the doctor and the pharmacist only
    verification_url: str | None


class DraftOut(Schema):
    prescription: PrescriptionOut
    findings: list[FindingOut]
    may_sign: bool


class ReviewResultOut(Schema):
    prescription_id: int
    status: str
    review: ReviewOut


class VerifyOut(Schema):
    prescription_id: int
    valid: bool
    reason: str  # ok, unsigned, content_changed, bad_signature
    reason_text: str
    number: str | None
    version: int | None
    issued_at: dt.datetime | None
    valid_until: dt.datetime | None
    hospital: str | None
    doctor_name: str | None
    doctor_licence: str | None
    key_id: str | None
    public_key: str | None  # Ed25519, raw 32 bytes in hex
    content_hash: str | None  # SHA-256 of the canonical form as it is now
    signed_hash: str | None  # the hash the doctor signed
    status: str | None
    status_label: str | None
    hash_given: str | None
    hash_matches: bool | None


class StatisticsOut(Schema):
    practitioner_id: int
    doctor_name: str
    hospital_id: int
    hospital: str
    prescriptions: int


# --- building the answers ----------------------------------------------------------------------
def drug_out(drug: Drug) -> DrugOut:
    return DrugOut(
        id=drug.pk,
        code=drug.code,
        generic_name_zh=drug.generic_name_zh,
        generic_name_en=drug.generic_name_en,
        brand=drug.brand,
        dosage_form=drug.dosage_form,
        strength=drug.strength,
        unit=drug.unit,
        pack_size=drug.pack_size,
        route=drug.route,
        is_prescription=drug.is_prescription,
        control_class=drug.control_class,
        is_controlled=drug.is_controlled,
        antibiotic_tier=drug.antibiotic_tier,
        paediatric_use=drug.paediatric_use,
        max_daily_dose=drug.max_daily_dose,
        strength_value=drug.strength_value,
        strength_unit=drug.strength_unit,
    )


def finding_out(row: presentation.FindingRow) -> FindingOut:
    f = row.finding
    return FindingOut(
        rule=f.rule,
        severity=f.severity,
        subject=f.subject,
        message=f.message,
        overridden=f.overridden,
        override_reason=row.override.reason if row.override else None,
        blocks=f.blocks,
    )


def item_out(item: PrescriptionItem) -> ItemOut:
    return ItemOut(
        position=item.position,
        drug=item.drug.code,
        drug_name_zh=item.drug.generic_name_zh,
        drug_name_en=item.drug.generic_name_en,
        strength=item.drug.strength,
        unit=item.drug.unit,
        pack_size=item.drug.pack_size,
        dose=item.dose,
        frequency=item.frequency,
        route=item.route,
        days=item.days,
        quantity=item.quantity,
        computed_quantity=rules.needed_packs(item.drug, item.dose, item.frequency, item.days),
        notes=item.notes,
        is_prescription=item.drug.is_prescription,
    )


def review_out(review: PharmacistReview) -> ReviewOut:
    return ReviewOut(
        decision=review.decision,
        reason_codes=list(review.reason_codes),
        note=review.note,
        pharmacist=str(review.pharmacist),
        reviewed_at=review.reviewed_at,
    )


def summary_fields(p: Prescription) -> dict[str, Any]:
    return {
        "id": p.pk,
        "number": p.number,
        "version": p.version,
        "status": p.status,
        "display_status": presentation.display_status(p),
        "patient_id": p.patient_id,
        "patient_name": p.patient.legal_name,
        "doctor_name": p.practitioner.legal_name,
        "hospital_id": p.hospital_id,
        "hospital": str(p.hospital),
        "created_at": p.created_at,
        "signed_at": p.signed_at,
        "valid_until": p.valid_until,
    }


def prescription_out(
    request: HttpRequest, p: Prescription, findings: list[rules.Finding] | None = None
) -> PrescriptionOut:
    items = presentation.live_items(p)
    rx_items, otc_items = presentation.split_items(items)
    role = getattr(p, "viewer_role", "doctor")
    shown_findings = (
        [finding_out(r) for r in presentation.finding_rows(p, findings)] if role in ("doctor", "pharmacist") else []
    )
    return PrescriptionOut(
        **summary_fields(p),
        consultation_id=p.consultation_id,
        doctor_licence=p.practitioner.licence_number,
        supply_kind=p.supply_kind,
        supply_reason=p.supply_reason,
        valid_days=p.valid_days,
        patient_weight_kg=p.patient_weight_kg,
        diagnoses=list(p.diagnosis_codes),
        notes=p.notes,
        replaces_id=p.replaces_id,
        amendment_reason=p.amendment_reason,
        content_hash=p.canonical_hash,
        key_id=p.signing_key.key_id if p.signing_key_id and p.signing_key else None,
        dispensed_at=p.dispensed_at,
        notice_confirmed_at=p.notice_confirmed_at,
        prescription_items=[item_out(i) for i in rx_items],
        otc_items=[item_out(i) for i in otc_items],
        reviews=[review_out(r) for r in p.reviews.select_related("pharmacist").order_by("reviewed_at", "pk")],
        findings=shown_findings,
        verification_url=presentation.verification_url(request, p) if p.signature else None,
    )


def _reload(prescription_id: int, role: str = "doctor") -> Prescription:
    p = Prescription.objects.select_related("patient", "practitioner", "hospital", "signing_key").get(
        pk=prescription_id
    )
    p.viewer_role = role  # type: ignore[attr-defined]
    return p


def draft_out(request: HttpRequest, result: actions.Draft) -> DraftOut:
    p = _reload(result.prescription.pk)
    rows = presentation.finding_rows(p, result.findings)
    return DraftOut(
        prescription=prescription_out(request, p, result.findings),
        findings=[finding_out(r) for r in rows],
        may_sign=p.items.exists() and not rules.blocking(result.findings),
    )


# --- the catalogue ------------------------------------------------------------------------------
@router.get("/drugs", response=list[DrugOut], auth=django_auth, summary="Search the drug catalogue")
def search_drugs(request: HttpRequest, filters: Query[DrugSearchIn]) -> list[DrugOut]:
    return [drug_out(d) for d in presentation.search_drugs(filters.q, limit=filters.limit)]


# --- the doctor ---------------------------------------------------------------------------------
@router.post("/prescriptions", response={200: PrescriptionOut, 201: PrescriptionOut}, auth=django_auth, tags=["doctor"])
def create(
    request: HttpRequest, payload: CreateIn, idempotency_key: str | None = Header(None, alias="Idempotency-Key")
) -> Status:
    """A draft from a follow-up consultation with a signed diagnosis (R1), by its own doctor (R8). With an
    Idempotency-Key, a retry returns the draft the first request made (200) instead of a second one."""
    data = payload.dict()
    result = actions.create_prescription_once(
        authenticated_user(request), data.pop("consultation_id"), idempotency_key=idempotency_key, **data
    )
    return Status(201 if result.created else 200, prescription_out(request, _reload(result.prescription.pk)))


@router.get("/prescriptions/mine", response=list[SummaryOut], auth=django_auth, summary="The patient's side")
def mine(request: HttpRequest) -> list[SummaryOut]:
    rows = access.prescriptions_for_patient_side(authenticated_user(request)).order_by("-signed_at", "-pk")[:200]
    return [SummaryOut(**summary_fields(p)) for p in rows]


@router.get("/doctor/prescriptions", response=list[SummaryOut], auth=django_auth, tags=["doctor"])
def written(request: HttpRequest) -> list[SummaryOut]:
    """The doctor's own prescriptions (MFA, R6)."""
    user = authenticated_user(request)
    consultation_access.acting_doctor(user)
    rows = (
        access.prescriptions_of_doctor(user)
        .select_related("patient", "practitioner", "hospital")
        .order_by("-created_at", "-pk")[:200]
    )
    return [SummaryOut(**summary_fields(p)) for p in rows]


@router.patch("/prescriptions/{int:prescription_id}", response=DraftOut, auth=django_auth, tags=["doctor"])
def update(request: HttpRequest, prescription_id: int, payload: UpdateIn) -> DraftOut:
    """Change the draft's head (kind of supply, validity, weight, notes); returns the findings."""
    result = actions.update_draft(authenticated_user(request), prescription_id, **payload.dict())
    return draft_out(request, result)


@router.put("/prescriptions/{int:prescription_id}/items", response=DraftOut, auth=django_auth, tags=["doctor"])
def set_items(request: HttpRequest, prescription_id: int, payload: ItemsIn) -> DraftOut:
    """Replace the draft's items; the findings of every rule come back at once."""
    inputs = [ItemInput(**item.dict()) for item in payload.items]
    return draft_out(request, actions.set_items(authenticated_user(request), prescription_id, inputs))


@router.post("/prescriptions/{int:prescription_id}/overrides", response=DraftOut, auth=django_auth, tags=["doctor"])
def override(request: HttpRequest, prescription_id: int, payload: OverrideIn) -> DraftOut:
    """Go on despite a warning, with a reason. A refusal cannot be overridden."""
    result = actions.override_warning(
        authenticated_user(request), prescription_id, payload.rule, payload.subject, payload.reason
    )
    return draft_out(request, result)


@router.post("/prescriptions/{int:prescription_id}/sign", response=PrescriptionOut, auth=django_auth, tags=["doctor"])
def sign(request: HttpRequest, prescription_id: int) -> PrescriptionOut:
    """Sign (R10) in the doctor's own MFA session; refused (409) while anything blocks."""
    prescription = actions.sign_prescription(authenticated_user(request), prescription_id)
    return prescription_out(request, _reload(prescription.pk))


@router.post(
    "/prescriptions/{int:prescription_id}/amend", response={201: PrescriptionOut}, auth=django_auth, tags=["doctor"]
)
def amend(request: HttpRequest, prescription_id: int, payload: ReasonIn) -> Status:
    """A new draft version with the same items; signing it replaces the old one."""
    new = actions.amend_prescription(authenticated_user(request), prescription_id, payload.reason)
    return Status(201, prescription_out(request, _reload(new.pk)))


@router.post("/prescriptions/{int:prescription_id}/cancel", response=PrescriptionOut, auth=django_auth, tags=["doctor"])
def cancel(request: HttpRequest, prescription_id: int, payload: ReasonIn) -> PrescriptionOut:
    prescription = actions.cancel_prescription(authenticated_user(request), prescription_id, payload.reason)
    return prescription_out(request, _reload(prescription.pk))


# --- everyone who may see it ---------------------------------------------------------------------
@router.get("/prescriptions/{int:prescription_id}", response=PrescriptionOut, auth=django_auth)
def detail(request: HttpRequest, prescription_id: int) -> PrescriptionOut:
    """The prescription (audited): the patient's side, its doctor, or a pharmacist of its hospital."""
    prescription = access.access_prescription(authenticated_user(request), prescription_id)
    return prescription_out(request, prescription)


@router.post("/prescriptions/{int:prescription_id}/notice", response=PrescriptionOut, auth=django_auth)
def confirm_notice(request: HttpRequest, prescription_id: int) -> PrescriptionOut:
    """The patient's side confirms that prescription drugs are bought and used on a prescription
    under a pharmacist's guidance (R16)."""
    prescription = actions.confirm_notice(authenticated_user(request), prescription_id)
    return prescription_out(request, _reload(prescription.pk, "patient"))


# --- the pharmacist -----------------------------------------------------------------------------
@router.get("/pharmacist/review-queue", response=list[SummaryOut], auth=django_auth, tags=["pharmacist"])
def review_queue(request: HttpRequest) -> list[SummaryOut]:
    user = authenticated_user(request)
    presentation.ensure_pharmacist(user)
    return [SummaryOut(**summary_fields(p)) for p in access.review_queue(user)[:200]]


@router.post(
    "/prescriptions/{int:prescription_id}/review", response=ReviewResultOut, auth=django_auth, tags=["pharmacist"]
)
def review(request: HttpRequest, prescription_id: int, payload: ReviewIn) -> ReviewResultOut:
    """Approve, reject (with reason codes) or send back with a question (R10). Never one's own
    prescription, never an expired one, never one whose signature no longer verifies."""
    done = actions.review_prescription(
        authenticated_user(request),
        prescription_id,
        payload.decision,
        reason_codes=payload.reason_codes,
        note=payload.note,
    )
    return ReviewResultOut(prescription_id=prescription_id, status=done.prescription.status, review=review_out(done))


# --- public verification ------------------------------------------------------------------------
def check_verify_rate(request: HttpRequest) -> None:
    """Verifying one prescription is public; walking through every id is not (R12, R23)."""
    retry_after = ratelimit.hit(
        "rx-verify-address", client_address(request) or "unknown", limit=VERIFY_RATE_PER_ADDRESS, window_seconds=60
    )
    if retry_after is not None:
        raise DomainError(RATE_LIMITED, retry_after=retry_after)


@router.get(
    "/prescriptions/{int:prescription_id}/verify",
    response=VerifyOut,
    url_name="verify_prescription",
    tags=["verification"],
    summary="Verify a prescription's signature (public; no patient data, no drugs)",
)
def verify(request: HttpRequest, prescription_id: int, hash: str = "") -> VerifyOut:
    check_verify_rate(request)
    prescription = (
        Prescription.objects.select_related("practitioner", "hospital", "signing_key")
        .filter(pk=prescription_id)
        .first()
    )
    ensure(prescription is not None, errors.PRESCRIPTION_NOT_FOUND)
    assert prescription is not None
    result = presentation.public_verification(prescription, hash[:200])
    return VerifyOut(**result.__dict__)


# --- the regulator (R12) ------------------------------------------------------------------------
@router.get("/regulator/prescribing-statistics", response=list[StatisticsOut], auth=django_auth, tags=["regulator"])
def statistics(request: HttpRequest) -> list[StatisticsOut]:
    """Per-doctor prescribing counts: the regulator only (R12), audited."""
    rows = actions.prescribing_statistics(authenticated_user(request))
    hospitals = {o.pk: str(o) for o in Organization.objects.filter(pk__in={r["hospital_id"] for r in rows})}
    return [
        StatisticsOut(
            practitioner_id=r["practitioner_id"],
            doctor_name=r["practitioner__legal_name"],
            hospital_id=r["hospital_id"],
            hospital=hospitals.get(r["hospital_id"], ""),
            prescriptions=r["prescriptions"],
        )
        for r in rows
    ]
