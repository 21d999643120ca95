from django.db import models
from django.utils.translation import gettext_lazy as _


class OrganizationKind(models.TextChoices):
    HOSPITAL = "hospital", _("hospital")
    INTERNET_HOSPITAL = "internet_hospital", _("internet hospital")
    PHARMACY = "pharmacy", _("pharmacy")
    SERVICE_STATION = "service_station", _("village service station")
    REGULATOR = "regulator", _("health authority")


class HospitalTier(models.IntegerChoices):
    TIER_1 = 1, _("tier 1 (township / community)")
    TIER_2 = 2, _("tier 2 (county / district)")
    TIER_3 = 3, _("tier 3 (city / regional)")


class Profession(models.TextChoices):
    PHYSICIAN = "physician", _("physician")
    PHARMACIST = "pharmacist", _("pharmacist")


class Title(models.TextChoices):
    # Professional titles of Chinese clinicians, most senior first.
    CHIEF_PHYSICIAN = "chief_physician", _("chief physician")
    ASSOCIATE_CHIEF_PHYSICIAN = "associate_chief_physician", _("associate chief physician")
    ATTENDING_PHYSICIAN = "attending_physician", _("attending physician")
    RESIDENT_PHYSICIAN = "resident_physician", _("resident physician")
    CHIEF_PHARMACIST = "chief_pharmacist", _("chief pharmacist")
    ASSOCIATE_CHIEF_PHARMACIST = "associate_chief_pharmacist", _("associate chief pharmacist")
    SUPERVISING_PHARMACIST = "supervising_pharmacist", _("supervising pharmacist")
    PHARMACIST = "pharmacist", _("pharmacist")


class VerificationStatus(models.TextChoices):
    PENDING = "pending", _("pending verification")
    VERIFIED = "verified", _("verified")
    SUSPENDED = "suspended", _("suspended")
    REJECTED = "rejected", _("rejected")
