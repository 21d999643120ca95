"""Every write to accounts: sign-up, family members, roles, preferences. Each action checks
permission and rules, writes in one transaction and records an audit entry."""

from __future__ import annotations

import datetime as dt

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import IntegrityError, transaction

from nethospital.accounts import errors
from nethospital.accounts.choices import GUARDIAN_RELATIONSHIPS, ORGANISATION_ROLES, Relationship, Role
from nethospital.accounts.identity import keyed_hashes
from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.accounts.validation import FieldErrors, check_password, clean_email, clean_real_name
from nethospital.core import audit, clock, context, ratelimit
from nethospital.core.errors import MFA_REQUIRED, PERMISSION_DENIED, RATE_LIMITED, DomainError, ensure


def _identity_taken(number: str) -> bool:
    return Patient.objects.filter(id_number_hash__in=keyed_hashes(number)).exists()


@transaction.atomic
def sign_up_patient(
    *,
    email: str,
    password: str,
    legal_name: str,
    id_number: str,
    birth_date: dt.date | None,
    sex: str | None,
    phone: str,
    language: str = "",
) -> User:
    """A new patient account with its real-name identity (R30: one identity, one account)."""
    address = context.current().client_address
    if address:  # against account farming by scalpers (R30): sign-ups per client address per hour
        retry_after = ratelimit.hit(
            "signup-address", address, limit=settings.NETHOSPITAL_SIGNUP_RATE_PER_ADDRESS, window_seconds=3600
        )
        if retry_after is not None:
            raise DomainError(RATE_LIMITED, retry_after=retry_after)
    problems = FieldErrors()
    email = clean_email(email, problems)
    check_password(password, problems, email=email)
    real = clean_real_name(
        legal_name=legal_name,
        id_number=id_number,
        birth_date=birth_date,
        sex=sex,
        phone=phone,
        phone_required=True,
        problems=problems,
    )
    if email and "email" not in problems.fields and User.objects.filter(email__iexact=email).exists():
        problems.add("email", errors.EMAIL_TAKEN)
    if real.resident is not None and _identity_taken(real.resident.number):
        problems.add("id_number", errors.ID_NUMBER_TAKEN)
    problems.raise_if_any()
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, display_name=real.legal_name, preferred_language=language[:10]
            )
            EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
            patient = Patient(account=user, legal_name=real.legal_name, phone=real.phone, registered_by=user)
            patient.set_identity(real.resident)
            patient.save()
            RoleGrant.objects.create(user=user, role=Role.PATIENT)
    except IntegrityError:
        # Two sign-ups with the same identity or e-mail raced; the unique constraints decided.
        if _identity_taken(real.resident.number):
            raise DomainError(errors.ID_NUMBER_TAKEN, field="id_number") from None
        raise DomainError(errors.EMAIL_TAKEN, field="email") from None
    audit.record(user, "patient.sign_up", patient, patient=patient, role=Role.PATIENT)
    return user


@transaction.atomic
def register_own_identity(
    user: User, *, legal_name: str, id_number: str, birth_date: dt.date | None, sex: str | None, phone: str
) -> Patient:
    """A staff account (a doctor, say) becomes a patient too, with its own real-name identity."""
    ensure(not Patient.objects.filter(account=user).exists(), errors.ALREADY_PATIENT)
    real = clean_real_name(
        legal_name=legal_name, id_number=id_number, birth_date=birth_date, sex=sex, phone=phone, phone_required=True
    )
    ensure(not _identity_taken(real.resident.number), errors.ID_NUMBER_TAKEN, field="id_number")
    try:
        with transaction.atomic():
            patient = Patient(account=user, legal_name=real.legal_name, phone=real.phone, registered_by=user)
            patient.set_identity(real.resident)
            patient.save()
            RoleGrant.objects.get_or_create(user=user, role=Role.PATIENT, organization=None, revoked_at=None)
    except IntegrityError:
        raise DomainError(errors.ID_NUMBER_TAKEN, field="id_number") from None
    user.forget_cached_roles()
    audit.record(user, "patient.register_identity", patient, patient=patient)
    return patient


@transaction.atomic
def add_family_member(
    holder: User,
    *,
    legal_name: str,
    id_number: str,
    birth_date: dt.date | None,
    sex: str | None,
    relationship: str,
    phone: str = "",
) -> FamilyLink:
    """Register a dependant (a child, an elderly parent) whom ``holder`` may act for (R30).
    A child under 6 can only be registered by a parent, grandparent or legal guardian (R3)."""
    ensure(Patient.objects.filter(account=holder).exists(), errors.NOT_A_PATIENT)
    problems = FieldErrors()
    if relationship not in Relationship.values:
        problems.add("relationship", errors.CHOICE_INVALID)
    real = clean_real_name(
        legal_name=legal_name,
        id_number=id_number,
        birth_date=birth_date,
        sex=sex,
        phone=phone,
        phone_required=False,
        problems=problems,
    )
    if real.resident is not None:
        if holder.patient.id_number_hash in keyed_hashes(real.resident.number):
            problems.add("id_number", errors.FAMILY_SELF)
        elif _identity_taken(real.resident.number):
            problems.add("id_number", errors.ID_NUMBER_TAKEN)
    problems.raise_if_any()
    young_child_age = settings.NETHOSPITAL_YOUNG_CHILD_AGE
    age = _age(real.resident.birth_date)
    is_guardian = relationship in GUARDIAN_RELATIONSHIPS and age < 18
    if age < young_child_age:
        ensure(is_guardian, errors.YOUNG_CHILD_NEEDS_GUARDIAN, field="relationship")
    try:
        with transaction.atomic():
            patient = Patient(legal_name=real.legal_name, phone=real.phone, registered_by=holder)
            patient.set_identity(real.resident)
            patient.save()
            link = FamilyLink.objects.create(
                holder=holder, patient=patient, relationship=relationship, is_guardian=is_guardian
            )
    except IntegrityError:
        raise DomainError(errors.ID_NUMBER_TAKEN, field="id_number") from None
    audit.record(holder, "patient.family.add", link, patient=patient, detail={"relationship": relationship})
    return link


def _age(birth_date: dt.date) -> int:
    today = clock.today()
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


@transaction.atomic
def end_family_link(holder: User, link_id: int) -> FamilyLink:
    link = FamilyLink.objects.select_for_update().filter(pk=link_id, holder=holder, ended_at__isnull=True).first()
    ensure(link is not None, PERMISSION_DENIED)
    assert link is not None
    if link.is_guardian and _age(link.patient.birth_date) < settings.NETHOSPITAL_YOUNG_CHILD_AGE:
        other_guardians = FamilyLink.objects.filter(
            patient=link.patient, is_guardian=True, ended_at__isnull=True
        ).exclude(pk=link.pk)
        ensure(other_guardians.exists(), errors.LAST_GUARDIAN)
    link.ended_at = clock.now()
    link.save(update_fields=["ended_at"])
    audit.record(holder, "patient.family.end", link, patient=link.patient_id)
    return link


def _may_grant(granter: User, role: str, organization_id: int | None) -> bool:
    if granter.is_superuser or granter.has_role(Role.PLATFORM_ADMIN):
        return True
    # A hospital admin staffs their own organisation (and the organisations it runs), never globally.
    return (
        role in ORGANISATION_ROLES
        and role != Role.HOSPITAL_ADMIN
        and organization_id is not None
        and organization_id in granter.organisation_ids(Role.HOSPITAL_ADMIN)
    )


@transaction.atomic
def grant_role(granter: User, user: User, role: str, *, organization_id: int | None = None) -> RoleGrant:
    ensure(granter.is_mfa_verified, MFA_REQUIRED)
    ensure(role in Role.values, errors.UNKNOWN_ROLE, field="role")
    if role in ORGANISATION_ROLES:
        ensure(organization_id is not None, errors.ROLE_NEEDS_ORGANISATION, field="organization")
    else:
        ensure(organization_id is None, errors.ROLE_TAKES_NO_ORGANISATION, field="organization")
    ensure(_may_grant(granter, role, organization_id), PERMISSION_DENIED)
    try:
        with transaction.atomic():
            grant = RoleGrant.objects.create(user=user, role=role, organization_id=organization_id, granted_by=granter)
    except IntegrityError:
        raise DomainError(errors.ROLE_ALREADY_GRANTED, field="role") from None
    user.forget_cached_roles()
    audit.record(granter, "account.role.grant", grant, hospital=organization_id, detail={"role": role})
    return grant


@transaction.atomic
def revoke_role(revoker: User, grant_id: int) -> RoleGrant:
    ensure(revoker.is_mfa_verified, MFA_REQUIRED)
    grant = RoleGrant.objects.select_for_update().filter(pk=grant_id, revoked_at__isnull=True).first()
    ensure(grant is not None and _may_grant(revoker, grant.role, grant.organization_id), PERMISSION_DENIED)
    assert grant is not None
    grant.revoked_at = clock.now()
    grant.revoked_by = revoker
    grant.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(revoker, "account.role.revoke", grant, hospital=grant.organization_id, detail={"role": grant.role})
    return grant


def set_preferred_language(user: User, language: str) -> None:
    ensure(language in dict(settings.LANGUAGES), errors.LANGUAGE_INVALID, field="language")
    User.objects.filter(pk=user.pk).update(preferred_language=language)
    user.preferred_language = language
