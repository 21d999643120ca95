"""Pharmacy API: stock and receiving, orders (``Idempotency-Key``), pay, cancel, the dispensing
scans, hand-over, delivery with the patient's code, station pickup. Thin: parse, call one action or
read helper, answer. Refusals are ``{"error": {"code", "message", "fields"}}`` with their status."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.http import HttpRequest
from ninja import Field, Header, Router, Schema, Status
from ninja.security import django_auth

from nethospital.accounts.access import authenticated_user
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization
from nethospital.pharmacy import access, actions, delivery, stock
from nethospital.pharmacy.choices import Fulfilment, OrderStatus, PaymentMethod
from nethospital.pharmacy.models import Order, Payment
from nethospital.prescriptions import access as prescription_access
from nethospital.traceability.models import Pack

router = Router(tags=["pharmacy"])


# --- schemas -----------------------------------------------------------------------------------
class PharmacyOut(Schema):
    id: int
    name: str
    city: str
    address: str
    can_supply: bool | None = None  # for the prescription asked about
    total: Decimal | None = None
    reason: str = ""


class StationOut(Schema):
    id: int
    name: str
    county: str
    address: str


class ProductStockOut(Schema):
    drug_pack_id: int
    gtin: str
    product: str
    is_prescription: bool
    sellable: int
    reserved: int
    available: int
    earliest_expiry: dt.date | None
    price: Decimal | None
    on_sale: bool


class BoxOut(Schema):
    identifier: str
    gtin: str
    batch: str
    expiry: dt.date | None
    received_at: dt.datetime | None


class CodesIn(Schema):
    codes: list[str] = Field(..., min_length=1, max_length=500)


class ReceiptOut(Schema):
    receipt_id: int
    event_id: str
    in_stock: list[BoxOut]
    not_genuine: list[str]
    not_stock: list[str]


class PriceIn(Schema):
    price: Decimal = Field(..., gt=0, le=100000, max_digits=10, decimal_places=2)
    on_sale: bool = True


class OtcIn(Schema):
    drug_pack_id: int
    quantity: int = Field(..., ge=1, le=actions.MAX_OTC_QUANTITY)


class OrderIn(Schema):
    pharmacy_id: int
    prescription_id: int | None = None
    patient_id: int | None = None  # for an order of non-prescription drugs only
    otc: list[OtcIn] = Field(default_factory=list, max_length=actions.MAX_LINES)
    fulfilment: Fulfilment
    recipient_name: str = Field("", max_length=50)
    recipient_phone: str = Field("", max_length=11)
    address: str = Field("", max_length=200)
    station_id: int | None = None
    payment_method: PaymentMethod
    notice_confirmed: bool = False  # R16


class LineOut(Schema):
    id: int
    product: str
    gtin: str
    quantity: int
    unit_price: Decimal
    is_prescription: bool


class PaymentOut(Schema):
    id: int
    method: str
    status: str
    amount: Decimal
    provider_reference: str
    failure_reason: str
    refunded: Decimal


class OrderOut(Schema):
    id: int
    number: str
    status: str
    pharmacy_id: int
    patient_id: int
    prescription_id: int | None
    fulfilment: str
    station_id: int | None
    total: Decimal
    payment_method: str
    prescription_lines: list[LineOut]  # shown apart from the others (R16)
    other_lines: list[LineOut]
    payments: list[PaymentOut]
    boxes: list[str]
    created_at: dt.datetime
    dispensed_at: dt.datetime | None
    delivered_at: dt.datetime | None
    delivery_code: str | None = None  # the patient's side only, while it can be used


class PayIn(Schema):
    card: str = Field("", max_length=24)


class CancelIn(Schema):
    reason: str = Field("", max_length=200)


class CodeIn(Schema):
    code: str = Field(..., min_length=1, max_length=300)


class ScanOut(Schema):
    scan_id: int
    identifier: str
    line_id: int
    line_scanned: int
    all_scanned: bool


class PickingOut(Schema):
    line_id: int
    product: str
    wanted: int
    scanned: list[str]
    suggested: list[BoxOut]


class PickupIn(Schema):
    identity_checked: bool = False
    cash_received: bool = False


# --- helpers -----------------------------------------------------------------------------------
def _box(pack: Pack) -> BoxOut:
    return BoxOut(
        identifier=pack.identifier, gtin=pack.gtin, batch=pack.batch, expiry=pack.expiry, received_at=pack.received_at
    )


def _payment(payment: Payment) -> PaymentOut:
    refunded = sum((r.amount for r in payment.refunds.all() if r.status == "succeeded"), Decimal("0.00"))
    return PaymentOut(
        id=payment.pk,
        method=payment.method,
        status=payment.status,
        amount=payment.amount,
        provider_reference=payment.provider_reference,
        failure_reason=payment.failure_reason,
        refunded=refunded,
    )


def order_out(order: Order, *, role: str = "") -> OrderOut:
    lines = [
        LineOut(
            id=line.pk,
            product=str(line.drug),
            gtin=line.drug_pack.gtin,
            quantity=line.quantity,
            unit_price=line.unit_price,
            is_prescription=line.is_prescription,
        )
        for line in order.lines.select_related("drug", "drug_pack").order_by("position")
    ]
    shows_code = (
        role == "patient"
        and order.fulfilment == Fulfilment.DELIVERY
        and order.status in (OrderStatus.AWAITING_DISPENSING, OrderStatus.DISPENSED, OrderStatus.IN_TRANSIT)
        and not delivery.is_locked(order)
    )
    return OrderOut(
        id=order.pk,
        number=order.number,
        status=order.status,
        pharmacy_id=order.pharmacy_id,
        patient_id=order.patient_id,
        prescription_id=order.prescription_id,
        fulfilment=order.fulfilment,
        station_id=order.station_id,
        total=order.total,
        payment_method=order.payment_method,
        prescription_lines=[line for line in lines if line.is_prescription],
        other_lines=[line for line in lines if not line.is_prescription],
        payments=[_payment(p) for p in order.payments.prefetch_related("refunds").order_by("pk")],
        boxes=list(order.dispensed_packs.order_by("pk").values_list("identifier", flat=True)),
        created_at=order.created_at,
        dispensed_at=order.dispensed_at,
        delivered_at=order.delivered_at,
        delivery_code=delivery.code_for(order) if shows_code else None,
    )


def _seen_by(request: HttpRequest, order_id: int) -> OrderOut:
    order = access.access_order(authenticated_user(request), order_id)
    return order_out(order, role=getattr(order, "viewer_role", ""))


# --- where to buy ------------------------------------------------------------------------------
@router.get("/pharmacy/pharmacies", response=list[PharmacyOut], auth=django_auth)
def pharmacies(request: HttpRequest, prescription_id: int | None = None) -> list[PharmacyOut]:
    """Pharmacies; with ``prescription_id``, whether each can supply it now and for how much."""
    user = authenticated_user(request)
    prescription = prescription_access.access_prescription(user, prescription_id) if prescription_id else None
    result = []
    for pharmacy in Organization.objects.filter(kind=OrganizationKind.PHARMACY, is_active=True).order_by("pk"):
        out = PharmacyOut(id=pharmacy.pk, name=pharmacy.name, city=pharmacy.city, address=pharmacy.address)
        if prescription is not None:
            plan = stock.supply_plan(pharmacy.pk, prescription)
            out.can_supply, out.reason = plan.can_supply, plan.refusal
            out.total = plan.total if plan.can_supply else None
        result.append(out)
    return result


@router.get("/pharmacy/stations", response=list[StationOut], auth=django_auth)
def stations(request: HttpRequest) -> list[StationOut]:
    rows = Organization.objects.filter(kind=OrganizationKind.SERVICE_STATION, is_active=True).order_by("county", "pk")
    return [StationOut(id=s.pk, name=s.name, county=s.county, address=s.address) for s in rows]


# --- stock ---------------------------------------------------------------------------------------
@router.get("/pharmacy/{int:pharmacy_id}/stock", response=list[ProductStockOut], auth=django_auth, tags=["staff"])
def stock_by_product(request: HttpRequest, pharmacy_id: int) -> list[ProductStockOut]:
    pharmacy = access.require_pharmacy_staff(authenticated_user(request), pharmacy_id)
    return [
        ProductStockOut(
            drug_pack_id=row.drug_pack.pk,
            gtin=row.drug_pack.gtin,
            product=str(row.drug_pack.drug),
            is_prescription=row.drug_pack.drug.is_prescription,
            sellable=row.sellable,
            reserved=row.reserved,
            available=row.available,
            earliest_expiry=row.earliest_expiry,
            price=row.price,
            on_sale=row.on_sale,
        )
        for row in stock.stock_by_product(pharmacy.pk)
    ]


@router.get("/pharmacy/{int:pharmacy_id}/stock/boxes", response=list[BoxOut], auth=django_auth, tags=["staff"])
def stock_boxes(request: HttpRequest, pharmacy_id: int, drug_pack_id: int | None = None) -> list[BoxOut]:
    """Sellable boxes, earliest expiry first (FEFO)."""
    pharmacy = access.require_pharmacy_staff(authenticated_user(request), pharmacy_id)
    boxes = stock.sellable_packs(pharmacy.pk)
    if drug_pack_id is not None:
        boxes = boxes.filter(drug_pack_id=drug_pack_id)
    return [_box(p) for p in boxes.order_by("expiry", "received_at", "identifier")[:1000]]


@router.post("/pharmacy/{int:pharmacy_id}/receive", response={201: ReceiptOut}, auth=django_auth, tags=["staff"])
def receive(request: HttpRequest, pharmacy_id: int, payload: CodesIn) -> Status:
    """Receive stock by scanning cases, pallets or boxes (one EPCIS receiving event)."""
    result = actions.receive_stock(authenticated_user(request), pharmacy_id, payload.codes)
    return Status(
        201,
        ReceiptOut(
            receipt_id=result.receipt.pk,
            event_id=result.receipt.event_id,
            in_stock=[_box(p) for p in result.in_stock],
            not_genuine=[p.identifier for p in result.not_genuine],
            not_stock=[p.identifier for p in result.not_stock],
        ),
    )


@router.put("/pharmacy/{int:pharmacy_id}/prices/{int:drug_pack_id}", response=ProductStockOut, auth=django_auth)
def set_price(request: HttpRequest, pharmacy_id: int, drug_pack_id: int, payload: PriceIn) -> ProductStockOut:
    offer = actions.set_price(
        authenticated_user(request), pharmacy_id, drug_pack_id, payload.price, on_sale=payload.on_sale
    )
    row = next(r for r in stock.stock_by_product(pharmacy_id) if r.drug_pack.pk == offer.drug_pack_id)
    return ProductStockOut(
        drug_pack_id=row.drug_pack.pk,
        gtin=row.drug_pack.gtin,
        product=str(row.drug_pack.drug),
        is_prescription=row.drug_pack.drug.is_prescription,
        sellable=row.sellable,
        reserved=row.reserved,
        available=row.available,
        earliest_expiry=row.earliest_expiry,
        price=row.price,
        on_sale=row.on_sale,
    )


@router.get("/pharmacy/{int:pharmacy_id}/orders", response=list[OrderOut], auth=django_auth, tags=["staff"])
def pharmacy_orders(request: HttpRequest, pharmacy_id: int, status: OrderStatus | None = None) -> list[OrderOut]:
    pharmacy = access.require_pharmacy_staff(authenticated_user(request), pharmacy_id)
    rows = Order.objects.filter(pharmacy=pharmacy)
    if status is not None:
        rows = rows.filter(status=status.value)
    return [order_out(o, role="pharmacy") for o in rows.order_by("created_at")[:200]]


# --- orders (the patient's side) ---------------------------------------------------------------------
@router.post("/pharmacy/orders", response={200: OrderOut, 201: OrderOut}, auth=django_auth)
def create_order(
    request: HttpRequest, payload: OrderIn, idempotency_key: str = Header(None, alias="Idempotency-Key")
) -> Status:
    """Order an approved prescription (and/or non-prescription items). Retrying with the same
    Idempotency-Key returns the same order (200)."""
    user = authenticated_user(request)
    placed = actions.create_order(
        user,
        pharmacy_id=payload.pharmacy_id,
        how=actions.Delivery(
            fulfilment=payload.fulfilment.value,
            recipient_name=payload.recipient_name,
            recipient_phone=payload.recipient_phone,
            address=payload.address,
            station_id=payload.station_id,
        ),
        payment_method=payload.payment_method.value,
        idempotency_key=idempotency_key,
        prescription_id=payload.prescription_id,
        patient_id=payload.patient_id,
        otc=[actions.OtcItem(o.drug_pack_id, o.quantity) for o in payload.otc],
        notice_confirmed=payload.notice_confirmed,
    )
    return Status(201 if placed.created else 200, _seen_by(request, placed.order.pk))


@router.get("/pharmacy/orders", response=list[OrderOut], auth=django_auth)
def my_orders(request: HttpRequest) -> list[OrderOut]:
    return [order_out(o, role="patient") for o in access.orders_for_patient_side(authenticated_user(request))[:100]]


@router.get("/pharmacy/orders/{int:order_id}", response=OrderOut, auth=django_auth)
def get_order(request: HttpRequest, order_id: int) -> OrderOut:
    return _seen_by(request, order_id)


@router.post("/pharmacy/orders/{int:order_id}/pay", response=OrderOut, auth=django_auth)
def pay(
    request: HttpRequest, order_id: int, payload: PayIn, idempotency_key: str = Header(None, alias="Idempotency-Key")
) -> OrderOut:
    """Pay online (sandbox: card 4000 0000 0000 0002 is declined, 402)."""
    actions.pay_order(authenticated_user(request), order_id, idempotency_key=idempotency_key, token=payload.card)
    return _seen_by(request, order_id)


@router.post("/pharmacy/orders/{int:order_id}/cancel", response=OrderOut, auth=django_auth)
def cancel(request: HttpRequest, order_id: int, payload: CancelIn) -> OrderOut:
    actions.cancel_order(authenticated_user(request), order_id, payload.reason)
    return _seen_by(request, order_id)


@router.post("/pharmacy/orders/{int:order_id}/delivery-code", response=OrderOut, auth=django_auth)
def new_code(request: HttpRequest, order_id: int) -> OrderOut:
    """A new one-time delivery code (the old one stops working; wrong attempts start again)."""
    actions.new_delivery_code(authenticated_user(request), order_id)
    return _seen_by(request, order_id)


# --- dispensing ----------------------------------------------------------------------------------
@router.get("/pharmacy/orders/{int:order_id}/picking", response=list[PickingOut], auth=django_auth, tags=["staff"])
def picking(request: HttpRequest, order_id: int) -> list[PickingOut]:
    """FEFO picking suggestion for each line, and the boxes already scanned."""
    user = authenticated_user(request)
    order = access.access_order(user, order_id, "picking")
    access.require_pharmacist(user, order.pharmacy_id)
    result = []
    for line in order.lines.select_related("drug", "drug_pack").order_by("position"):
        scanned = list(line.scans.filter(released_at__isnull=True).values_list("identifier", flat=True))
        missing = max(0, line.quantity - len(scanned))
        suggested = stock.suggestion_for(line, order.pharmacy_id, limit=missing) if missing else []
        result.append(
            PickingOut(
                line_id=line.pk,
                product=str(line.drug),
                wanted=line.quantity,
                scanned=scanned,
                suggested=[_box(p) for p in suggested],
            )
        )
    return result


@router.post("/pharmacy/orders/{int:order_id}/dispense/scan", response=ScanOut, auth=django_auth, tags=["staff"])
def scan(request: HttpRequest, order_id: int, payload: CodeIn) -> ScanOut:
    """Scan one box for the order; 409 with the reason when the gate refuses it."""
    outcome = actions.scan_box(authenticated_user(request), order_id, payload.code)
    return ScanOut(
        scan_id=outcome.scan.pk,
        identifier=outcome.scan.identifier,
        line_id=outcome.line.pk,
        line_scanned=outcome.line_scanned,
        all_scanned=outcome.all_scanned,
    )


@router.delete("/pharmacy/orders/{int:order_id}/dispense/scans/{int:scan_id}", response={204: None}, auth=django_auth)
def release(request: HttpRequest, order_id: int, scan_id: int) -> Status:
    actions.release_scan(authenticated_user(request), order_id, scan_id)
    return Status(204, None)


@router.post("/pharmacy/orders/{int:order_id}/dispense", response=OrderOut, auth=django_auth, tags=["staff"])
def dispense(request: HttpRequest, order_id: int) -> OrderOut:
    """Every box scanned: record the dispensing and mark the prescription used, in one transaction."""
    actions.complete_dispensing(authenticated_user(request), order_id)
    return _seen_by(request, order_id)


# --- delivery ----------------------------------------------------------------------------------------
@router.get("/pharmacy/courier/orders", response=list[OrderOut], auth=django_auth, tags=["courier"])
def courier_orders(request: HttpRequest) -> list[OrderOut]:
    return [order_out(o, role="courier") for o in access.courier_orders(authenticated_user(request))[:200]]


@router.post("/pharmacy/orders/{int:order_id}/handover", response=OrderOut, auth=django_auth, tags=["courier"])
def handover(request: HttpRequest, order_id: int, payload: CodesIn) -> OrderOut:
    actions.hand_over_to_courier(authenticated_user(request), order_id, payload.codes)
    return _seen_by(request, order_id)


@router.post("/pharmacy/orders/{int:order_id}/deliver", response=OrderOut, auth=django_auth, tags=["courier"])
def deliver(request: HttpRequest, order_id: int, payload: CodeIn) -> OrderOut:
    actions.deliver_with_code(authenticated_user(request), order_id, payload.code)
    return _seen_by(request, order_id)


@router.get("/pharmacy/station/orders", response=list[OrderOut], auth=django_auth, tags=["station"])
def station_orders(request: HttpRequest) -> list[OrderOut]:
    return [order_out(o, role="station") for o in access.station_orders(authenticated_user(request))[:200]]


@router.post("/pharmacy/orders/{int:order_id}/station/receive", response=OrderOut, auth=django_auth, tags=["station"])
def station_receive(request: HttpRequest, order_id: int, payload: CodesIn) -> OrderOut:
    actions.receive_at_station(authenticated_user(request), order_id, payload.codes)
    return _seen_by(request, order_id)


@router.post("/pharmacy/orders/{int:order_id}/station/pickup", response=OrderOut, auth=django_auth, tags=["station"])
def pickup(request: HttpRequest, order_id: int, payload: PickupIn) -> OrderOut:
    actions.pick_up_at_station(
        authenticated_user(request),
        order_id,
        identity_checked=payload.identity_checked,
        cash_received=payload.cash_received,
    )
    return _seen_by(request, order_id)
