"""Who may see and manage what in the directory."""

from __future__ import annotations

from django.db.models import QuerySet

from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.core.errors import MFA_REQUIRED, NOT_FOUND, PERMISSION_DENIED, ensure
from nethospital.directory.models import Organization, Practitioner


def administered_organisation_ids(user: User) -> set[int]:
    """Organisations a hospital admin runs: their own, plus the internet hospitals attached to them."""
    own = user.organisation_ids(Role.HOSPITAL_ADMIN)
    if not own:
        return set()
    attached = set(Organization.objects.filter(attached_to_id__in=own).values_list("pk", flat=True))
    return own | attached


def may_administer(user: User, organization_id: int | None) -> bool:
    if user.is_superuser or user.has_role(Role.PLATFORM_ADMIN):
        return True
    return organization_id is not None and organization_id in administered_organisation_ids(user)


def verification_queue(user: User) -> QuerySet[Practitioner]:
    """Practitioners this admin may verify: those registered at the admin's hospitals."""
    ensure(user.is_authenticated, PERMISSION_DENIED)
    ensure(
        user.is_superuser or user.has_role(Role.PLATFORM_ADMIN) or user.has_role(Role.HOSPITAL_ADMIN), PERMISSION_DENIED
    )
    ensure(user.is_mfa_verified, MFA_REQUIRED)
    qs = Practitioner.objects.select_related("user", "primary_institution", "department").prefetch_related(
        "specialties"
    )
    if user.is_superuser or user.has_role(Role.PLATFORM_ADMIN):
        return qs
    return qs.filter(primary_institution_id__in=administered_organisation_ids(user))


def access_practitioner_for_admin(user: User, practitioner_id: int) -> Practitioner:
    practitioner = verification_queue(user).filter(pk=practitioner_id).first()
    ensure(practitioner is not None, NOT_FOUND)
    assert practitioner is not None
    return practitioner
