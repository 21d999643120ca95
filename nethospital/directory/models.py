from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from nethospital.core.models import TimeStampedModel
from nethospital.directory.choices import HospitalTier, OrganizationKind, Profession, Title, VerificationStatus


class BilingualNameMixin(models.Model):
    name_zh = models.CharField(_("name (Chinese)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_zh if (get_language() or "").startswith("zh") else self.name_en


class Organization(BilingualNameMixin, TimeStampedModel):
    """A place that delivers or supervises care: a licensed physical hospital (tier 1-3), the
    internet hospital attached to one (R24), a pharmacy, a village service station, or a health
    authority. Staff belong to it through role grants."""

    kind = models.CharField(_("kind"), max_length=20, choices=OrganizationKind.choices)
    tier = models.PositiveSmallIntegerField(_("tier"), choices=HospitalTier.choices, null=True, blank=True)
    licence_number = models.CharField(_("licence number"), max_length=64, blank=True)
    province = models.CharField(_("province"), max_length=40)
    city = models.CharField(_("city"), max_length=40)
    county = models.CharField(_("county / district"), max_length=40, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    # R24: an internet hospital is the online arm of a licensed physical hospital.
    attached_to = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="internet_hospitals",
        verbose_name=_("attached to (physical hospital)"),
    )
    # A station or pharmacy is supervised by (or belongs to) a hospital; a hospital may have none.
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children", verbose_name=_("parent")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=OrganizationKind.INTERNET_HOSPITAL) | Q(attached_to__isnull=False),
                name="internet_hospital_attached_to_physical",
            ),
            models.CheckConstraint(
                condition=Q(kind=OrganizationKind.HOSPITAL, tier__isnull=False)
                | (~Q(kind=OrganizationKind.HOSPITAL) & Q(tier__isnull=True))
                | Q(kind=OrganizationKind.INTERNET_HOSPITAL),
                name="tier_only_for_hospitals",
            ),
            models.UniqueConstraint(
                fields=["kind", "licence_number"], condition=~Q(licence_number=""), name="organisation_licence_unique"
            ),
        ]

    @property
    def is_hospital(self) -> bool:
        return self.kind in (OrganizationKind.HOSPITAL, OrganizationKind.INTERNET_HOSPITAL)

    @property
    def physical_hospital(self) -> Organization:
        return self.attached_to if self.kind == OrganizationKind.INTERNET_HOSPITAL and self.attached_to else self


class Department(BilingualNameMixin, models.Model):
    """A clinical department of a hospital (cardiology, paediatrics ...)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="departments")
    code = models.SlugField(_("code"), max_length=40)
    specialty = models.ForeignKey(
        "Specialty", on_delete=models.PROTECT, null=True, blank=True, related_name="departments"
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("department")
        constraints = [models.UniqueConstraint(fields=["organization", "code"], name="department_code_unique")]


class Specialty(BilingualNameMixin, models.Model):
    """A clinical specialty (cardiology, paediatrics, endocrinology ...), used to match doctors to
    departments and, for children under 6, to require a paediatric doctor (R3)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    is_paediatric = models.BooleanField(_("paediatric"), default=False)

    class Meta:
        verbose_name = _("specialty")
        verbose_name_plural = _("specialties")
        ordering = ["code"]


class Practitioner(TimeStampedModel):
    """A licensed doctor or pharmacist. A hospital admin verifies the licence, the years of
    independent practice and the registered institution's consent before they see anyone (R5)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="practitioner")
    legal_name = models.CharField(_("legal name"), max_length=50)
    profession = models.CharField(_("profession"), max_length=20, choices=Profession.choices)
    licence_number = models.CharField(_("practising licence number"), max_length=40, unique=True)
    qualification_number = models.CharField(_("qualification certificate number"), max_length=40, blank=True)
    title = models.CharField(_("title"), max_length=40, choices=Title.choices)
    specialties = models.ManyToManyField(Specialty, blank=True, related_name="practitioners")
    primary_institution = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="practitioners", verbose_name=_("registered institution")
    )
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="practitioners"
    )
    independent_practice_since = models.DateField(_("independent practice since"))
    institution_consent = models.BooleanField(_("registered institution consents to online practice"), default=False)
    institution_consent_reference = models.CharField(_("consent document reference"), max_length=80, blank=True)
    verification_status = models.CharField(
        _("verification"), max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.PENDING
    )
    status_reason = models.CharField(_("reason"), max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    bio_zh = models.TextField(_("introduction (Chinese)"), blank=True, max_length=2000)
    bio_en = models.TextField(_("introduction (English)"), blank=True, max_length=2000)
    # Published patient reviews (moderated by the hospital) feed these; nothing else does.
    rating_average = models.DecimalField(_("rating"), max_digits=3, decimal_places=2, null=True, blank=True)
    rating_count = models.PositiveIntegerField(_("reviews"), default=0)

    class Meta:
        verbose_name = _("practitioner")

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.get_title_display()})"

    def practice_years_on(self, day: dt.date) -> int:
        since = self.independent_practice_since
        return day.year - since.year - ((day.month, day.day) < (since.month, since.day))


class VerificationEvent(models.Model):
    """One change of a practitioner's verification status, with who decided and why."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="verification_events")
    from_status = models.CharField(max_length=20, choices=VerificationStatus.choices)
    to_status = models.CharField(max_length=20, choices=VerificationStatus.choices)
    reason = models.CharField(max_length=300, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    occurred_at = models.DateTimeField()

    class Meta:
        verbose_name = _("verification event")
        ordering = ["occurred_at", "pk"]

    def __str__(self) -> str:
        return f"{self.practitioner_id}: {self.from_status} → {self.to_status}"
