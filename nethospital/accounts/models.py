from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from nethospital.accounts import identity
from nethospital.accounts.choices import ORGANISATION_ROLES, Relationship, Role, Sex
from nethospital.core import clock
from nethospital.core.models import TimeStampedModel


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login account. One person, one account (R30): a patient's real-name identity hangs off it
    as ``patient``; staff roles are ``RoleGrant`` rows. A doctor may also be a patient elsewhere."""

    email = models.EmailField(_("e-mail address"), unique=True, max_length=254)
    display_name = models.CharField(_("display name"), max_length=50, blank=True)
    preferred_language = models.CharField(_("preferred language"), max_length=10, blank=True)
    is_staff = models.BooleanField(_("back-office access"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), auto_now_add=True)

    # Set per request by StrongAuthenticationMiddleware: did this session pass a second factor?
    is_mfa_verified: bool = False

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.email

    def active_grants(self) -> list[RoleGrant]:
        cached = getattr(self, "_active_grants", None)
        if cached is None:
            cached = list(self.role_grants.filter(revoked_at__isnull=True))
            self._active_grants = cached
        return cached

    def roles(self) -> set[str]:
        return {grant.role for grant in self.active_grants()}

    def has_role(self, role: str) -> bool:
        return role in self.roles()

    def organisation_ids(self, *roles: str) -> set[int]:
        return {
            grant.organization_id
            for grant in self.active_grants()
            if grant.organization_id is not None and (not roles or grant.role in roles)
        }

    def forget_cached_roles(self) -> None:
        self.__dict__.pop("_active_grants", None)

    def audit_role_label(self) -> str:
        return ",".join(sorted(self.roles()))


class RoleGrant(models.Model):
    """A role a person holds, for an organisation when the role works within one (a doctor at a
    hospital, a pharmacist at a pharmacy, an operator at a village station). Revoked, never deleted."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="role_grants")
    role = models.CharField(_("role"), max_length=30, choices=Role.choices)
    # Lazy reference: accounts code never imports directory (see docs/adr/0002-role-grants.md).
    organization = models.ForeignKey(
        "directory.Organization", on_delete=models.PROTECT, null=True, blank=True, related_name="role_grants"
    )
    granted_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("role grant")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role", "organization"],
                condition=Q(revoked_at__isnull=True, organization__isnull=False),
                name="rolegrant_unique_active_in_organisation",
            ),
            # NULL organisations are distinct in a plain unique index, so global roles need their own.
            models.UniqueConstraint(
                fields=["user", "role"],
                condition=Q(revoked_at__isnull=True, organization__isnull=True),
                name="rolegrant_unique_active_global",
            ),
            models.CheckConstraint(
                condition=Q(role__in=sorted(r.value for r in ORGANISATION_ROLES), organization__isnull=False)
                | (~Q(role__in=sorted(r.value for r in ORGANISATION_ROLES)) & Q(organization__isnull=True)),
                name="rolegrant_organisation_matches_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()}"


class Patient(TimeStampedModel):
    """A real-name person who receives care: an account holder, or a family member (a child, an
    elderly parent) whom an account holder acts for. The identity number is never stored in clear:
    ``id_number_hash`` (keyed) makes it unique across the platform (R30), ``id_number_encrypted``
    keeps it recoverable for the legal cases that need it, ``id_number_masked`` is what people see."""

    account = models.OneToOneField(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="patient", verbose_name=_("account")
    )
    legal_name = models.CharField(_("legal name"), max_length=50)
    id_number_hash = models.CharField(max_length=64, unique=True, editable=False)
    id_number_encrypted = models.TextField(editable=False)
    id_number_masked = models.CharField(_("identity number"), max_length=18, editable=False)
    birth_date = models.DateField(_("birth date"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    phone = models.CharField(_("mobile phone"), max_length=11, blank=True)
    registered_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True, blank=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.id_number_masked})"

    def set_identity(self, resident: identity.ResidentIdentity) -> None:
        self.id_number_hash = identity.keyed_hash(resident.number)
        self.id_number_encrypted = identity.encrypt(resident.number)
        self.id_number_masked = resident.masked
        self.birth_date = resident.birth_date
        self.sex = resident.sex

    def age_on(self, day: dt.date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    @property
    def age(self) -> int:
        return self.age_on(clock.today())


class FamilyLink(models.Model):
    """An account holder acts for a family member (R30: bookings only for oneself or registered
    family). ``relationship`` is what the patient is to the holder (``child``: the holder is the
    parent). ``is_guardian`` marks legal guardianship; a child under 6 always has one (R3)."""

    holder = models.ForeignKey(User, on_delete=models.PROTECT, related_name="family_links")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="family_links")
    relationship = models.CharField(_("relationship"), max_length=20, choices=Relationship.choices)
    is_guardian = models.BooleanField(_("legal guardian"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("family link")
        constraints = [
            models.UniqueConstraint(
                fields=["holder", "patient"], condition=Q(ended_at__isnull=True), name="familylink_unique_active"
            )
        ]

    def __str__(self) -> str:
        return f"{self.holder} → {self.patient} ({self.get_relationship_display()})"
