"""Back office for the drug catalogue (editable) and for prescriptions (read-only, never deleted).

The catalogue is edited here or imported with ``nethospital import_drugs``; both apply the same
identifier checks (``catalogue.gtin_problem``, ``catalogue.china_prefix_problem``). Drugs and packs
are never deleted: prescriptions and traceability events refer to them, so a drug leaves the
catalogue by clearing "in the catalogue" (``is_active``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from nethospital.core import audit
from nethospital.prescriptions.catalogue import china_prefix_problem, gtin_problem
from nethospital.prescriptions.choices import AntibioticTier, ControlClass
from nethospital.prescriptions.models import (
    Drug,
    DrugClass,
    DrugPack,
    Ingredient,
    Interaction,
    PharmacistReview,
    Prescription,
    PrescriptionItem,
    RuleOverride,
)


# --- the catalogue -----------------------------------------------------------------------------------
@admin.register(DrugClass)
class DrugClassAdmin(admin.ModelAdmin):
    list_display = ("code", "name_en", "name_zh")
    search_fields = ("code", "name_en", "name_zh")


@admin.register(Ingredient)
class IngredientAdmin(admin.ModelAdmin):
    list_display = ("code", "name_en", "name_zh", "allergy_class")
    list_filter = ("allergy_class",)
    search_fields = ("code", "name_en", "name_zh")
    autocomplete_fields = ("allergy_class",)


class DrugPackForm(forms.ModelForm):
    class Meta:
        model = DrugPack
        fields = ("gtin", "china_prefix", "pack_size")

    def clean_gtin(self) -> str:
        value = self.cleaned_data["gtin"].strip()
        problem = gtin_problem(value)
        if problem:
            raise ValidationError(problem)
        return value

    def clean_china_prefix(self) -> str:
        value = self.cleaned_data["china_prefix"].strip()
        problem = china_prefix_problem(value)
        if problem:
            raise ValidationError(problem)
        return value


class DrugPackInline(admin.TabularInline):
    model = DrugPack
    form = DrugPackForm
    extra = 0

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a GTIN that may have been scanned stays (R19)


class DrugForm(forms.ModelForm):
    class Meta:
        model = Drug
        fields = (
            "code",
            "is_active",
            "generic_name_zh",
            "generic_name_en",
            "brand",
            "manufacturer",
            "dosage_form",
            "route",
            "strength",
            "strength_value",
            "strength_unit",
            "unit",
            "pack_size",
            "is_prescription",
            "control_class",
            "antibiotic_tier",
            "max_daily_dose",
            "paediatric_use",
            "therapeutic_class",
            "ingredients",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("is_prescription") is False:
            if data.get("control_class", ControlClass.NONE) != ControlClass.NONE:
                self.add_error("is_prescription", "A specially controlled drug cannot be non-prescription.")
            if data.get("antibiotic_tier", AntibioticTier.NONE) != AntibioticTier.NONE:
                self.add_error("is_prescription", "An antibacterial cannot be non-prescription.")
        return data


@admin.register(Drug)
class DrugAdmin(admin.ModelAdmin):
    form = DrugForm
    list_display = (
        "code",
        "generic_name_zh",
        "generic_name_en",
        "strength",
        "dosage_form",
        "brand",
        "is_prescription",
        "control_class",
        "antibiotic_tier",
        "is_active",
    )
    list_filter = (
        "is_active",
        "is_prescription",
        "control_class",
        "antibiotic_tier",
        "dosage_form",
        "paediatric_use",
        "therapeutic_class",
    )
    search_fields = (
        "code",
        "generic_name_zh",
        "generic_name_en",
        "brand",
        "manufacturer",
        "packs__gtin",
        "packs__china_prefix",
    )
    autocomplete_fields = ("therapeutic_class",)
    filter_horizontal = ("ingredients",)
    inlines = (DrugPackInline,)
    fieldsets = (
        (None, {"fields": ("code", "is_active", "generic_name_zh", "generic_name_en", "brand", "manufacturer")}),
        (
            "Form and strength",
            {"fields": ("dosage_form", "route", "strength", "strength_value", "strength_unit", "unit", "pack_size")},
        ),
        (
            "Rules",
            {
                "fields": (
                    "is_prescription",
                    "control_class",
                    "antibiotic_tier",
                    "max_daily_dose",
                    "paediatric_use",
                    "therapeutic_class",
                    "ingredients",
                )
            },
        ),
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # prescriptions refer to it: take it out with "in the catalogue" instead


class InteractionForm(forms.ModelForm):
    class Meta:
        model = Interaction
        fields = ("ingredient_a", "ingredient_b", "severity", "effect_en", "effect_zh")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        a, b = data.get("ingredient_a"), data.get("ingredient_b")
        if a is not None and b is not None:
            if a.pk == b.pk:
                raise ValidationError("An ingredient does not interact with itself.")
            if a.code > b.code:  # one row per pair, stored with a.code < b.code
                data["ingredient_a"], data["ingredient_b"] = b, a
        return data


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    form = InteractionForm
    list_display = ("ingredient_a", "ingredient_b", "severity", "effect_en")
    list_filter = ("severity",)
    search_fields = (
        "ingredient_a__code",
        "ingredient_a__name_en",
        "ingredient_a__name_zh",
        "ingredient_b__code",
        "ingredient_b__name_en",
        "ingredient_b__name_zh",
    )
    autocomplete_fields = ("ingredient_a", "ingredient_b")


# --- prescriptions: look, never change or delete (R10, R21) -------------------------------------------
class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PrescriptionItemInline(ReadOnlyInline):
    model = PrescriptionItem
    fields = ("position", "drug", "dose", "frequency", "route", "days", "quantity", "notes")


class RuleOverrideInline(ReadOnlyInline):
    model = RuleOverride
    fields = ("rule", "subject", "reason", "by", "at")


class PharmacistReviewInline(ReadOnlyInline):
    model = PharmacistReview
    fields = ("decision", "reason_codes", "note", "pharmacist", "reviewed_at")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Prescription)
class PrescriptionAdmin(ReadOnlyAdmin):
    """Opening one shows a patient's health data, so it is audited (R23)."""

    list_display = ("number", "version", "status", "supply_kind", "hospital", "practitioner", "signed_at", "created_at")
    list_filter = ("status", "supply_kind")
    search_fields = ("number",)
    inlines = (PrescriptionItemInline, RuleOverrideInline, PharmacistReviewInline)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        prescription = Prescription.objects.filter(pk=int(object_id)).first() if object_id.isdigit() else None
        if prescription is not None:
            audit.record(
                request.user,
                "prescription.view",
                prescription,
                patient=prescription.patient_id,
                hospital=prescription.hospital_id,
                detail={"via": "admin"},
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(PharmacistReview)
class PharmacistReviewAdmin(ReadOnlyAdmin):
    list_display = ("prescription", "decision", "pharmacist", "reviewed_at")
    list_filter = ("decision",)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        review = (
            PharmacistReview.objects.select_related("prescription").filter(pk=int(object_id)).first()
            if object_id.isdigit()
            else None
        )
        if review is not None:
            audit.record(
                request.user,
                "prescription.review.view",
                review,
                patient=review.prescription.patient_id,
                hospital=review.prescription.hospital_id,
                detail={"via": "admin"},
            )
        return super().change_view(request, object_id, form_url, extra_context)
