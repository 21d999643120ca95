"""Every write of the pharmacy: prices, receiving stock, orders, payments and refunds, dispensing,
hand-over, delivery and station pickup (R9, R15, R16, R18, R19, R20, R22).

Each action checks who acts (``access``), applies the rules, records an audit entry and runs in one
transaction; the EPCIS events of scans are captured in that same transaction, so a scan is either
recorded with its consequences or not at all. Locks are taken in one order: the pharmacy's stock
lock (order creation), then the order, then its prescription.

Refusals that must leave a trace — a wrong delivery code counted, a box dispensed before that
raises the dispensed-twice alert (R20), a declined payment — are committed first and raised after.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.access import acts_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import Patient, RoleGrant, User
from nethospital.core import audit, clock
from nethospital.core.choices import AuditOutcome
from nethospital.core.errors import INVALID_INPUT, DomainError, NotFound, PermissionDenied, ensure
from nethospital.core.idempotency import IDEMPOTENCY_KEY_REUSED, clean_key
from nethospital.core.notify import notify
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization
from nethospital.pharmacy import access, delivery, errors, events, stock
from nethospital.pharmacy.choices import (
    CANCELLABLE_STATUSES,
    Fulfilment,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    RefundStatus,
)
from nethospital.pharmacy.models import (
    DispensedPack,
    DispenseScan,
    Offer,
    Order,
    OrderLine,
    Payment,
    Refund,
    StockReceipt,
)
from nethospital.pharmacy.payments import provider_for
from nethospital.prescriptions import actions as prescription_actions
from nethospital.prescriptions import errors as prescription_errors
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.models import DrugPack, Prescription
from nethospital.traceability import anomalies, codes, state
from nethospital.traceability.models import Pack

MAX_OTC_QUANTITY = 20
MAX_LINES = 20


def _max_codes() -> int:
    return int(settings.NETHOSPITAL_RECEIVE_MAX_CODES)


# --- locks and small helpers ----------------------------------------------------------------------
def lock_order(order_id: int) -> Order:
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("pharmacy", "patient", "prescription", "station")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound(errors.ORDER_NOT_FOUND)
    return order


def lock_stock(pharmacy_id: int) -> Organization:
    """The pharmacy's row, locked: order creation checks and reserves stock one order at a time."""
    pharmacy = (
        Organization.objects.select_for_update()
        .filter(pk=pharmacy_id, kind=OrganizationKind.PHARMACY, is_active=True)
        .first()
    )
    if pharmacy is None:
        raise NotFound(errors.PHARMACY_NOT_FOUND)
    return pharmacy


def _new_number() -> str:
    return clock.now().strftime("PO%Y%m%d") + secrets.token_hex(4).upper()


def product_name(drug_pack: DrugPack) -> str:
    drug = drug_pack.drug
    return f"{drug} ({drug_pack.pack_size} {drug.unit})"


def _people_of(pharmacy_id: int, *roles: str) -> list[User]:
    grants = RoleGrant.objects.filter(
        organization_id=pharmacy_id, role__in=roles, revoked_at__isnull=True, user__is_active=True
    ).select_related("user")
    return list({g.user_id: g.user for g in grants}.values())


def _patient_side(order: Order) -> list[User]:
    people: dict[int, User] = {order.buyer_id: order.buyer}
    patient = order.patient
    if patient.account_id is not None and patient.account is not None:
        people[patient.account_id] = patient.account
    return [p for p in people.values() if p.is_active]


def _tell_patient(order_id: int, kind: str, title: object, body: object) -> None:
    order = Order.objects.select_related("buyer", "patient__account", "station").get(pk=order_id)
    params = {"number": order.number, "station": order.station.name if order.station else ""}
    for user in _patient_side(order):
        notify(user, kind, title, body, params=params, link=f"/pharmacy/orders/{order.pk}/", email=False)  # type: ignore[arg-type]


def _tell_pharmacy(order_id: int, roles: tuple[str, ...], kind: str, title: object, body: object) -> None:
    order = Order.objects.get(pk=order_id)
    for user in _people_of(order.pharmacy_id, *roles):
        notify(user, kind, title, body, params={"number": order.number}, link="/pharmacy/queue/", email=False)  # type: ignore[arg-type]


def _scanned(text: str) -> codes.ScannedCode:
    """A scanned code, or the reason it cannot be read."""
    try:
        return codes.parse(text)
    except DomainError as exc:
        raise DomainError(exc.error, field="code", **exc.params) from None


# --- prices -----------------------------------------------------------------------------------------
def set_price(user: User, pharmacy_id: int, drug_pack_id: int, price: Decimal | str, *, on_sale: bool = True) -> Offer:
    """A pharmacist or staff member sets the price of a product their pharmacy sells."""
    try:
        value = Decimal(str(price)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise DomainError(errors.PRICE_INVALID, field="price") from None
    ensure(value.is_finite() and Decimal("0.01") <= value <= Decimal("100000"), errors.PRICE_INVALID, field="price")
    with transaction.atomic():
        pharmacy = access.require_pharmacy_staff(user, pharmacy_id)
        drug_pack = DrugPack.objects.filter(pk=drug_pack_id).first()
        ensure(drug_pack is not None, INVALID_INPUT, field="drug_pack")
        offer, _created = Offer.objects.update_or_create(
            pharmacy=pharmacy,
            drug_pack=drug_pack,
            defaults={"price": value, "is_active": on_sale, "updated_at": clock.now(), "updated_by": user},
        )
        audit.record(
            user,
            "pharmacy.price.set",
            offer,
            hospital=pharmacy.pk,
            detail={"gtin": drug_pack.gtin if drug_pack else "", "price": str(value), "on_sale": on_sale},
        )
    return offer


# --- receiving stock (R19) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Receipt:
    receipt: StockReceipt
    boxes: list[Pack]  # every box the scan concerned (directly or inside a case / pallet)
    in_stock: list[Pack]  # of those, the ones now sellable here
    not_genuine: list[Pack]  # codes no manufacturer issued (R20): set aside, not stock
    not_stock: list[Pack]  # dispensed, destroyed, expired or recalled: on record, not for sale


def _boxes_under(identifiers: list[str]) -> list[Pack]:
    """The boxes named or contained (at any depth) in cases and pallets named."""
    found: dict[str, Pack] = {}
    level = list(Pack.objects.filter(identifier__in=identifiers).select_related("drug_pack__drug"))
    seen: set[int] = set()
    for _depth in range(8):
        containers = []
        for pack in level:
            if pack.pk in seen:
                continue
            seen.add(pack.pk)
            if pack.is_container:
                containers.append(pack.pk)
            else:
                found[pack.identifier] = pack
        if not containers:
            break
        level = list(Pack.objects.filter(parent_id__in=containers).select_related("drug_pack__drug"))
    return sorted(found.values(), key=lambda p: p.identifier)


def receive_stock(user: User, pharmacy_id: int, scanned: list[str]) -> Receipt:
    """Stock arrives: the staff scan cases, pallets or boxes; one receiving event at the pharmacy is
    captured and the aggregation resolves the boxes inside (R19). Codes that cannot be read stop the
    whole scan (nothing recorded) so that a misread is scanned again; codes nobody commissioned are
    recorded (the repository raises the unknown-code alert, R20) but never count as stock."""
    texts = list(dict.fromkeys(t.strip() for t in scanned if t and t.strip()))
    ensure(texts, errors.NOTHING_SCANNED, field="codes")
    limit = _max_codes()
    ensure(len(texts) <= limit, errors.TOO_MANY_CODES, field="codes", limit=limit)
    pharmacy = access.require_pharmacy_staff(user, pharmacy_id)
    identifiers: list[str] = []
    unreadable: list[str] = []
    for text in texts:
        try:
            result = codes.parse(text)
        except DomainError as exc:
            unreadable.append(f"{text[:60]} ({exc.message})")
            continue
        if result.kind not in (codes.KIND_SGTIN, codes.KIND_SSCC, codes.KIND_CHINA):
            unreadable.append(f"{text[:60]} ({_('not a box, case or pallet')})")
            continue
        identifiers.append(result.identifier)
    if unreadable:
        raise DomainError(errors.UNREADABLE_CODES, field="codes", codes="; ".join(unreadable))
    identifiers = list(dict.fromkeys(identifiers))
    with transaction.atomic():
        document = events.object_event(state.PHARMACY_RECEIVING, identifiers, location=pharmacy)
        (event_id,) = events.capture(user, [document])
        boxes = _boxes_under(identifiers)
        sellable = set(
            stock.sellable_packs(pharmacy.pk).filter(pk__in=[b.pk for b in boxes]).values_list("pk", flat=True)
        )
        receipt = StockReceipt.objects.create(
            pharmacy=pharmacy,
            scanned_codes=identifiers,
            event_id=event_id,
            box_count=len(sellable),
            received_by=user,
            received_at=clock.now(),
        )
        audit.record(
            user,
            "pharmacy.stock.receive",
            receipt,
            hospital=pharmacy.pk,
            detail={"codes": len(identifiers), "boxes": len(boxes), "in_stock": len(sellable), "event": event_id},
        )
    return Receipt(
        receipt=receipt,
        boxes=boxes,
        in_stock=[b for b in boxes if b.pk in sellable],
        not_genuine=[b for b in boxes if b.commissioned_at is None],
        not_stock=[b for b in boxes if b.pk not in sellable and b.commissioned_at is not None],
    )


# --- orders (R9, R16, R18) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OtcItem:
    drug_pack_id: int
    quantity: int


@dataclass(frozen=True)
class Delivery:
    fulfilment: str
    recipient_name: str = ""
    recipient_phone: str = ""
    address: str = ""
    station_id: int | None = None


@dataclass(frozen=True)
class Placed:
    order: Order
    created: bool


def _replay(user: User, key: str, *, pharmacy_id: int, prescription_id: int | None) -> Placed | None:
    first = Order.objects.filter(buyer=user, idempotency_key=key).first()
    if first is None:
        return None
    same = first.pharmacy_id == pharmacy_id and first.prescription_id == prescription_id
    ensure(same, IDEMPOTENCY_KEY_REUSED, field="idempotency_key")
    return Placed(first, created=False)


def _prescription_for_buyer(user: User, prescription_id: int) -> Prescription:
    """The prescription, locked, if ``user`` may buy its medicine (R18), approved (R9), unused (R15)
    and still valid (R13)."""
    prescription = prescription_actions.lock_prescription(prescription_id)
    if not access.may_buy_for(user, prescription.patient):
        if acts_for(user, prescription.patient):
            raise PermissionDenied(errors.NOT_BUYER)
        raise NotFound(prescription_errors.PRESCRIPTION_NOT_FOUND)
    ensure(prescription.status != PrescriptionStatus.DISPENSED, errors.PRESCRIPTION_USED)
    ensure(prescription.status == PrescriptionStatus.APPROVED, errors.PRESCRIPTION_NOT_APPROVED)
    ensure(not prescription_actions.is_expired(prescription), errors.PRESCRIPTION_EXPIRED)
    return prescription


def _clean_delivery(how: Delivery, payment_method: str) -> tuple[dict[str, object], Organization | None]:
    ensure(how.fulfilment in Fulfilment.values, INVALID_INPUT, field="fulfilment")
    ensure(payment_method in PaymentMethod.values, INVALID_INPUT, field="payment_method")
    if how.fulfilment == Fulfilment.DELIVERY:
        ensure(payment_method != PaymentMethod.CASH_AT_STATION, errors.CASH_ONLY_AT_STATION, field="payment_method")
        name, phone, address = (how.recipient_name or "").strip(), (how.recipient_phone or "").strip(), how.address
        address = (address or "").strip()
        ensure(name and address and phone, errors.DELIVERY_DETAILS_REQUIRED, field="address")
        ensure(len(name) <= 50 and len(address) <= 200, INVALID_INPUT, field="address")
        ensure(len(phone) == 11 and phone.isdigit() and phone.startswith("1"), errors.PHONE_INVALID, field="phone")
        return {"recipient_name": name, "recipient_phone": phone, "delivery_address": address}, None
    station = None
    if how.station_id is not None:
        station = Organization.objects.filter(
            pk=how.station_id, kind=OrganizationKind.SERVICE_STATION, is_active=True
        ).first()
    ensure(station is not None, errors.STATION_REQUIRED, field="station")
    return {}, station


def create_order(
    user: User,
    *,
    pharmacy_id: int,
    how: Delivery,
    payment_method: str,
    idempotency_key: str | None,
    prescription_id: int | None = None,
    patient_id: int | None = None,
    otc: list[OtcItem] | None = None,
    notice_confirmed: bool = False,
) -> Placed:
    """Order the medicine of an approved prescription (and/or non-prescription items) at a pharmacy,
    in the patient's real name (R18), with the R16 notice confirmed; once per idempotency key."""
    key = clean_key(idempotency_key)
    ensure(user.is_authenticated, errors.NOT_BUYER)
    replay = _replay(user, key, pharmacy_id=pharmacy_id, prescription_id=prescription_id)
    if replay is not None:
        return replay
    otc = otc or []
    ensure(prescription_id is not None or otc, errors.NO_ITEMS, field="items")
    ensure(len(otc) <= MAX_LINES, errors.NO_ITEMS, field="items")
    details, station = _clean_delivery(how, payment_method)
    try:
        with transaction.atomic():
            pharmacy = lock_stock(pharmacy_id)
            prescription: Prescription | None = None
            if prescription_id is not None:
                prescription = _prescription_for_buyer(user, prescription_id)
                patient = prescription.patient
                ensure(notice_confirmed, errors.NOTICE_REQUIRED, field="notice")  # R16
                existing = Order.objects.filter(prescription=prescription).exclude(status=OrderStatus.CANCELLED).first()
                if existing is not None:
                    raise DomainError(errors.ORDER_EXISTS, number=existing.number)
            else:
                found = Patient.objects.filter(pk=patient_id).first() if patient_id is not None else None
                if found is None or not access.may_buy_for(user, found):
                    if found is not None and acts_for(user, found):
                        raise PermissionDenied(errors.NOT_BUYER)
                    raise DomainError(INVALID_INPUT, field="patient")
                patient = found
            reserved_now: Counter[int] = Counter()
            lines: list[OrderLine] = []
            if prescription is not None:
                for item in prescription.items.select_related("drug").order_by("position"):
                    offer, boxes = stock.choose_pack(pharmacy.pk, item, reserved_now)
                    reserved_now[offer.drug_pack_id] += boxes
                    lines.append(
                        OrderLine(
                            drug=item.drug,
                            drug_pack=offer.drug_pack,
                            prescription_item=item,
                            quantity=boxes,
                            unit_price=offer.price,
                        )
                    )
            for wanted in otc:
                ensure(
                    isinstance(wanted.quantity, int) and 0 < wanted.quantity <= MAX_OTC_QUANTITY,
                    errors.QUANTITY_INVALID,
                    field="items",
                    limit=MAX_OTC_QUANTITY,
                )
                offer_row = (
                    Offer.objects.filter(pharmacy=pharmacy, drug_pack_id=wanted.drug_pack_id, is_active=True)
                    .select_related("drug_pack__drug")
                    .first()
                )
                if offer_row is None:
                    drug_pack = DrugPack.objects.select_related("drug").filter(pk=wanted.drug_pack_id).first()
                    raise DomainError(
                        errors.NOT_SOLD_HERE, field="items", product=str(drug_pack.drug) if drug_pack else "—"
                    )
                drug = offer_row.drug_pack.drug
                ensure(drug.is_prescription is False, errors.NEEDS_PRESCRIPTION, field="items", product=str(drug))
                left = stock.available(pharmacy.pk, offer_row.drug_pack_id) - reserved_now[offer_row.drug_pack_id]
                ensure(
                    left >= wanted.quantity,
                    errors.NOT_ENOUGH_STOCK,
                    field="items",
                    product=str(drug),
                    available=max(0, left),
                )
                reserved_now[offer_row.drug_pack_id] += wanted.quantity
                lines.append(
                    OrderLine(
                        drug=drug, drug_pack=offer_row.drug_pack, quantity=wanted.quantity, unit_price=offer_row.price
                    )
                )
            ensure(lines, errors.NO_ITEMS, field="items")
            now = clock.now()
            cash = payment_method == PaymentMethod.CASH_AT_STATION
            order = Order.objects.create(
                number=_new_number(),
                pharmacy=pharmacy,
                patient=patient,
                buyer=user,
                prescription=prescription,
                status=OrderStatus.AWAITING_DISPENSING if cash else OrderStatus.AWAITING_PAYMENT,
                fulfilment=how.fulfilment,
                station=station,
                total=sum((line.unit_price * line.quantity for line in lines), Decimal("0.00")),
                payment_method=payment_method,
                notice_confirmed_at=now if prescription is not None else None,
                idempotency_key=key,
                created_at=now,
                **details,  # type: ignore[arg-type]
            )
            for position, line in enumerate(lines):
                line.order = order
                line.position = position
            OrderLine.objects.bulk_create(lines)
            order.delivery_code_hash = delivery.hash_of(order, delivery.code_for(order))
            order.save(update_fields=["delivery_code_hash"])
            if prescription is not None and prescription.notice_confirmed_at is None:
                prescription_actions.confirm_notice(user, prescription.pk)  # R16, on the prescription too
            if cash:
                provider = provider_for(PaymentMethod.CASH_AT_STATION)
                result = provider.charge(amount=order.total, currency="CNY", reference=f"{order.number}:{key}")
                Payment.objects.create(
                    order=order,
                    method=PaymentMethod.CASH_AT_STATION,
                    provider=provider.name,
                    status=PaymentStatus.PENDING,
                    amount=order.total,
                    provider_reference=result.reference,
                    idempotency_key=key,
                    created_by=user,
                    created_at=now,
                )
            audit.record(
                user,
                "pharmacy.order.create",
                order,
                patient=patient,
                hospital=pharmacy.pk,
                detail={
                    "prescription": prescription.pk if prescription else None,
                    "lines": len(lines),
                    "fulfilment": how.fulfilment,
                    "payment": payment_method,
                },
            )
            if cash:
                order_id = order.pk
                transaction.on_commit(lambda: _new_order_for_pharmacy(order_id))
    except IntegrityError:
        # Two requests raced: the same idempotency key, or a second order for one prescription.
        replay = _replay(user, key, pharmacy_id=pharmacy_id, prescription_id=prescription_id)
        if replay is not None:
            return replay
        raise DomainError(errors.ORDER_EXISTS, number="—") from None
    return Placed(order, created=True)


def _new_order_for_pharmacy(order_id: int) -> None:
    _tell_pharmacy(
        order_id,
        (Role.PHARMACIST,),
        "pharmacy.order.to_dispense",
        _("Order %(number)s is waiting to be dispensed"),
        _("Order %(number)s is ready for dispensing: scan each box at the dispensing screen."),
    )


# --- paying, cancelling, refunds ---------------------------------------------------------------------------
def _may_act_as_buyer(user: User, order: Order) -> bool:
    return order.buyer_id == user.pk or access.may_buy_for(user, order.patient)


def pay_order(user: User, order_id: int, *, idempotency_key: str | None, token: str = "") -> Payment:
    """Pay an order online through the provider (the sandbox by default). The same idempotency key
    gives the same payment; a declined payment is recorded and refused, and may be retried with a
    new key."""
    key = clean_key(idempotency_key)
    with transaction.atomic():
        order = lock_order(order_id)
        if not _may_act_as_buyer(user, order):
            if acts_for(user, order.patient):
                raise PermissionDenied(errors.NOT_BUYER)
            raise NotFound(errors.ORDER_NOT_FOUND)
        payment = Payment.objects.filter(order=order, idempotency_key=key).first()
        if payment is None:
            ensure(order.status == OrderStatus.AWAITING_PAYMENT, errors.NOT_AWAITING_PAYMENT)
            ensure(order.payment_method == PaymentMethod.SANDBOX, errors.NOT_AWAITING_PAYMENT)
            provider = provider_for(order.payment_method)
            result = provider.charge(
                amount=order.total, currency="CNY", reference=f"{order.number}:{key}", token=token or ""
            )
            now = clock.now()
            payment = Payment.objects.create(
                order=order,
                method=order.payment_method,
                provider=provider.name,
                status=PaymentStatus.SUCCEEDED if result.status == "succeeded" else PaymentStatus.FAILED,
                amount=order.total,
                provider_reference=result.reference,
                failure_reason=result.failure_reason[:200],
                idempotency_key=key,
                created_by=user,
                created_at=now,
                settled_at=now if result.status == "succeeded" else None,
            )
            if payment.status == PaymentStatus.SUCCEEDED:
                order.status = OrderStatus.AWAITING_DISPENSING
                order.paid_at = now
                order.save(update_fields=["status", "paid_at"])
                order_id_ = order.pk
                transaction.on_commit(lambda: _new_order_for_pharmacy(order_id_))
            audit.record(
                user,
                "pharmacy.order.pay",
                order,
                patient=order.patient_id,
                hospital=order.pharmacy_id,
                outcome=AuditOutcome.SUCCESS if payment.status == PaymentStatus.SUCCEEDED else AuditOutcome.DENIED,
                detail={"payment": payment.pk, "provider": provider.name, "status": payment.status},
            )
    if payment.status == PaymentStatus.FAILED:
        raise DomainError(errors.PAYMENT_DECLINED, reason=payment.failure_reason)
    return payment


def _refund_payments(user: User, order: Order, reason: str) -> list[Refund]:
    refunds = []
    for payment in Payment.objects.select_for_update().filter(
        order=order, status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING]
    ):
        provider = provider_for(payment.method)
        collected = payment.status == PaymentStatus.SUCCEEDED
        result = provider.refund(
            amount=payment.amount,
            currency=payment.currency,
            charge_reference=payment.provider_reference,
            reference=f"refund:{payment.pk}",
            collected=collected,
        )
        if result.voided:
            payment.status = PaymentStatus.VOIDED
            payment.save(update_fields=["status"])
            continue
        refund = Refund.objects.create(
            payment=payment,
            amount=payment.amount,
            status=RefundStatus.SUCCEEDED if result.succeeded else RefundStatus.FAILED,
            provider_reference=result.reference,
            reason=reason[:200],
            created_by=user,
            created_at=clock.now(),
        )
        if result.succeeded:
            payment.status = PaymentStatus.REFUNDED
            payment.save(update_fields=["status"])
        refunds.append(refund)
    return refunds


def _mark_cancelled(order: Order, *, by: User | None, reason: str, now: dt.datetime) -> None:
    """The locked order is cancelled: boxes scanned for it go back to the shelf."""
    DispenseScan.objects.filter(order=order, released_at__isnull=True).update(released_at=now)
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = now
    order.cancelled_by = by
    order.cancel_reason = reason
    order.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason"])


def expire_unpaid_orders() -> int:
    """Task: an order still waiting for its online payment ``NETHOSPITAL_ORDER_PAYMENT_MINUTES`` after it
    was placed is cancelled, so that it stops holding its prescription and the pharmacy's stock; the
    patient's side is told and may order again. An order with a payment in flight or taken is left to
    the pharmacy (it is not this task's to guess the acquirer's answer)."""
    now = clock.now()
    cutoff = now - dt.timedelta(minutes=settings.NETHOSPITAL_ORDER_PAYMENT_MINUTES)
    due = Order.objects.filter(status=OrderStatus.AWAITING_PAYMENT, created_at__lte=cutoff).values_list("pk", flat=True)
    expired = 0
    for order_id in list(due[:500]):
        with transaction.atomic():
            order = lock_order(order_id)
            in_flight = Payment.objects.filter(
                order=order, status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING]
            ).exists()
            if order.status != OrderStatus.AWAITING_PAYMENT or in_flight:
                continue
            _mark_cancelled(order, by=None, reason="not paid in time", now=now)
            audit.record(
                None,
                "pharmacy.order.expire",
                order,
                patient=order.patient_id,
                hospital=order.pharmacy_id,
                detail={"minutes": settings.NETHOSPITAL_ORDER_PAYMENT_MINUTES},
            )
            transaction.on_commit(
                functools.partial(
                    _tell_patient,
                    order.pk,
                    "pharmacy.order.expired",
                    _("Order %(number)s was cancelled"),
                    _("It was not paid in time. You can order the medicine again."),
                )
            )
            expired += 1
    return expired


def cancel_order(user: User, order_id: int, reason: str = "") -> Order:
    """The patient's side (buyer, patient or guardian) or the pharmacy cancels before anything is
    dispensed; what was paid is refunded, cash not yet taken is voided, scanned boxes go back."""
    reason = (reason or "").strip()
    ensure(len(reason) <= 200, INVALID_INPUT, field="reason")
    with transaction.atomic():
        order = lock_order(order_id)
        by_patient_side = _may_act_as_buyer(user, order)
        if not by_patient_side:
            if user.is_authenticated and order.pharmacy_id in access.pharmacy_ids(user):
                access.require_pharmacy_staff(user, order.pharmacy_id)
                ensure(reason, errors.CANCEL_REASON_REQUIRED, field="reason")
            elif user.is_authenticated and acts_for(user, order.patient):
                raise PermissionDenied(errors.NOT_BUYER)
            else:
                raise NotFound(errors.ORDER_NOT_FOUND)
        ensure(order.status in CANCELLABLE_STATUSES, errors.NOT_CANCELLABLE)
        now = clock.now()
        refunds = _refund_payments(user, order, reason or "cancelled by the patient")
        _mark_cancelled(order, by=user, reason=reason, now=now)
        audit.record(
            user,
            "pharmacy.order.cancel",
            order,
            patient=order.patient_id,
            hospital=order.pharmacy_id,
            detail={"by": "patient" if by_patient_side else "pharmacy", "refunds": [r.pk for r in refunds]},
        )
        order_id_ = order.pk
        if by_patient_side:
            transaction.on_commit(
                lambda: _tell_pharmacy(
                    order_id_,
                    (Role.PHARMACIST, Role.PHARMACY_STAFF),
                    "pharmacy.order.cancelled",
                    _("Order %(number)s was cancelled"),
                    _("The patient cancelled order %(number)s; put back any boxes set aside for it."),
                )
            )
        else:
            transaction.on_commit(
                lambda: _tell_patient(
                    order_id_,
                    "pharmacy.order.cancelled",
                    _("Order %(number)s was cancelled"),
                    _("The pharmacy cancelled order %(number)s. Anything you paid is refunded."),
                )
            )
    return order


# --- dispensing (R9, R15, R19, R20) -----------------------------------------------------------------------
class DispenseRefused(DomainError):
    """The dispensing gate refused a scanned box (``anomalies.check_dispensable`` or our own checks)."""


@dataclass(frozen=True)
class ScanOutcome:
    scan: DispenseScan
    line: OrderLine
    line_scanned: int
    all_scanned: bool


def _ensure_dispensable_order(order: Order) -> None:
    """Nothing is dispensed before the order is paid (or is cash at the station) and, for a
    prescription, before a pharmacist approved it (R9) and while it is unused (R15)."""
    if order.status != OrderStatus.AWAITING_DISPENSING:
        raise DomainError(errors.NOT_AWAITING_DISPENSING, status=OrderStatus(order.status).label)
    prescription = order.prescription
    if prescription is not None:
        prescription.refresh_from_db(fields=["status", "valid_until"])
        ensure(prescription.status != PrescriptionStatus.DISPENSED, errors.PRESCRIPTION_USED)
        ensure(prescription.status == PrescriptionStatus.APPROVED, prescription_errors.NOT_APPROVED)
        ensure(not prescription_actions.is_expired(prescription), errors.PRESCRIPTION_EXPIRED)


def _live_scans(order: Order) -> dict[int, list[DispenseScan]]:
    by_line: dict[int, list[DispenseScan]] = {}
    for scan in DispenseScan.objects.filter(order=order, released_at__isnull=True):
        by_line.setdefault(scan.line_id, []).append(scan)
    return by_line


def scan_box(user: User, order_id: int, code: str) -> ScanOutcome:
    """The pharmacist scans one box for an order. It is accepted only if it is a product of the
    order, in this pharmacy's stock, not expired, not recalled and never dispensed; otherwise the
    refusal says which and why (a box dispensed before also raises the dispensed-twice alert)."""
    refusal: anomalies.DispenseRefusal | None = None
    with transaction.atomic():
        order = lock_order(order_id)
        pharmacy = access.require_pharmacist(user, order.pharmacy_id)
        _ensure_dispensable_order(order)
        scanned = _scanned(code)
        ensure(scanned.kind != codes.KIND_SSCC, errors.CONTAINER_CODE, field="code")
        ensure(scanned.kind in (codes.KIND_SGTIN, codes.KIND_CHINA), errors.UNREADABLE_CODE, field="code")
        lines = list(order.lines.select_related("drug_pack__drug"))
        refusal = anomalies.check_dispensable(
            scanned.identifier, pharmacy, [line.drug_pack.gtin for line in lines], at=clock.now()
        )
        if refusal is not None:
            audit.record(
                user,
                "pharmacy.dispense.scan",
                order,
                patient=order.patient_id,
                hospital=pharmacy.pk,
                outcome=AuditOutcome.DENIED,
                detail={"identifier": scanned.identifier, "reason": refusal.code},
            )
        else:
            pack = Pack.objects.get(identifier=scanned.identifier)
            ensure(pack.commissioned_at is not None, errors.NOT_COMMISSIONED, field="code")
            ensure(not pack.is_container, errors.CONTAINER_CODE, field="code")
            other = DispenseScan.objects.filter(identifier=pack.identifier, released_at__isnull=True).first()
            if other is not None:
                raise DomainError(errors.ALREADY_SCANNED, field="code", number=other.order.number)
            by_line = _live_scans(order)
            line = next(
                (
                    candidate
                    for candidate in lines
                    if candidate.drug_pack.gtin.zfill(14) == pack.gtin.zfill(14)
                    and len(by_line.get(candidate.pk, [])) < candidate.quantity
                ),
                None,
            )
            if line is None:
                raise DomainError(
                    errors.LINE_COMPLETE,
                    field="code",
                    product=str(pack.drug_pack.drug) if pack.drug_pack else pack.gtin,
                )
            try:
                with transaction.atomic():  # another pharmacist may scan the same box at this moment
                    scan = DispenseScan.objects.create(
                        order=order,
                        line=line,
                        identifier=pack.identifier,
                        gtin=pack.gtin,
                        batch=pack.batch,
                        expiry=pack.expiry,
                        scanned_by=user,
                        scanned_at=clock.now(),
                    )
            except IntegrityError:
                raise DomainError(errors.ALREADY_SCANNED, field="code", number="—") from None
            by_line.setdefault(line.pk, []).append(scan)
            audit.record(
                user,
                "pharmacy.dispense.scan",
                order,
                patient=order.patient_id,
                hospital=pharmacy.pk,
                detail={"identifier": pack.identifier, "line": line.pk},
            )
    if refusal is not None:  # the dispensed-twice alert and the audit entry are committed
        raise DispenseRefused(refusal.error, field="code", **refusal.params)
    assert line is not None
    complete = all(len(by_line.get(candidate.pk, [])) >= candidate.quantity for candidate in lines)
    return ScanOutcome(scan, line, len(by_line[line.pk]), complete)


def release_scan(user: User, order_id: int, scan_id: int) -> DispenseScan:
    """The pharmacist takes a scanned box out of the order again (before dispensing)."""
    with transaction.atomic():
        order = lock_order(order_id)
        access.require_pharmacist(user, order.pharmacy_id)
        ensure(order.status == OrderStatus.AWAITING_DISPENSING, errors.NOT_AWAITING_DISPENSING, status="")
        scan = DispenseScan.objects.filter(pk=scan_id, order=order, released_at__isnull=True).first()
        if scan is None:
            raise NotFound(errors.SCAN_NOT_FOUND)
        scan.released_at = clock.now()
        scan.save(update_fields=["released_at"])
        audit.record(
            user,
            "pharmacy.dispense.unscan",
            order,
            patient=order.patient_id,
            hospital=order.pharmacy_id,
            detail={"identifier": scan.identifier},
        )
    return scan


def complete_dispensing(user: User, order_id: int) -> Order:
    """Every box scanned: in ONE transaction, the gate is run again for each box, the prescription
    is marked used (R15, refused unless approved and valid, R9), the EPCIS dispensing event is
    captured at the pharmacy, and the record of which box went to which patient is written."""
    refused: tuple[anomalies.DispenseRefusal, str] | None = None
    with transaction.atomic():
        order = lock_order(order_id)
        pharmacy = access.require_pharmacist(user, order.pharmacy_id)
        _ensure_dispensable_order(order)
        lines = list(order.lines.select_related("drug_pack__drug"))
        by_line = _live_scans(order)
        missing = [
            f"{product_name(line.drug_pack)} × {line.quantity - len(by_line.get(line.pk, []))}"
            for line in lines
            if len(by_line.get(line.pk, [])) < line.quantity
        ]
        ensure(not missing, errors.NOT_ALL_SCANNED, missing="; ".join(missing))
        scans = [scan for line in lines for scan in by_line[line.pk]]
        gtins = [line.drug_pack.gtin for line in lines]
        for scan in scans:
            refusal = anomalies.check_dispensable(scan.identifier, pharmacy, gtins, at=clock.now())
            if refusal is not None:
                # The box changed since it was scanned (recalled, moved ...): it leaves the order.
                scan.released_at = clock.now()
                scan.save(update_fields=["released_at"])
                refused = (refusal, scan.identifier)
                break
        if refused is None:
            if order.prescription_id is not None:
                prescription_actions.mark_dispensed(user, order.prescription_id)  # R9, R15
            now = clock.now()
            document = events.object_event(
                state.PHARMACY_DISPENSING, [scan.identifier for scan in scans], location=pharmacy, at=now
            )
            (event_id,) = events.capture(user, [document])
            packs = {p.identifier: p for p in Pack.objects.filter(identifier__in=[s.identifier for s in scans])}
            DispensedPack.objects.bulk_create(
                [
                    DispensedPack(
                        identifier=scan.identifier,
                        product_code=packs[scan.identifier].product_code,
                        gtin=scan.gtin,
                        batch=scan.batch,
                        expiry=scan.expiry,
                        order=order,
                        line_id=scan.line_id,
                        prescription_id=order.prescription_id,
                        patient_id=order.patient_id,
                        pharmacy=pharmacy,
                        dispensed_by=user,
                        dispensed_at=now,
                        event_id=event_id,
                    )
                    for scan in scans
                ]
            )
            order.status = OrderStatus.DISPENSED
            order.dispensed_at = now
            order.dispensed_by = user
            order.save(update_fields=["status", "dispensed_at", "dispensed_by"])
            audit.record(
                user,
                "pharmacy.dispense",
                order,
                patient=order.patient_id,
                hospital=pharmacy.pk,
                detail={"boxes": len(scans), "event": event_id, "prescription": order.prescription_id},
            )
            order_id_ = order.pk
            transaction.on_commit(
                lambda: _tell_patient(
                    order_id_,
                    "pharmacy.order.dispensed",
                    _("Your medicine (order %(number)s) has been dispensed"),
                    _("The pharmacist has dispensed order %(number)s; it will be handed to the courier."),
                )
            )
        else:
            audit.record(
                user,
                "pharmacy.dispense",
                order,
                patient=order.patient_id,
                hospital=pharmacy.pk,
                outcome=AuditOutcome.DENIED,
                detail={"identifier": refused[1], "reason": refused[0].code},
            )
    if refused is not None:
        raise DispenseRefused(refused[0].error, field="code", **refused[0].params)
    return order


# --- delivery ------------------------------------------------------------------------------------------------
def _identifiers_of(scanned: list[str]) -> list[str]:
    texts = [t.strip() for t in scanned if t and t.strip()]
    ensure(texts, errors.NOTHING_SCANNED, field="codes")
    ensure(len(texts) <= _max_codes(), errors.TOO_MANY_CODES, field="codes", limit=_max_codes())
    identifiers = []
    unreadable = []
    for text in texts:
        try:
            identifiers.append(codes.parse(text).identifier)
        except DomainError as exc:
            unreadable.append(f"{text[:60]} ({exc.message})")
    if unreadable:
        raise DomainError(errors.UNREADABLE_CODES, field="codes", codes="; ".join(unreadable))
    return list(dict.fromkeys(identifiers))


def _short(identifier: str) -> str:
    described = state.describe_identifier(identifier)
    return (described.serial or described.china_code) if described is not None else identifier


def _ensure_exactly_the_boxes(order: Order, identifiers: list[str]) -> list[str]:
    expected = list(order.dispensed_packs.order_by("pk").values_list("identifier", flat=True))
    missing = [i for i in expected if i not in identifiers]
    extra = [i for i in identifiers if i not in expected]
    if missing or extra:
        raise DomainError(
            errors.HANDOVER_MISMATCH,
            field="codes",
            missing=", ".join(_short(i) for i in missing) or "—",
            extra=", ".join(extra) or "—",
        )
    return expected


def hand_over_to_courier(user: User, order_id: int, scanned: list[str]) -> Order:
    """The courier takes a dispensed order at the pharmacy by scanning each of its boxes: an EPCIS
    departing / in_transit event at the pharmacy; the order is on its way with this courier."""
    identifiers = _identifiers_of(scanned)
    with transaction.atomic():
        order = lock_order(order_id)
        pharmacy = access.require_courier(user, order.pharmacy_id)
        ensure(order.status == OrderStatus.DISPENSED and order.courier_id is None, errors.NOT_READY_FOR_COURIER)
        boxes = _ensure_exactly_the_boxes(order, identifiers)
        document = events.object_event(state.COURIER_HANDOVER, boxes, location=pharmacy)
        (event_id,) = events.capture(user, [document])
        order.status = OrderStatus.IN_TRANSIT
        order.courier = user
        order.handed_over_at = clock.now()
        order.save(update_fields=["status", "courier", "handed_over_at"])
        audit.record(
            user,
            "pharmacy.order.handover",
            order,
            patient=order.patient_id,
            hospital=pharmacy.pk,
            detail={"boxes": len(boxes), "event": event_id},
        )
        order_id_ = order.pk
        if order.fulfilment == Fulfilment.DELIVERY:
            title = _("Order %(number)s is on its way")
            body = _(
                "The courier has your medicine (order %(number)s). "
                "Give the courier the delivery code shown on your order page."
            )
        else:
            title = _("Order %(number)s is on its way to the station")
            body = _("Order %(number)s is on its way to %(station)s; you will be told when it can be picked up.")
        transaction.on_commit(lambda: _tell_patient(order_id_, "pharmacy.order.in_transit", title, body))
    return order


def deliver_with_code(user: User, order_id: int, code: str) -> Order:
    """The courier hands the medicine over at the door when the patient's side gives the one-time
    code. Wrong codes are counted (and committed); after the limit the code is locked."""
    wrong: tuple[int, bool] | None = None
    with transaction.atomic():
        order = lock_order(order_id)
        access.require_courier(user, order.pharmacy_id)
        ensure(order.courier_id == user.pk, errors.NOT_YOUR_DELIVERY)
        ensure(order.fulfilment == Fulfilment.DELIVERY, errors.NOT_A_HOME_DELIVERY)
        ensure(order.status == OrderStatus.IN_TRANSIT, errors.NOT_IN_TRANSIT)
        ensure(not delivery.is_locked(order), errors.CODE_LOCKED, field="code")
        ensure((code or "").strip(), errors.CODE_REQUIRED, field="code")
        if not delivery.matches(order, code):
            Order.objects.filter(pk=order.pk).update(delivery_code_failures=F("delivery_code_failures") + 1)
            order.refresh_from_db(fields=["delivery_code_failures"])
            audit.record(
                user,
                "pharmacy.order.deliver",
                order,
                patient=order.patient_id,
                hospital=order.pharmacy_id,
                outcome=AuditOutcome.DENIED,
                detail={"reason": "wrong_code", "failures": order.delivery_code_failures},
            )
            wrong = (delivery.attempts_left(order), delivery.is_locked(order))
        else:
            boxes = list(order.dispensed_packs.order_by("pk").values_list("identifier", flat=True))
            document = events.object_event(state.DELIVERY, boxes, read_point=events.delivery_point_uri(order.number))
            (event_id,) = events.capture(user, [document])
            now = clock.now()
            order.status = OrderStatus.DELIVERED
            order.delivered_at = now
            order.delivered_by = user
            order.save(update_fields=["status", "delivered_at", "delivered_by"])
            audit.record(
                user,
                "pharmacy.order.deliver",
                order,
                patient=order.patient_id,
                hospital=order.pharmacy_id,
                detail={"boxes": len(boxes), "event": event_id, "by": "code"},
            )
            order_id_ = order.pk
            transaction.on_commit(
                lambda: _tell_patient(
                    order_id_,
                    "pharmacy.order.delivered",
                    _("Order %(number)s was delivered"),
                    _(
                        "Your medicine (order %(number)s) was delivered. "
                        "You can follow each box's way on the order page."
                    ),
                )
            )
    if wrong is not None:
        left, locked = wrong
        if locked:
            raise DomainError(errors.CODE_LOCKED, field="code")
        raise DomainError(errors.CODE_WRONG, field="code", left=left)
    return order


def new_delivery_code(user: User, order_id: int) -> Order:
    """The patient's side asks for a new delivery code (the old one stops working, attempts reset)."""
    with transaction.atomic():
        order = lock_order(order_id)
        if not (order.buyer_id == user.pk or (user.is_authenticated and acts_for(user, order.patient))):
            raise NotFound(errors.ORDER_NOT_FOUND)
        ensure(order.fulfilment == Fulfilment.DELIVERY, errors.NOT_A_HOME_DELIVERY)
        ensure(order.status not in (OrderStatus.DELIVERED, OrderStatus.CANCELLED), errors.NOT_IN_TRANSIT)
        order.delivery_code_version += 1
        order.delivery_code_failures = 0
        order.delivery_code_hash = delivery.hash_of(order, delivery.code_for(order))
        order.save(update_fields=["delivery_code_version", "delivery_code_failures", "delivery_code_hash"])
        audit.record(
            user,
            "pharmacy.order.new_code",
            order,
            patient=order.patient_id,
            hospital=order.pharmacy_id,
            detail={"version": order.delivery_code_version},
        )
    return order


def receive_at_station(user: User, order_id: int, scanned: list[str]) -> Order:
    """The station operator takes the order from the courier by scanning its boxes: an EPCIS event at
    the station; the patient's side is told it can be picked up."""
    identifiers = _identifiers_of(scanned)
    with transaction.atomic():
        order = lock_order(order_id)
        access.require_station_operator(user, order.station_id)
        ensure(order.fulfilment == Fulfilment.STATION_PICKUP, errors.NOT_A_STATION_PICKUP)
        ensure(order.status == OrderStatus.IN_TRANSIT, errors.NOT_IN_TRANSIT)
        boxes = _ensure_exactly_the_boxes(order, identifiers)
        document = events.object_event(events.STATION_ARRIVAL, boxes, location=order.station)
        (event_id,) = events.capture(user, [document])
        order.status = OrderStatus.AT_STATION
        order.arrived_at_station_at = clock.now()
        order.save(update_fields=["status", "arrived_at_station_at"])
        audit.record(
            user,
            "pharmacy.order.at_station",
            order,
            patient=order.patient_id,
            hospital=order.station_id,
            detail={"boxes": len(boxes), "event": event_id},
        )
        order_id_ = order.pk
        transaction.on_commit(
            lambda: _tell_patient(
                order_id_,
                "pharmacy.order.at_station",
                _("Order %(number)s is ready for pickup"),
                _("Your medicine (order %(number)s) is at %(station)s. Bring your identity document."),
            )
        )
    return order


def pick_up_at_station(user: User, order_id: int, *, identity_checked: bool, cash_received: bool = False) -> Order:
    """The station operator hands the medicine to the patient (or their guardian) after checking
    the identity document (R18), taking the cash if it is paid at the station: an EPCIS delivery
    event at the station."""
    with transaction.atomic():
        order = lock_order(order_id)
        access.require_station_operator(user, order.station_id)
        ensure(order.fulfilment == Fulfilment.STATION_PICKUP, errors.NOT_A_STATION_PICKUP)
        ensure(order.status == OrderStatus.AT_STATION, errors.NOT_AT_STATION)
        ensure(identity_checked, errors.IDENTITY_NOT_CHECKED, field="identity_checked")
        now = clock.now()
        if order.payment_method == PaymentMethod.CASH_AT_STATION:
            ensure(cash_received, errors.CASH_NOT_CONFIRMED, field="cash_received", amount=order.total)
            updated = Payment.objects.filter(order=order, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.SUCCEEDED, settled_at=now, collected_by=user
            )
            ensure(updated == 1, errors.NOT_AWAITING_PAYMENT)
            order.paid_at = now
        boxes = list(order.dispensed_packs.order_by("pk").values_list("identifier", flat=True))
        document = events.object_event(state.DELIVERY, boxes, location=order.station)
        (event_id,) = events.capture(user, [document])
        order.status = OrderStatus.DELIVERED
        order.delivered_at = now
        order.delivered_by = user
        order.save(update_fields=["status", "delivered_at", "delivered_by", "paid_at"])
        audit.record(
            user,
            "pharmacy.order.deliver",
            order,
            patient=order.patient_id,
            hospital=order.station_id,
            detail={"boxes": len(boxes), "event": event_id, "by": "station", "cash": cash_received},
        )
    return order
