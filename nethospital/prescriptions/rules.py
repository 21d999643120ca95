"""The prescribing rules (R11, R13, R17 and clinical safety), in one place.

``check`` looks at a prescription and its items and returns findings. A *refusal* blocks signing and
cannot be overridden; a *warning* blocks signing until the doctor records a reason to go on. The same
function runs on every change (the doctor sees the findings at once) and again at signing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from nethospital.consultations.models import ICD10Code
from nethospital.core import clock
from nethospital.prescriptions.choices import DOSES_PER_DAY, MAX_DAYS, InteractionSeverity, PaediatricUse, SupplyKind
from nethospital.prescriptions.models import Drug, Interaction, Prescription, PrescriptionItem
from nethospital.records.models import Allergy

REFUSAL = "refusal"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    subject: str  # a stable key of what it is about: "item:2", "pair:1-3", "prescription"
    message: str
    overridden: bool = False

    @property
    def blocks(self) -> bool:
        return self.severity == REFUSAL or not self.overridden


def doses_per_day(frequency: str) -> float:
    return float(DOSES_PER_DAY.get(frequency, 1))  # type: ignore[call-overload]


def needed_packs(drug: Drug, dose: Decimal, frequency: str, days: int) -> int:
    """Packs needed for ``days`` of supply: dose units per day × days, rounded up to whole packs."""
    units = float(dose) * doses_per_day(frequency) * days
    return max(1, math.ceil(units / drug.pack_size - 1e-9))


def _names(*values: str) -> set[str]:
    return {v.strip().lower() for v in values if v and v.strip()}


def _matches(allergy: str, names: set[str]) -> bool:
    allergy = allergy.strip().lower()
    return any(allergy == n or (len(allergy) >= 2 and allergy in n) or (len(n) >= 3 and n in allergy) for n in names)


def is_child(prescription: Prescription) -> bool:
    return prescription.patient.age_on(clock.today()) < settings.NETHOSPITAL_CHILD_AGE


def _label(item: PrescriptionItem) -> str:
    return f"{item.drug.generic_name_zh} / {item.drug.generic_name_en}"


def check(prescription: Prescription, items: list[PrescriptionItem] | None = None) -> list[Finding]:
    if items is None:
        items = list(
            prescription.items.select_related("drug", "drug__therapeutic_class").prefetch_related(
                "drug__ingredients__allergy_class"
            )
        )
    overrides = {(o.rule, o.subject) for o in prescription.overrides.all()} if prescription.pk else set()
    findings: list[Finding] = []

    def add(rule: str, severity: str, subject: str, message: str) -> None:
        findings.append(Finding(rule, severity, subject, message, (rule, subject) in overrides))

    supply = prescription.supply_kind
    max_days = MAX_DAYS[SupplyKind(supply)]
    chronic_codes = set(
        ICD10Code.objects.filter(code__in=prescription.diagnosis_codes, is_chronic=True).values_list("code", flat=True)
    )
    if supply in (SupplyKind.CHRONIC, SupplyKind.LONG):
        if not prescription.supply_reason.strip():
            add("supply_reason", REFUSAL, "prescription", str(_("A longer supply needs a recorded reason (R13).")))
        if not chronic_codes:
            add(
                "supply_not_chronic",
                REFUSAL,
                "prescription",
                str(_("A longer supply is only for a chronic disease diagnosed in this consultation (R13).")),
            )
    child = is_child(prescription)
    if child and prescription.patient_weight_kg is None:
        add("child_weight", REFUSAL, "prescription", str(_("A prescription for a child needs the child's weight.")))
    allergies = list(
        Allergy.objects.filter(patient_id=prescription.patient_id, is_refuted=False).values_list("substance", flat=True)
    )
    ingredient_items: dict[int, list[int]] = defaultdict(list)
    class_items: dict[int, list[int]] = defaultdict(list)
    ingredients_of: dict[int, list] = {}
    for item in items:
        drug = item.drug
        subject = f"item:{item.position}"
        label = _label(item)
        if drug.is_controlled:
            add(
                "controlled",
                REFUSAL,
                subject,
                str(
                    _("%(drug)s is a %(klass)s drug and is never prescribed online (R11/R17).")
                    % {"drug": label, "klass": drug.get_control_class_display()}
                ),
            )
        if not drug.is_active:
            add("inactive", REFUSAL, subject, str(_("%(drug)s is no longer in the catalogue.") % {"drug": label}))
        if item.days > max_days:
            add(
                "days_of_supply",
                REFUSAL,
                subject,
                str(
                    _("%(drug)s: %(days)s days of supply; at most %(max)s for this kind of prescription (R13).")
                    % {"drug": label, "days": item.days, "max": max_days}
                ),
            )
        needed = needed_packs(drug, item.dose, item.frequency, item.days)
        if item.quantity > needed:
            add(
                "quantity",
                REFUSAL,
                subject,
                str(
                    _("%(drug)s: %(qty)s packs is more than the %(needed)s needed for %(days)s days.")
                    % {"drug": label, "qty": item.quantity, "needed": needed, "days": item.days}
                ),
            )
        if drug.max_daily_dose is not None:
            daily = item.dose * drug.strength_value * Decimal(str(doses_per_day(item.frequency)))
            if daily > drug.max_daily_dose:
                add(
                    "max_daily_dose",
                    REFUSAL,
                    subject,
                    str(
                        _("%(drug)s: %(daily)s %(unit)s a day is over the maximum of %(max)s %(unit)s.")
                        % {
                            "drug": label,
                            "daily": _number(daily),
                            "unit": drug.strength_unit,
                            "max": _number(drug.max_daily_dose),
                        }
                    ),
                )
        if child:
            if drug.paediatric_use == PaediatricUse.NOT_SUITABLE:
                add(
                    "paediatric",
                    REFUSAL,
                    subject,
                    str(_("%(drug)s is not suitable for children.") % {"drug": label}),
                )
            elif drug.paediatric_use == PaediatricUse.CAUTION:
                add(
                    "paediatric_caution",
                    WARNING,
                    subject,
                    str(_("%(drug)s: use in children with caution; check the dose for the weight.") % {"drug": label}),
                )
        ingredients = list(drug.ingredients.all())
        ingredients_of[item.position] = ingredients
        for ingredient in ingredients:
            ingredient_items[ingredient.pk].append(item.position)
            names = _names(ingredient.name_en, ingredient.name_zh)
            if ingredient.allergy_class is not None:
                names |= _names(ingredient.allergy_class.name_en, ingredient.allergy_class.name_zh)
            for allergy in allergies:
                if _matches(allergy, names):
                    add(
                        "allergy",
                        WARNING,
                        subject,
                        str(
                            _("Allergy: the patient is allergic to %(allergy)s, and %(drug)s contains %(ingredient)s.")
                            % {
                                "allergy": allergy,
                                "drug": label,
                                "ingredient": _local(ingredient.name_zh, ingredient.name_en),
                            }
                        ),
                    )
                    break
        class_items[drug.therapeutic_class_id].append(item.position)

    for positions in ingredient_items.values():
        if len(positions) > 1:
            add(
                "duplicate_ingredient",
                WARNING,
                "items:" + "-".join(map(str, positions)),
                str(_("The same ingredient is prescribed twice (items %(items)s).") % {"items": _join(positions)}),
            )
    for positions in class_items.values():
        if len(positions) > 1:
            add(
                "duplicate_class",
                WARNING,
                "class:" + "-".join(map(str, positions)),
                str(_("Two drugs of the same therapeutic class (items %(items)s).") % {"items": _join(positions)}),
            )
    _check_interactions(items, ingredients_of, add)
    return findings


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _local(zh: str, en: str) -> str:
    """The name in the language of the request (Chinese or English)."""
    return zh if (translation.get_language() or "zh").startswith("zh") else (en or zh)


def _join(positions: list[int]) -> str:
    return ", ".join(str(p + 1) for p in positions)


def _check_interactions(items: list[PrescriptionItem], ingredients_of: dict[int, list], add) -> None:  # type: ignore[no-untyped-def]
    ids = {i.pk for ingredients in ingredients_of.values() for i in ingredients}
    if len(ids) < 2:
        return
    known = {
        frozenset((x.ingredient_a_id, x.ingredient_b_id)): x
        for x in Interaction.objects.filter(ingredient_a_id__in=ids, ingredient_b_id__in=ids)
    }
    for i, first in enumerate(items):
        for second in items[i + 1 :]:
            for a in ingredients_of[first.position]:
                for b in ingredients_of[second.position]:
                    found = known.get(frozenset((a.pk, b.pk)))
                    if found is None:
                        continue
                    contraindicated = found.severity == InteractionSeverity.CONTRAINDICATED
                    add(
                        "interaction",
                        REFUSAL if contraindicated else WARNING,
                        f"pair:{first.position}-{second.position}",
                        str(
                            _("Interaction %(a)s + %(b)s: %(effect)s")
                            % {
                                "a": _local(a.name_zh, a.name_en),
                                "b": _local(b.name_zh, b.name_en),
                                "effect": _local(found.effect_zh, found.effect_en),
                            }
                        ),
                    )


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocks]
