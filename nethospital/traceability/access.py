"""Who may see traceability alerts, recalls and a box's journey (R20, R22, R23).

- Regulators (with a second factor, R6) see every alert and run recalls.
- Pharmacists (with a second factor) and pharmacy staff see the alerts of their own pharmacies and
  acknowledge them; they see the list of recalls.
- The patient who received a box, or a family member acting for them, sees that box's journey;
  a regulator (second factor) may open any journey. Opening a journey is audited.
- The public verification page needs nobody (and shows nothing about anybody).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from nethospital.accounts import policy
from nethospital.accounts.access import acts_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import Patient, User
from nethospital.core import audit
from nethospital.core.choices import AuditOutcome
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, DomainError, ErrorCode, NotFound, PermissionDenied
from nethospital.traceability.models import Alert, Pack

PHARMACY_ROLES = (Role.PHARMACIST, Role.PHARMACY_STAFF)

NOT_SUPERVISOR = ErrorCode(
    "traceability_not_allowed",
    _("Traceability alerts are for regulators and the staff of the pharmacy concerned."),
    403,
)
NOT_REGULATOR = ErrorCode("not_regulator", _("Only a regulator may recall a batch."), 403)
ALERT_NOT_FOUND = ErrorCode("alert_not_found", _("There is no such alert."), 404)
JOURNEY_NOT_FOUND = ErrorCode(
    "journey_not_found", _("There is no box with this code among the medicines you received."), 404
)


def _authenticated(user: User) -> None:
    if user is None or not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)


def is_regulator(user: User) -> bool:
    return bool(user.is_authenticated and user.has_role(Role.REGULATOR))


def require_regulator(user: User) -> None:
    """A regulator who passed a second factor in this session (R6); raises otherwise."""
    _authenticated(user)
    if not is_regulator(user):
        raise PermissionDenied(NOT_REGULATOR)
    if not user.is_mfa_verified:
        raise PermissionDenied(MFA_REQUIRED)


def pharmacy_ids(user: User) -> set[int]:
    return user.organisation_ids(*PHARMACY_ROLES) if user.is_authenticated else set()


def _needs_mfa(user: User) -> bool:
    """Regulators and pharmacists need a second factor (R6, ``NETHOSPITAL_MFA_REQUIRED_ROLES``);
    pharmacy staff do not."""
    return policy.requires_mfa(user)


def alerts_for(user: User) -> QuerySet[Alert]:
    """The alerts ``user`` may see; raises for people who see none (login, MFA, role)."""
    _authenticated(user)
    if is_regulator(user) or pharmacy_ids(user):
        if _needs_mfa(user) and not user.is_mfa_verified:
            raise PermissionDenied(MFA_REQUIRED)
    else:
        raise PermissionDenied(NOT_SUPERVISOR)
    queryset = Alert.objects.select_related("organization", "event", "acknowledged_by")
    if is_regulator(user):
        return queryset
    return queryset.filter(organization_id__in=pharmacy_ids(user))


def may_see_all_alerts(user: User) -> bool:
    return is_regulator(user)


def access_alert(user: User, alert_id: int, action: str = "view") -> Alert:
    """One alert the user may see (and so acknowledge), or a refusal."""
    alert = alerts_for(user).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(ALERT_NOT_FOUND)
    return alert


def may_see_recalls(user: User) -> bool:
    return bool(user.is_authenticated and (is_regulator(user) or pharmacy_ids(user)))


@dataclass(frozen=True)
class JourneyAccess:
    pack: Pack
    patient: Patient | None  # None for a regulator's view
    viewer_role: str  # "patient" or "regulator"


def access_journey(user: User, identifier: str) -> JourneyAccess:
    """The box if ``user`` received it (or acts for who did), or is a regulator; audited either way."""
    from nethospital.traceability.recalls import recipients_of

    _authenticated(user)
    pack = Pack.objects.filter(identifier=identifier).first()
    patient = recipients_of([identifier]).get(identifier) if pack is not None else None
    if patient is not None and acts_for(user, patient):
        audit.record(user, "traceability.journey.view", pack, patient=patient, detail={"identifier": identifier})
        return JourneyAccess(pack, patient, "patient")  # type: ignore[arg-type]
    if pack is not None and is_regulator(user):
        if not user.is_mfa_verified:
            raise PermissionDenied(MFA_REQUIRED)
        audit.record(user, "traceability.journey.view", pack, patient=patient, detail={"identifier": identifier})
        return JourneyAccess(pack, patient, "regulator")
    audit.record(
        user,
        "traceability.journey.view",
        pack,
        patient=patient,
        outcome=AuditOutcome.DENIED,
        detail={"identifier": identifier[:300]},
    )
    raise NotFound(JOURNEY_NOT_FOUND)
