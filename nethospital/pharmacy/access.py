"""Who may do what at a pharmacy (R6, R18, R23).

- The patient's side: the patient and the family members acting for them see the patient's orders
  (and the delivery code); only the patient or a registered *guardian* may buy (R18, ``may_buy_for``).
- Pharmacists and pharmacy staff of a pharmacy (role grants for that organisation) receive stock,
  see its stock and its orders; only a pharmacist dispenses. People whose role needs a second
  factor (pharmacists, R6) must have passed it in this session before they see patients' orders.
- Couriers of a pharmacy see the orders ready for them and the ones they carry.
- Operators of a village service station see the pickups addressed to their station.
Every opening of an order (patient data: name, address, medicine) is audited.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from nethospital.accounts import policy
from nethospital.accounts.access import acts_for, patients_acted_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import FamilyLink, Patient, User
from nethospital.core import audit
from nethospital.core.choices import AuditOutcome
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, DomainError, NotFound, PermissionDenied
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization, Practitioner
from nethospital.directory.rules import ensure_can_practise
from nethospital.pharmacy import errors
from nethospital.pharmacy.choices import OrderStatus
from nethospital.pharmacy.models import Order

PHARMACY_ROLES = (Role.PHARMACIST, Role.PHARMACY_STAFF)


def _authenticated(user: User) -> None:
    if user is None or not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)


def _second_factor(user: User) -> None:
    if policy.requires_mfa(user) and not user.is_mfa_verified:
        raise PermissionDenied(MFA_REQUIRED)


def pharmacy_ids(user: User, *roles: str) -> set[int]:
    if not user.is_authenticated:
        return set()
    return user.organisation_ids(*(roles or PHARMACY_ROLES))


def pharmacies_of(user: User, *roles: str) -> QuerySet[Organization]:
    return Organization.objects.filter(
        pk__in=pharmacy_ids(user, *roles), kind=OrganizationKind.PHARMACY, is_active=True
    ).order_by("pk")


def _pharmacy(pharmacy_id: int) -> Organization:
    pharmacy = Organization.objects.filter(pk=pharmacy_id, kind=OrganizationKind.PHARMACY, is_active=True).first()
    if pharmacy is None:
        raise NotFound(errors.PHARMACY_NOT_FOUND)
    return pharmacy


def require_pharmacy_staff(user: User, pharmacy_id: int) -> Organization:
    """A pharmacist or staff member of this pharmacy (second factor if their role needs one)."""
    _authenticated(user)
    pharmacy = _pharmacy(pharmacy_id)
    if pharmacy.pk not in pharmacy_ids(user):
        raise PermissionDenied(errors.NOT_PHARMACY_STAFF)
    _second_factor(user)
    return pharmacy


def require_pharmacist(user: User, pharmacy_id: int) -> Organization:
    """A pharmacist of this pharmacy who passed a second factor (R6) and, if registered as a
    practitioner, may practise (R5: a suspended pharmacist dispenses nothing)."""
    _authenticated(user)
    pharmacy = _pharmacy(pharmacy_id)
    if pharmacy.pk not in pharmacy_ids(user, Role.PHARMACIST):
        raise PermissionDenied(errors.NOT_PHARMACIST)
    if not user.is_mfa_verified:
        raise PermissionDenied(MFA_REQUIRED)
    practitioner = Practitioner.objects.filter(user=user).select_related("user").first()
    if practitioner is not None:
        ensure_can_practise(practitioner)
    return pharmacy


def require_courier(user: User, pharmacy_id: int) -> Organization:
    _authenticated(user)
    pharmacy = _pharmacy(pharmacy_id)
    if pharmacy.pk not in pharmacy_ids(user, Role.COURIER):
        raise PermissionDenied(errors.NOT_COURIER)
    _second_factor(user)
    return pharmacy


def station_ids(user: User) -> set[int]:
    return user.organisation_ids(Role.STATION_OPERATOR) if user.is_authenticated else set()


def require_station_operator(user: User, station_id: int | None) -> None:
    _authenticated(user)
    if station_id is None or station_id not in station_ids(user):
        raise PermissionDenied(errors.NOT_STATION_OPERATOR)
    _second_factor(user)


def may_buy_for(user: User, patient: Patient) -> bool:
    """R18: medicine is bought in the patient's real name, by the patient or a registered guardian.
    Other family members may see the patient's orders but not buy for them."""
    if not user.is_authenticated:
        return False
    if patient.account_id == user.pk:
        return True
    return FamilyLink.objects.filter(holder=user, patient=patient, is_guardian=True, ended_at__isnull=True).exists()


def buyable_patients(user: User) -> list[Patient]:
    """The patients ``user`` may buy medicine for (R18): themself, and those they are guardian of."""
    if not user.is_authenticated:
        return []
    guarded = FamilyLink.objects.filter(holder=user, is_guardian=True, ended_at__isnull=True).values("patient_id")
    own = Patient.objects.filter(account_id=user.pk)
    return list((own | Patient.objects.filter(pk__in=guarded)).distinct().order_by("pk"))


def viewer_role(user: User, order: Order) -> str | None:
    if not user.is_authenticated:
        return None
    if order.buyer_id == user.pk or acts_for(user, order.patient):
        return "patient"
    if order.pharmacy_id in pharmacy_ids(user):
        return "pharmacy"
    if order.pharmacy_id in pharmacy_ids(user, Role.COURIER) and (
        order.courier_id == user.pk or (order.courier_id is None and order.status == OrderStatus.DISPENSED)
    ):
        return "courier"
    if (
        order.station_id is not None
        and order.station_id in station_ids(user)
        and order.status in (OrderStatus.IN_TRANSIT, OrderStatus.AT_STATION, OrderStatus.DELIVERED)
    ):
        return "station"
    return None


def access_order(user: User, order_id: int, action: str = "view") -> Order:
    """The order if ``user`` may see it, with ``viewer_role`` set; audited, refusals too (R23)."""
    _authenticated(user)
    order = (
        Order.objects.select_related("pharmacy", "patient", "buyer", "prescription", "station", "courier")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound(errors.ORDER_NOT_FOUND)
    role = viewer_role(user, order)
    refusal = None
    if role is None:
        refusal = errors.ORDER_NOT_FOUND
    elif role != "patient" and policy.requires_mfa(user) and not user.is_mfa_verified:
        refusal = MFA_REQUIRED
    if refusal is not None:
        audit.record(
            user,
            f"pharmacy.order.{action}",
            order,
            patient=order.patient_id,
            hospital=order.pharmacy_id,
            outcome=AuditOutcome.DENIED,
            detail={"reason": refusal.code},
        )
        if refusal.status == 404:
            raise NotFound(refusal)
        raise PermissionDenied(refusal)
    audit.record(user, f"pharmacy.order.{action}", order, patient=order.patient_id, hospital=order.pharmacy_id)
    order.viewer_role = role  # type: ignore[attr-defined]
    return order


def orders_for_patient_side(user: User) -> QuerySet[Order]:
    ids = [p.pk for p in patients_acted_for(user)] if user.is_authenticated else []
    return (
        Order.objects.filter(Q(patient_id__in=ids) | Q(buyer_id=user.pk if user.is_authenticated else 0))
        .select_related("pharmacy", "patient", "station", "prescription")
        .order_by("-created_at")
    )


def courier_orders(user: User) -> QuerySet[Order]:
    """Orders ready for a courier of the user's pharmacies, and the ones the user carries or carried."""
    pharmacies = pharmacy_ids(user, Role.COURIER)
    return (
        Order.objects.filter(pharmacy_id__in=pharmacies)
        .filter(Q(status=OrderStatus.DISPENSED, courier__isnull=True) | Q(courier_id=user.pk))
        .select_related("pharmacy", "patient", "station")
        .order_by("created_at")
    )


def station_orders(user: User) -> QuerySet[Order]:
    return (
        Order.objects.filter(station_id__in=station_ids(user))
        .filter(status__in=[OrderStatus.IN_TRANSIT, OrderStatus.AT_STATION, OrderStatus.DELIVERED])
        .select_related("pharmacy", "patient", "station", "courier")
        .order_by("created_at")
    )
