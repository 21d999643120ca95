"""Access helpers for accounts: the authenticated user of a request, typed."""

from __future__ import annotations

from django.http import HttpRequest

from nethospital.accounts.models import FamilyLink, Patient, User
from nethospital.core.errors import LOGIN_REQUIRED, DomainError


def authenticated_user(request: HttpRequest) -> User:
    """The logged-in user, or a 401 refusal (API handlers behind django_auth always have one)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)
    return user


def acts_for(user: User, patient: Patient) -> bool:
    """The patient themself, or a holder of an active family link (R30)."""
    if patient.account_id == user.pk:
        return True
    return FamilyLink.objects.filter(holder=user, patient=patient, ended_at__isnull=True).exists()


def patients_acted_for(user: User) -> list[Patient]:
    own = list(Patient.objects.filter(account=user))
    family = list(
        Patient.objects.filter(family_links__holder=user, family_links__ended_at__isnull=True).order_by("birth_date")
    )
    return own + family
