"""R5 in one place: may this practitioner practise online today?

Booking, consulting, prescribing and opening patient data all call ``ensure_can_practise``; a
suspension or a lapsed condition stops the doctor at the next request, with nothing cached.
"""

from __future__ import annotations

from django.conf import settings

from nethospital.core import clock
from nethospital.core.errors import DomainError, ErrorCode
from nethospital.directory import errors
from nethospital.directory.choices import VerificationStatus
from nethospital.directory.models import Practitioner


def practice_refusal(practitioner: Practitioner) -> ErrorCode | None:
    """The reason this practitioner may not practise online, or None if they may."""
    if practitioner.verification_status == VerificationStatus.SUSPENDED:
        return errors.SUSPENDED
    if practitioner.verification_status != VerificationStatus.VERIFIED:
        return errors.NOT_VERIFIED
    if not practitioner.user.is_active:
        return errors.SUSPENDED
    if not practitioner.institution_consent:
        return errors.NO_INSTITUTION_CONSENT
    if practitioner.practice_years_on(clock.today()) < settings.NETHOSPITAL_MIN_PRACTICE_YEARS:
        return errors.TOO_LITTLE_PRACTICE
    return None


def can_practise(practitioner: Practitioner) -> bool:
    return practice_refusal(practitioner) is None


def ensure_can_practise(practitioner: Practitioner) -> None:
    refusal = practice_refusal(practitioner)
    if refusal is not None:
        raise DomainError(refusal, years=settings.NETHOSPITAL_MIN_PRACTICE_YEARS)


def bookable_practitioners():  # type: ignore[no-untyped-def]
    """Practitioners who pass R5 today, as a queryset (for search and booking)."""
    min_years = settings.NETHOSPITAL_MIN_PRACTICE_YEARS
    today = clock.today()
    try:
        latest_start = today.replace(year=today.year - min_years)
    except ValueError:  # 29 February
        latest_start = today.replace(year=today.year - min_years, day=28)
    return Practitioner.objects.filter(
        verification_status=VerificationStatus.VERIFIED,
        institution_consent=True,
        user__is_active=True,
        independent_practice_since__lte=latest_start,
    )
