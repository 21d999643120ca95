"""Writes to the directory: organisations, practitioners and their verification (R5, R24)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction

from nethospital.accounts.choices import Role
from nethospital.accounts.models import RoleGrant, User
from nethospital.core import audit, clock
from nethospital.core.errors import MFA_REQUIRED, NOT_FOUND, PERMISSION_DENIED, DomainError, ensure
from nethospital.directory import access, errors
from nethospital.directory.choices import OrganizationKind, Profession, VerificationStatus
from nethospital.directory.models import Organization, Practitioner, VerificationEvent

# Which verification changes are allowed, and whether they need a reason.
TRANSITIONS: dict[tuple[str, str], bool] = {
    (VerificationStatus.PENDING, VerificationStatus.VERIFIED): False,
    (VerificationStatus.PENDING, VerificationStatus.REJECTED): True,
    (VerificationStatus.VERIFIED, VerificationStatus.SUSPENDED): True,
    (VerificationStatus.SUSPENDED, VerificationStatus.VERIFIED): True,
    (VerificationStatus.REJECTED, VerificationStatus.PENDING): True,
}


@transaction.atomic
def create_organization(actor: User | None, **fields: object) -> Organization:
    """R24: an internet hospital must be attached to an active, licensed physical hospital."""
    org = Organization(**fields)  # type: ignore[arg-type]
    if org.kind == OrganizationKind.INTERNET_HOSPITAL:
        physical = org.attached_to
        ensure(
            physical is not None
            and physical.kind == OrganizationKind.HOSPITAL
            and physical.is_active
            and bool(physical.licence_number),
            errors.INTERNET_HOSPITAL_NEEDS_PHYSICAL,
            field="attached_to",
        )
    if org.kind in (OrganizationKind.HOSPITAL, OrganizationKind.PHARMACY):
        ensure(bool(org.licence_number), errors.LICENCE_REQUIRED, field="licence_number")
    org.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            org.save()
    except IntegrityError:
        raise DomainError(errors.LICENCE_TAKEN, field="licence_number") from None
    audit.record(actor, "directory.organization.create", org, hospital=org)
    return org


@transaction.atomic
def register_practitioner(
    actor: User | None,
    user: User,
    *,
    legal_name: str,
    profession: str,
    licence_number: str,
    title: str,
    primary_institution: Organization,
    independent_practice_since: dt.date,
    institution_consent: bool,
    institution_consent_reference: str = "",
    department_id: int | None = None,
    specialty_ids: list[int] | None = None,
    qualification_number: str = "",
) -> Practitioner:
    """A doctor or pharmacist joins, pending verification by a hospital admin (R5). The role grant
    is given at once, but the access checks refuse everything until the status is verified."""
    ensure(bool(licence_number.strip()), errors.LICENCE_REQUIRED, field="licence_number")
    if actor is not None and not actor.is_superuser:
        ensure(access.may_administer(actor, primary_institution.pk), PERMISSION_DENIED)
    try:
        with transaction.atomic():
            practitioner = Practitioner.objects.create(
                user=user,
                legal_name=legal_name,
                profession=profession,
                licence_number=licence_number.strip(),
                qualification_number=qualification_number,
                title=title,
                primary_institution=primary_institution,
                department_id=department_id,
                independent_practice_since=independent_practice_since,
                institution_consent=institution_consent,
                institution_consent_reference=institution_consent_reference,
            )
    except IntegrityError:
        raise DomainError(errors.LICENCE_TAKEN, field="licence_number") from None
    if specialty_ids:
        practitioner.specialties.set(specialty_ids)
    role = Role.DOCTOR if profession == Profession.PHYSICIAN else Role.PHARMACIST
    RoleGrant.objects.get_or_create(user=user, role=role, organization=primary_institution, revoked_at=None)
    for online in primary_institution.internet_hospitals.all():
        RoleGrant.objects.get_or_create(user=user, role=role, organization=online, revoked_at=None)
    user.forget_cached_roles()
    audit.record(actor, "directory.practitioner.register", practitioner, hospital=primary_institution)
    return practitioner


def _lock_practitioner(practitioner_id: int) -> Practitioner:
    practitioner = Practitioner.objects.select_for_update().filter(pk=practitioner_id).first()
    if practitioner is None:
        raise DomainError(NOT_FOUND)
    return practitioner


@transaction.atomic
def change_verification(admin: User, practitioner_id: int, to_status: str, *, reason: str = "") -> Practitioner:
    """A hospital admin verifies, rejects, suspends or reinstates a practitioner of their hospital.

    Verifying checks R5 itself: the institution's consent must be on file and the doctor must have
    the minimum years of independent practice; a suspension takes effect on the doctor's next
    request, because every access check reads the status afresh."""
    ensure(admin.is_mfa_verified, MFA_REQUIRED)
    practitioner = _lock_practitioner(practitioner_id)
    ensure(access.may_administer(admin, practitioner.primary_institution_id), PERMISSION_DENIED)
    ensure(admin.pk != practitioner.user_id, PERMISSION_DENIED)
    key = (practitioner.verification_status, to_status)
    ensure(key in TRANSITIONS, errors.BAD_TRANSITION, field="status")
    reason = (reason or "").strip()
    ensure(len(reason) <= 300, errors.REASON_REQUIRED, field="reason")
    if TRANSITIONS[key]:
        ensure(bool(reason), errors.REASON_REQUIRED, field="reason")
    if to_status == VerificationStatus.VERIFIED:
        ensure(practitioner.institution_consent, errors.NO_INSTITUTION_CONSENT)
        if practitioner.profession == Profession.PHYSICIAN:
            min_years = settings.NETHOSPITAL_MIN_PRACTICE_YEARS
            ensure(
                practitioner.practice_years_on(clock.today()) >= min_years,
                errors.TOO_LITTLE_PRACTICE,
                years=min_years,
            )
    now = clock.now()
    VerificationEvent.objects.create(
        practitioner=practitioner,
        from_status=practitioner.verification_status,
        to_status=to_status,
        reason=reason,
        actor=admin,
        occurred_at=now,
    )
    practitioner.verification_status = to_status
    practitioner.status_reason = reason
    practitioner.status_changed_at = now
    practitioner.save(update_fields=["verification_status", "status_reason", "status_changed_at", "updated_at"])
    audit.record(
        admin,
        f"directory.practitioner.{to_status}",
        practitioner,
        hospital=practitioner.primary_institution_id,
        role=Role.HOSPITAL_ADMIN,
    )
    return practitioner
