"""Recalls: a regulator withdraws a batch (R20, R22).

``recall_batch`` blocks dispensing at once (``anomalies.check_dispensable`` reads the ``Recall`` table
on every scan), tells the pharmacies that hold boxes of the batch, and tells the patients who
received boxes of it (and the family members who act for them).

Who received which box is the pharmacy's record, not ours. The pharmacy app provides it through
one function named by the setting ``NETHOSPITAL_TRACE_RECIPIENTS`` (a dotted path)::

    def patients_for_packs(identifiers: Sequence[str]) -> Mapping[str, Patient]:
        '''For each canonical pack identifier that was dispensed to a patient, that patient.'''

Identifiers without a recipient are left out. The default is the pharmacy app's
``nethospital.pharmacy.traceability.patients_for_packs`` (its dispensing records); if the path does
not import, nobody is found and the recall still blocks dispensing and tells the pharmacies. If the
function fails during a recall, the recall is still made; the failure is logged and marked on its
audit entry (``patientLookupFailed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.choices import Role
from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.core import audit, clock
from nethospital.core.errors import DomainError, ErrorCode, ensure
from nethospital.core.notify import notify
from nethospital.traceability.access import require_regulator
from nethospital.traceability.choices import PackStatus
from nethospital.traceability.models import Pack, Recall
from nethospital.traceability.state import gs1_check_digit

logger = logging.getLogger(__name__)

DEFAULT_RECIPIENTS = "nethospital.pharmacy.traceability.patients_for_packs"

GTIN_INVALID = ErrorCode(
    "recall_gtin_invalid", _("Enter the product's GTIN: 8, 12, 13 or 14 digits with a valid check digit.")
)
BATCH_REQUIRED = ErrorCode("recall_batch_required", _("Enter the batch (lot) number, at most 20 characters."))
REASON_REQUIRED = ErrorCode("recall_reason_required", _("Give the reason for the recall."))
ALREADY_RECALLED = ErrorCode("already_recalled", _("This batch is already recalled."), 409)


def normalize_gtin(text: str) -> str | None:
    """A GTIN-8/12/13/14 as 14 digits, or None when it is not one (wrong length or check digit)."""
    digits = (text or "").strip()
    if not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        return None
    gtin = digits.zfill(14)
    return gtin if gs1_check_digit(gtin[:-1]) == gtin[-1] else None


def _resolver() -> Callable[[Sequence[str]], Mapping[str, Patient]] | None:
    path = settings.NETHOSPITAL_TRACE_RECIPIENTS or DEFAULT_RECIPIENTS
    try:
        return import_string(path)  # type: ignore[no-any-return]
    except ImportError:
        return None


def recipients_of(identifiers: Sequence[str]) -> dict[str, Patient]:
    """Which patient each dispensed pack went to, as far as the pharmacy's record says."""
    resolver = _resolver()
    if resolver is None or not identifiers:
        return {}
    return dict(resolver(list(identifiers)))


def patients_who_received(gtin: str, batch: str) -> list[Patient]:
    """The patients who received boxes of this batch (through the pharmacy's dispensing record)."""
    identifiers = list(
        Pack.objects.filter(gtin=gtin, batch=batch, dispensed_count__gt=0).values_list("identifier", flat=True)
    )
    unique: dict[int, Patient] = {}
    for patient in recipients_of(identifiers).values():
        unique.setdefault(patient.pk, patient)
    return list(unique.values())


def pharmacies_holding(gtin: str, batch: str) -> list[int]:
    """Organisations with boxes of the batch in stock (received, not yet dispensed)."""
    return sorted(
        set(
            Pack.objects.filter(gtin=gtin, batch=batch, status=PackStatus.RECEIVED, owner__isnull=False).values_list(
                "owner_id", flat=True
            )
        )
    )


def _pharmacy_people(organization_ids: Sequence[int]) -> list[User]:
    grants = RoleGrant.objects.filter(
        organization_id__in=organization_ids,
        role__in=[Role.PHARMACIST, Role.PHARMACY_STAFF],
        revoked_at__isnull=True,
        user__is_active=True,
    ).select_related("user")
    return list({grant.user_id: grant.user for grant in grants}.values())


def _people_acting_for(patient: Patient) -> list[User]:
    people: dict[int, User] = {}
    if patient.account_id is not None and patient.account is not None:
        people[patient.account_id] = patient.account
    for link in FamilyLink.objects.filter(patient=patient, ended_at__isnull=True).select_related("holder"):
        people.setdefault(link.holder_id, link.holder)
    return [p for p in people.values() if p.is_active]


@transaction.atomic
def recall_batch(regulator: User, gtin: str, batch: str, reason: str) -> Recall:
    """Recall one batch of one product: dispensing is refused from this moment; pharmacies holding it
    and patients who received it are told after commit. Audited, including each patient told."""
    require_regulator(regulator)
    normalized = normalize_gtin(gtin)
    ensure(normalized is not None, GTIN_INVALID, field="gtin")
    assert normalized is not None
    batch = (batch or "").strip()
    ensure(0 < len(batch) <= 20, BATCH_REQUIRED, field="batch")
    reason = (reason or "").strip()
    ensure(reason, REASON_REQUIRED, field="reason")
    try:
        with transaction.atomic():
            recall = Recall.objects.create(
                gtin=normalized,
                batch=batch,
                product_code=normalized,
                reason=reason[:300],
                recalled_by=regulator,
                recalled_at=clock.now(),
            )
    except IntegrityError:
        raise DomainError(ALREADY_RECALLED, field="batch") from None
    pharmacies = pharmacies_holding(normalized, batch)
    identifiers = list(
        Pack.objects.filter(gtin=normalized, batch=batch, dispensed_count__gt=0).values_list("identifier", flat=True)
    )
    lookup_failed = False
    try:
        recipients = recipients_of(identifiers)
    except Exception:  # the recall itself must not fail because the pharmacy's record cannot be read
        logger.exception("recall %s: the recipients of %s boxes could not be looked up", recall.pk, len(identifiers))
        recipients, lookup_failed = {}, True
    by_patient: dict[int, tuple[Patient, list[str]]] = {}
    for identifier, patient in recipients.items():
        by_patient.setdefault(patient.pk, (patient, []))[1].append(identifier)
    for patient, packs in by_patient.values():
        # Looking up who received a box is a read of patient data (R23): each one is on the trail.
        audit.record(
            regulator,
            "traceability.recall.notify_patient",
            recall,
            patient=patient,
            detail={"packs": len(packs)},
        )
    audit.record(
        regulator,
        "traceability.recall",
        recall,
        detail={
            "gtin": normalized,
            "batch": batch,
            "pharmacies": len(pharmacies),
            "patients": len(by_patient),
            **({"patientLookupFailed": True} if lookup_failed else {}),
        },
    )
    recall_id = recall.pk
    patient_packs = [(p.pk, packs) for p, packs in by_patient.values()]
    transaction.on_commit(lambda: _tell_everyone(recall_id, pharmacies, patient_packs))
    return recall


def _drug_name(recall: Recall) -> Callable[[], str]:
    from nethospital.prescriptions.models import DrugPack

    drug_pack = DrugPack.objects.select_related("drug").filter(gtin=recall.gtin).first()

    def name() -> str:
        # Evaluated inside notify's language override: the drug's name in the reader's language.
        from django.utils.translation import get_language

        if drug_pack is None:
            return recall.gtin
        drug = drug_pack.drug
        generic = drug.generic_name_zh if (get_language() or "").startswith("zh") else drug.generic_name_en
        return f"{generic} {drug.strength}"

    return name


def _tell_everyone(recall_id: int, pharmacy_ids: Sequence[int], patient_packs: Sequence[tuple[int, list[str]]]) -> None:
    from django.urls import reverse

    recall = Recall.objects.get(pk=recall_id)
    params: dict[str, Any] = {"drug": _drug_name(recall), "batch": recall.batch, "reason": recall.reason}
    for user in _pharmacy_people(pharmacy_ids):
        notify(
            user,
            "traceability.recall.pharmacy",
            _("Recall: %(drug)s, batch %(batch)s"),
            _(
                "The regulator has recalled batch %(batch)s of %(drug)s (%(reason)s). Dispensing it is blocked. "
                "Take the boxes you hold off the shelf and keep them for return."
            ),
            link=reverse("traceability:recalls"),
            params=params,
        )
    patients = Patient.objects.in_bulk([pk for pk, _packs in patient_packs])
    for patient_id, packs in patient_packs:
        patient = patients.get(patient_id)
        if patient is None:
            continue
        link = reverse("traceability:journey", kwargs={"identifier": packs[0]}) if packs else ""
        for user in _people_acting_for(patient):
            notify(
                user,
                "traceability.recall.patient",
                _("Medicine recall: %(drug)s, batch %(batch)s"),
                _(
                    "A box of %(drug)s you received (batch %(batch)s) has been recalled by the regulator "
                    "(%(reason)s). Stop using it and contact your pharmacy or doctor for a replacement."
                ),
                link=link,
                params=params,
            )
