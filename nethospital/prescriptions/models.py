"""The drug catalogue and e-prescriptions (R8-R18).

A prescription is written from a completed follow-up consultation (R1), checked by the rules in
``rules.py`` on every change and again at signing, signed with the doctor's Ed25519 key over a
canonical form (R10), and reviewed by a pharmacist before anything is dispensed (R9). Signed versions
never change: an amendment is a new version that replaces the old one. Nothing is deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient
from nethospital.consultations.models import Consultation
from nethospital.directory.models import Organization, Practitioner
from nethospital.prescriptions.choices import (
    AntibioticTier,
    ControlClass,
    DosageForm,
    Frequency,
    InteractionSeverity,
    PaediatricUse,
    PrescriptionStatus,
    ReviewDecision,
    Route,
    SupplyKind,
)


class DrugClass(models.Model):
    """A therapeutic or allergy class ("penicillins", "statins", "ACE inhibitors")."""

    code = models.SlugField(max_length=60, unique=True)
    name_en = models.CharField(max_length=100)
    name_zh = models.CharField(max_length=60)

    class Meta:
        verbose_name = _("drug class")
        verbose_name_plural = _("drug classes")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name_en


class Ingredient(models.Model):
    """An active ingredient, with the class it shares allergies with (amoxicillin → penicillins)."""

    code = models.SlugField(max_length=60, unique=True)
    name_en = models.CharField(max_length=100)
    name_zh = models.CharField(max_length=60)
    allergy_class = models.ForeignKey(DrugClass, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("ingredient")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name_en


class Drug(models.Model):
    """A product at one strength and form, as prescribed."""

    code = models.SlugField(max_length=80, unique=True)
    generic_name_zh = models.CharField(_("generic name (Chinese)"), max_length=80)
    generic_name_en = models.CharField(_("generic name (English)"), max_length=120)
    brand = models.CharField(_("brand"), max_length=80, blank=True)
    manufacturer = models.CharField(_("manufacturer"), max_length=120, blank=True)
    dosage_form = models.CharField(_("dosage form"), max_length=20, choices=DosageForm.choices)
    strength = models.CharField(_("strength"), max_length=40)  # as printed, e.g. "5 mg", "100 µg/dose"
    strength_value = models.DecimalField(_("strength (per unit)"), max_digits=10, decimal_places=3)
    strength_unit = models.CharField(_("strength unit"), max_length=10)  # mg, g, µg, IU, ml
    unit = models.CharField(_("dose unit"), max_length=20)  # tablet, capsule, puff, ml, sachet
    pack_size = models.PositiveIntegerField(_("units per pack"))
    route = models.CharField(_("route"), max_length=12, choices=Route.choices)
    is_prescription = models.BooleanField(_("prescription only"), default=True)
    control_class = models.CharField(
        _("special control"), max_length=20, choices=ControlClass.choices, default=ControlClass.NONE
    )
    antibiotic_tier = models.CharField(
        _("antibiotic tier"), max_length=12, choices=AntibioticTier.choices, default=AntibioticTier.NONE
    )
    ingredients = models.ManyToManyField(Ingredient, related_name="drugs")
    therapeutic_class = models.ForeignKey(DrugClass, on_delete=models.PROTECT, related_name="drugs")
    max_daily_dose = models.DecimalField(
        _("maximum daily dose (in the strength unit)"), max_digits=10, decimal_places=3, null=True, blank=True
    )
    paediatric_use = models.CharField(
        _("use in children"), max_length=12, choices=PaediatricUse.choices, default=PaediatricUse.CAUTION
    )
    is_active = models.BooleanField(_("in the catalogue"), default=True)

    class Meta:
        verbose_name = _("drug")
        ordering = ["generic_name_en", "strength_value"]

    def __str__(self) -> str:
        return f"{self.generic_name_en} {self.strength} {self.get_dosage_form_display()}"

    @property
    def is_controlled(self) -> bool:
        return self.control_class != ControlClass.NONE


class DrugPack(models.Model):
    """A sellable pack of a drug: its GTIN and China traceability-code product prefix (R19)."""

    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="packs")
    gtin = models.CharField(_("GTIN"), max_length=14, unique=True)
    china_prefix = models.CharField(_("traceability code prefix"), max_length=7, unique=True)
    pack_size = models.PositiveIntegerField(_("units per pack"))

    class Meta:
        verbose_name = _("drug pack")

    def __str__(self) -> str:
        return f"{self.gtin} ({self.drug})"


class Interaction(models.Model):
    """A known serious interaction between two ingredients (stored once, ``a.code < b.code``)."""

    ingredient_a = models.ForeignKey(Ingredient, on_delete=models.PROTECT, related_name="+")
    ingredient_b = models.ForeignKey(Ingredient, on_delete=models.PROTECT, related_name="+")
    severity = models.CharField(max_length=16, choices=InteractionSeverity.choices)
    effect_en = models.CharField(max_length=200)
    effect_zh = models.CharField(max_length=100)

    class Meta:
        verbose_name = _("interaction")
        constraints = [models.UniqueConstraint(fields=["ingredient_a", "ingredient_b"], name="interaction_pair")]

    def __str__(self) -> str:
        return f"{self.ingredient_a} + {self.ingredient_b}"


class SigningKey(models.Model):
    """A doctor's Ed25519 key. The private key is stored encrypted with the server's key-encryption
    key and is decrypted only inside ``signing.sign`` for the doctor's own MFA-verified session."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="signing_keys")
    key_id = models.CharField(max_length=32, unique=True)
    public_key = models.CharField(max_length=64)  # raw 32 bytes, hex
    private_key_encrypted = models.TextField()
    created_at = models.DateTimeField()
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("signing key")
        constraints = [
            models.UniqueConstraint(fields=["practitioner"], condition=Q(is_active=True), name="one_active_key")
        ]

    def __str__(self) -> str:
        return self.key_id


class Prescription(models.Model):
    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="prescriptions")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="prescriptions")
    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="prescriptions")
    number = models.CharField(_("prescription number"), max_length=24)
    version = models.PositiveSmallIntegerField(default=1)
    replaces = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by")
    amendment_reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=PrescriptionStatus.choices, default=PrescriptionStatus.DRAFT
    )
    supply_kind = models.CharField(
        _("kind of supply"), max_length=10, choices=SupplyKind.choices, default=SupplyKind.NORMAL
    )
    supply_reason = models.CharField(_("reason for a longer supply"), max_length=300, blank=True)
    valid_days = models.PositiveSmallIntegerField(_("valid for (days)"), default=1)
    patient_weight_kg = models.DecimalField(
        _("patient weight (kg)"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    diagnosis_codes = models.JSONField(_("diagnoses"), default=list)
    notes = models.CharField(_("notes"), max_length=500, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The client's name for the request that created this draft: a retry returns this draft.
    idempotency_key = models.CharField(max_length=64, blank=True, editable=False)
    # Signature (R10).
    signed_at = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    canonical_hash = models.CharField(max_length=64, blank=True)
    signature = models.CharField(max_length=128, blank=True)
    # Dispensing (R15): used once.
    dispensed_at = models.DateTimeField(null=True, blank=True)
    # The patient confirmed the prescription-drug notice (R16).
    notice_confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("prescription")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "signed_at"], name="rx_review_queue"),
            models.Index(fields=["patient", "created_at"], name="rx_patient"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["number", "version"], name="rx_number_version"),
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="rx_idempotency",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} v{self.version}"


class LiveManager(models.Manager):  # type: ignore[type-arg]
    """Rows not replaced: a draft's earlier item list and withdrawn overrides stay in the table
    (nothing clinical is hard-deleted) but are left out of every normal query."""

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return super().get_queryset().filter(removed_at__isnull=True)


class PrescriptionItem(models.Model):
    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="items")
    position = models.PositiveSmallIntegerField(default=0)
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="+")
    dose = models.DecimalField(_("dose"), max_digits=8, decimal_places=3)  # in the drug's dose unit
    frequency = models.CharField(_("frequency"), max_length=6, choices=Frequency.choices)
    route = models.CharField(_("route"), max_length=12, choices=Route.choices)
    days = models.PositiveSmallIntegerField(_("days of supply"))
    quantity = models.PositiveIntegerField(_("quantity (packs)"))
    notes = models.CharField(_("notes"), max_length=200, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = LiveManager()
    all_objects = models.Manager()  # noqa: DJ012 - the unfiltered manager, after the default one

    class Meta:
        verbose_name = _("prescription item")
        base_manager_name = "all_objects"
        ordering = ["prescription", "position"]
        constraints = [
            models.CheckConstraint(condition=Q(dose__gt=0), name="rx_item_dose_positive"),
            models.CheckConstraint(condition=Q(days__gt=0), name="rx_item_days_positive"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="rx_item_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.drug} × {self.quantity}"


class RuleOverride(models.Model):
    """The doctor's reason for going on despite a warning (never possible for a refusal)."""

    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="overrides")
    rule = models.CharField(max_length=40)
    subject = models.CharField(max_length=120)  # which item(s) or pair the warning is about
    reason = models.CharField(max_length=300)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = LiveManager()
    all_objects = models.Manager()  # noqa: DJ012 - the unfiltered manager, after the default one

    class Meta:
        verbose_name = _("rule override")
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(
                fields=["prescription", "rule", "subject"], condition=Q(removed_at__isnull=True), name="override_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}"


class PharmacistReview(models.Model):
    """A pharmacist's decision on a signed prescription (R10), shown on the prescription."""

    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="reviews")
    pharmacist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=ReviewDecision.choices)
    reason_codes = models.JSONField(default=list)
    note = models.CharField(max_length=500, blank=True)
    reviewed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("pharmacist review")
        ordering = ["reviewed_at"]

    def __str__(self) -> str:
        return f"{self.decision} {self.prescription_id}"
