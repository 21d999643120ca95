from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PATIENT = "patient", _("patient")
    DOCTOR = "doctor", _("doctor")
    PHARMACIST = "pharmacist", _("pharmacist")
    PHARMACY_STAFF = "pharmacy_staff", _("pharmacy staff")
    COURIER = "courier", _("courier")
    STATION_OPERATOR = "station_operator", _("station operator")
    HOSPITAL_ADMIN = "hospital_admin", _("hospital admin")
    REGULATOR = "regulator", _("regulator")
    PLATFORM_ADMIN = "platform_admin", _("platform admin")


# Roles that act within one organisation (a hospital, pharmacy or station) and need it named.
ORGANISATION_ROLES = frozenset(
    {
        Role.DOCTOR,
        Role.PHARMACIST,
        Role.PHARMACY_STAFF,
        Role.COURIER,
        Role.STATION_OPERATOR,
        Role.HOSPITAL_ADMIN,
    }
)


class Sex(models.TextChoices):
    MALE = "M", _("male")
    FEMALE = "F", _("female")


class Relationship(models.TextChoices):
    CHILD = "child", _("child")
    PARENT = "parent", _("parent")
    SPOUSE = "spouse", _("spouse")
    GRANDCHILD = "grandchild", _("grandchild")
    GRANDPARENT = "grandparent", _("grandparent")
    SIBLING = "sibling", _("sibling")
    WARD = "ward", _("ward (legal guardianship)")


# Relationships in which the account holder may be a minor's guardian.
GUARDIAN_RELATIONSHIPS = frozenset({Relationship.CHILD, Relationship.GRANDCHILD, Relationship.WARD})
