from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient
from nethospital.directory.models import Organization


class Registration(models.Model):
    """A patient registered at a hospital, with the hospital's medical record number. It is the
    care relationship that lets the hospital's verified doctors open the patient's chart; booking
    and referrals create it, and a patient can see every hospital that holds one."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="registrations")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="registrations")
    medical_record_number = models.CharField(_("medical record number"), max_length=40)
    registered_at = models.DateTimeField(auto_now_add=True)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("hospital registration")
        constraints = [
            models.UniqueConstraint(fields=["patient", "hospital"], name="registration_unique"),
            models.UniqueConstraint(fields=["hospital", "medical_record_number"], name="registration_mrn_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.hospital} #{self.medical_record_number}"


class Allergy(models.Model):
    """An entry of the patient's allergy list: a substance (a drug ingredient or a drug class) and the
    reaction. Visit records feed it; prescriptions check against it. Entries are never deleted: a
    mistaken one is marked refuted."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance = models.CharField(_("substance"), max_length=100)
    reaction = models.CharField(_("reaction"), max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    source = models.CharField(_("source"), max_length=80, blank=True)
    is_refuted = models.BooleanField(_("refuted"), default=False)

    class Meta:
        verbose_name = _("allergy")
        verbose_name_plural = _("allergies")
        constraints = [models.UniqueConstraint(fields=["patient", "substance"], name="allergy_unique_substance")]

    def __str__(self) -> str:
        return self.substance
