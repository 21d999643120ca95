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
