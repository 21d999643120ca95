"""Pharmacy pages: the patient's order flow and order page (delivery code, each box's journey); the
pharmacy's orders queue, stock, receiving and dispensing screen; the courier's deliveries; the
station operator's pickups. Thin (CONVENTIONS): parse the form, call one action or read helper,
render. A refusal is shown on the page it came from, with its 4xx status; the dispensing screen
swaps its panel with htmx and works without JavaScript too."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.core import clock
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, PERMISSION_DENIED, DomainError
from nethospital.core.idempotency import new_key
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization
from nethospital.pharmacy import access, actions, delivery, stock
from nethospital.pharmacy.choices import CANCELLABLE_STATUSES, Fulfilment, OrderStatus, PaymentMethod
from nethospital.pharmacy.forms import (
    CancelForm,
    CodesForm,
    DeliverForm,
    OrderForm,
    OtcOrderForm,
    PayForm,
    PickupForm,
    PriceForm,
    ScanForm,
)
from nethospital.pharmacy.models import DispensedPack, DispenseScan, Order, StockReceipt
from nethospital.prescriptions import access as prescription_access
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.traceability.models import Pack

INVALID_FORM_STATUS = 422
RECENT = dt.timedelta(days=7)


# --- helpers -------------------------------------------------------------------------------------
def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    if exc.code == LOGIN_REQUIRED.code or not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    status = exc.status if 400 <= exc.status < 500 else 400
    context = {"error": exc, "is_mfa_required": exc.code == MFA_REQUIRED.code}
    return render(request, "error.html", context, status=status)


def _status(exc: DomainError) -> int:
    return exc.status if 400 <= exc.status < 500 else 400


def show_errors(form: Any, exc: DomainError) -> None:
    field_errors = exc.field_errors()
    aliases = {"phone": "recipient_phone", "notice": "notice", "items": None}
    for name, texts in field_errors.items():
        target = aliases.get(name, name)
        for text in texts:
            form.add_error(target if target in form.fields else None, text)
    if not field_errors:
        form.add_error(None, exc.message)


def _lines(order: Order) -> dict[str, list[Any]]:
    """Prescription and non-prescription lines, apart (R16)."""
    lines = list(order.lines.select_related("drug_pack__drug").order_by("position"))
    return {
        "rx_lines": [line for line in lines if line.is_prescription],
        "otc_lines": [line for line in lines if not line.is_prescription],
    }


def _boxes(order: Order) -> list[DispensedPack]:
    return list(order.dispensed_packs.order_by("pk"))


# --- the patient's side --------------------------------------------------------------------------
@require_GET
def my_orders(request: HttpRequest) -> HttpResponse:
    """The patient's side: their orders, and the approved prescriptions that can be ordered."""
    user = _user(request)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    orders = list(access.orders_for_patient_side(user)[:100])
    now = clock.now()
    approved = [
        rx
        for rx in prescription_access.prescriptions_for_patient_side(user).filter(status=PrescriptionStatus.APPROVED)
        if rx.valid_until is None or rx.valid_until > now
    ]
    ordered = set(
        Order.objects.filter(prescription_id__in=[rx.pk for rx in approved])
        .exclude(status=OrderStatus.CANCELLED)
        .values_list("prescription_id", flat=True)
    )
    to_order = [rx for rx in approved if rx.pk not in ordered]
    return render(
        request,
        "pharmacy/my_orders.html",
        {
            "orders": orders,
            "to_order": [(rx, access.may_buy_for(user, rx.patient)) for rx in to_order],
        },
    )


def _new_order_context(request: HttpRequest, prescription: Any, pharmacy: Organization | None) -> dict[str, Any]:
    pharmacies = Organization.objects.filter(kind=OrganizationKind.PHARMACY, is_active=True).order_by("pk")
    plans = [(p, stock.supply_plan(p.pk, prescription)) for p in pharmacies]
    return {
        "prescription": prescription,
        "items": list(prescription.items.select_related("drug").order_by("position")),
        "plans": plans,
        "pharmacy": pharmacy,
        "plan": next((plan for p, plan in plans if pharmacy is not None and p.pk == pharmacy.pk), None),
    }


def _stations() -> Any:
    return Organization.objects.filter(kind=OrganizationKind.SERVICE_STATION, is_active=True).order_by("county", "pk")


@require_http_methods(["GET", "POST"])
def new_order(request: HttpRequest, prescription_id: int) -> HttpResponse:
    """Order the medicine of an approved prescription: choose a pharmacy, how to receive it, OTC
    extras; confirm the R16 notice; then pay (or pay cash at the station)."""
    user = _user(request)
    try:
        prescription = prescription_access.access_prescription(user, prescription_id, "order")
        if getattr(prescription, "viewer_role", "") != "patient":
            raise DomainError(PERMISSION_DENIED)
    except DomainError as exc:
        return error_page(request, exc)
    pharmacy_id = request.POST.get("pharmacy") or request.GET.get("pharmacy")
    pharmacy = None
    if pharmacy_id and str(pharmacy_id).isdigit():
        pharmacy = Organization.objects.filter(
            pk=int(pharmacy_id), kind=OrganizationKind.PHARMACY, is_active=True
        ).first()
    context = _new_order_context(request, prescription, pharmacy)
    context["may_buy"] = access.may_buy_for(user, prescription.patient)
    if pharmacy is None:
        return render(request, "pharmacy/new_order.html", context)
    otc = stock.otc_offers(pharmacy.pk)
    patient_phone = prescription.patient.phone
    form = OrderForm(
        request.POST or None,
        stations=_stations(),
        otc_offers=otc,
        initial={
            "idempotency_key": new_key(),
            "recipient_name": prescription.patient.legal_name,
            "recipient_phone": patient_phone,
        },
    )
    status = 200
    if request.method == "POST":
        placed = _place_order(request, form, pharmacy, prescription_id=prescription.pk)
        if isinstance(placed, HttpResponse):
            return placed
        status = placed
    context["form"] = form
    return render(request, "pharmacy/new_order.html", context, status=status)


def _place_order(request: HttpRequest, form: OrderForm, pharmacy: Organization, **what: Any) -> HttpResponse | int:
    """Place the order a valid form describes (``what``: its prescription; an OTC-only form names its
    patient itself): a redirect to it, or the status to render the form again with its errors."""
    if not form.is_valid():
        return INVALID_FORM_STATUS
    data = form.cleaned_data
    if "patient" in data:
        what = {**what, "patient_id": data["patient"]}
    how = actions.Delivery(
        fulfilment=data["fulfilment"],
        recipient_name=data["recipient_name"],
        recipient_phone=data["recipient_phone"],
        address=data["address"],
        station_id=data["station"].pk if data["station"] else None,
    )
    try:
        placed = actions.create_order(
            _user(request),
            pharmacy_id=pharmacy.pk,
            how=how,
            payment_method=data["payment_method"],
            idempotency_key=data["idempotency_key"],
            otc=[actions.OtcItem(pack_id, qty) for pack_id, qty in form.otc_quantities().items()],
            notice_confirmed=bool(data.get("notice")),
            **what,
        )
    except DomainError as exc:
        show_errors(form, exc)
        return _status(exc)
    messages.success(request, _("Order %(number)s placed.") % {"number": placed.order.number})
    return redirect("pharmacy:order", placed.order.pk)


@require_http_methods(["GET", "POST"])
def new_otc_order(request: HttpRequest) -> HttpResponse:
    """Non-prescription medicine without a prescription: choose a pharmacy that has some in stock,
    for whom (oneself or someone one is guardian of, R18), the quantities, how to receive it, payment."""
    user = _user(request)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    patients = access.buyable_patients(user)
    pharmacies = Organization.objects.filter(kind=OrganizationKind.PHARMACY, is_active=True).order_by("pk")
    offers = [(p, stock.otc_offers(p.pk)) for p in pharmacies]
    context: dict[str, Any] = {"patients": patients, "pharmacies": [(p, o) for p, o in offers if o]}
    pharmacy_id = request.POST.get("pharmacy") or request.GET.get("pharmacy")
    pharmacy, otc = next(((p, o) for p, o in offers if o and str(p.pk) == str(pharmacy_id)), (None, []))
    context["pharmacy"] = pharmacy
    if pharmacy is None or not patients:
        return render(request, "pharmacy/new_otc_order.html", context)
    form = OtcOrderForm(
        request.POST or None,
        stations=_stations(),
        otc_offers=otc,
        patients=[(p.pk, p.legal_name) for p in patients],
        initial={
            "idempotency_key": new_key(),
            "patient": patients[0].pk,
            "recipient_name": patients[0].legal_name,
            "recipient_phone": patients[0].phone,
        },
    )
    status = 200
    if request.method == "POST":
        placed = _place_order(request, form, pharmacy)  # for the patient chosen in the form
        if isinstance(placed, HttpResponse):
            return placed
        status = placed
    context["form"] = form
    return render(request, "pharmacy/new_otc_order.html", context, status=status)


def _order_context(request: HttpRequest, order: Order, **extra: Any) -> dict[str, Any]:
    role = getattr(order, "viewer_role", "")
    user = _user(request)
    show_code = (
        role == "patient"
        and order.fulfilment == Fulfilment.DELIVERY
        and order.status in (OrderStatus.AWAITING_DISPENSING, OrderStatus.DISPENSED, OrderStatus.IN_TRANSIT)
    )
    context: dict[str, Any] = {
        "order": order,
        "role": role,
        **_lines(order),
        "boxes": _boxes(order),
        "payments": list(order.payments.prefetch_related("refunds").order_by("pk")),
        "may_buy": access.may_buy_for(user, order.patient) or order.buyer_id == user.pk,
        "cancellable": order.status in CANCELLABLE_STATUSES,
        "delivery_code": delivery.code_for(order) if show_code else "",
        "code_locked": delivery.is_locked(order),
        "pay_form": PayForm(initial={"idempotency_key": new_key()}),
        "cancel_form": CancelForm(),
        "codes_form": CodesForm(),
        "deliver_form": DeliverForm(),
        "pickup_form": PickupForm(),
        "is_cash": order.payment_method == PaymentMethod.CASH_AT_STATION,
    }
    context.update(extra)
    return context


def _order_page(request: HttpRequest, order_id: int, status: int = 200, **extra: Any) -> HttpResponse:
    order = access.access_order(_user(request), order_id)
    return render(request, "pharmacy/order.html", _order_context(request, order, **extra), status=status)


@require_GET
def order(request: HttpRequest, order_id: int) -> HttpResponse:
    try:
        return _order_page(request, order_id)
    except DomainError as exc:
        return error_page(request, exc)


def _after(request: HttpRequest, order_id: int, call: Any, done: str, form_name: str = "") -> HttpResponse:
    """Run one action for an order page form; on refusal show the order page with the reason."""
    try:
        call()
    except DomainError as exc:
        try:
            return _order_page(request, order_id, _status(exc), action_error=exc, action_form=form_name)
        except DomainError as again:
            return error_page(request, again)
    messages.success(request, done)
    return redirect("pharmacy:order", order_id)


@require_POST
def pay(request: HttpRequest, order_id: int) -> HttpResponse:
    form = PayForm(request.POST)
    if not form.is_valid():
        return _after(request, order_id, lambda: actions.pay_order(_user(request), order_id, idempotency_key=""), "")
    data = form.cleaned_data
    return _after(
        request,
        order_id,
        lambda: actions.pay_order(
            _user(request), order_id, idempotency_key=data["idempotency_key"], token=data["card"] or ""
        ),
        _("Paid. The pharmacist will dispense your medicine."),
        "pay",
    )


@require_POST
def cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    """The patient's side cancels (reason optional), or the pharmacy does (reason required)."""
    user = _user(request)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        cancelled = actions.cancel_order(user, order_id, reason)
    except DomainError as exc:
        try:
            return _order_page(request, order_id, _status(exc), action_error=exc, action_form="cancel")
        except DomainError as again:
            return error_page(request, again)
    messages.success(request, _("Order cancelled. Anything paid is refunded."))
    if cancelled.buyer_id != user.pk and cancelled.pharmacy_id in access.pharmacy_ids(user):
        return redirect("pharmacy:queue", cancelled.pharmacy_id)
    return redirect("pharmacy:order", order_id)


@require_POST
def new_code(request: HttpRequest, order_id: int) -> HttpResponse:
    return _after(
        request,
        order_id,
        lambda: actions.new_delivery_code(_user(request), order_id),
        _("A new delivery code was made; the old one no longer works."),
    )


# --- the pharmacy --------------------------------------------------------------------------------
@require_GET
def pharmacy_home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    first = access.pharmacies_of(user).first()
    if first is None:
        return error_page(request, DomainError(access.errors.NOT_PHARMACY_STAFF))
    return redirect("pharmacy:queue", first.pk)


def _staff_context(user: User, pharmacy: Organization) -> dict[str, Any]:
    return {
        "pharmacy": pharmacy,
        "my_pharmacies": list(access.pharmacies_of(user)),
        "is_pharmacist": pharmacy.pk in access.pharmacy_ids(user, Role.PHARMACIST),
    }


@require_GET
def queue(request: HttpRequest, pharmacy_id: int) -> HttpResponse:
    user = _user(request)
    try:
        pharmacy = access.require_pharmacy_staff(user, pharmacy_id)
    except DomainError as exc:
        return error_page(request, exc)
    orders = Order.objects.filter(pharmacy=pharmacy).select_related("patient", "station", "courier")
    since = clock.now() - RECENT
    groups = [
        ("to_dispense", _("Waiting for the pharmacist"), orders.filter(status=OrderStatus.AWAITING_DISPENSING)),
        ("for_courier", _("Dispensed, waiting for the courier"), orders.filter(status=OrderStatus.DISPENSED)),
        ("unpaid", _("Waiting for payment"), orders.filter(status=OrderStatus.AWAITING_PAYMENT)),
        (
            "on_the_way",
            _("On the way"),
            orders.filter(status__in=[OrderStatus.IN_TRANSIT, OrderStatus.AT_STATION]),
        ),
        (
            "done",
            _("Delivered or cancelled in the last 7 days"),
            orders.filter(status__in=[OrderStatus.DELIVERED, OrderStatus.CANCELLED], created_at__gte=since),
        ),
    ]
    context = _staff_context(user, pharmacy)
    context["groups"] = [(key, title, list(rows.order_by("created_at")[:200])) for key, title, rows in groups]
    return render(request, "pharmacy/queue.html", context)


@require_GET
def stock_page(request: HttpRequest, pharmacy_id: int) -> HttpResponse:
    user = _user(request)
    try:
        pharmacy = access.require_pharmacy_staff(user, pharmacy_id)
    except DomainError as exc:
        return error_page(request, exc)
    return render(request, "pharmacy/stock.html", _stock_context(request, user, pharmacy))


def _stock_context(request: HttpRequest, user: User, pharmacy: Organization, **extra: Any) -> dict[str, Any]:
    product = request.GET.get("product", "")
    boxes: list[Pack] = []
    if product.isdigit():
        boxes = list(
            stock.sellable_packs(pharmacy.pk)
            .filter(drug_pack_id=int(product))
            .order_by("expiry", "received_at", "identifier")[:500]
        )
    context = _staff_context(user, pharmacy)
    context.update(
        {
            "rows": stock.stock_by_product(pharmacy.pk),
            "boxes": boxes,
            "product": int(product) if product.isdigit() else None,
            "unsellable": list(stock.unsellable_packs(pharmacy.pk)[:200]),
            "today": clock.today(),
        }
    )
    context.update(extra)
    return context


@require_POST
def set_price(request: HttpRequest, pharmacy_id: int) -> HttpResponse:
    user = _user(request)
    form = PriceForm(request.POST)
    try:
        if not form.is_valid():
            raise DomainError(actions.errors.PRICE_INVALID, field="price")
        data = form.cleaned_data
        actions.set_price(user, pharmacy_id, data["drug_pack"], data["price"], on_sale=data["on_sale"])
    except DomainError as exc:
        try:
            pharmacy = access.require_pharmacy_staff(user, pharmacy_id)
        except DomainError as denied:
            return error_page(request, denied)
        context = _stock_context(request, user, pharmacy, price_error=exc)
        return render(request, "pharmacy/stock.html", context, status=_status(exc))
    messages.success(request, _("Price saved."))
    return redirect("pharmacy:stock", pharmacy_id)


@require_http_methods(["GET", "POST"])
def receive(request: HttpRequest, pharmacy_id: int) -> HttpResponse:
    """Receive stock: scan the cases and pallets (or boxes) that arrived."""
    user = _user(request)
    try:
        pharmacy = access.require_pharmacy_staff(user, pharmacy_id)
    except DomainError as exc:
        return error_page(request, exc)
    form = CodesForm(request.POST or None)
    result = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                result = actions.receive_stock(user, pharmacy.pk, form.code_list())
            except DomainError as exc:
                show_errors(form, exc)
                status = _status(exc)
            else:
                form = CodesForm()
        else:
            status = INVALID_FORM_STATUS
    context = _staff_context(user, pharmacy)
    context.update(
        {
            "form": form,
            "result": result,
            "receipts": list(StockReceipt.objects.filter(pharmacy=pharmacy).select_related("received_by")[:20]),
        }
    )
    return render(request, "pharmacy/receive.html", context, status=status)


def _dispense_context(request: HttpRequest, order: Order, **extra: Any) -> dict[str, Any]:
    lines = list(order.lines.select_related("drug_pack__drug").order_by("position"))
    scans = list(DispenseScan.objects.filter(order=order, released_at__isnull=True))
    rows = []
    for line in lines:
        mine = [scan for scan in scans if scan.line_id == line.pk]
        rows.append(
            {
                "line": line,
                "scans": mine,
                "missing": max(0, line.quantity - len(mine)),
                "suggestion": stock.suggestion_for(line, order.pharmacy_id, limit=max(0, line.quantity - len(mine)))
                if order.status == OrderStatus.AWAITING_DISPENSING
                else [],
            }
        )
    return {
        "order": order,
        "rows": rows,
        "all_scanned": all(row["missing"] == 0 for row in rows),
        "scan_form": extra.pop("scan_form", None) or ScanForm(),
        "pharmacy": order.pharmacy,
        **_lines(order),
        **extra,
    }


def _dispensing_order(request: HttpRequest, order_id: int) -> Order:
    order = access.access_order(_user(request), order_id, "dispense")
    access.require_pharmacist(_user(request), order.pharmacy_id)
    return order


@require_GET
def dispense(request: HttpRequest, order_id: int) -> HttpResponse:
    try:
        order = _dispensing_order(request, order_id)
    except DomainError as exc:
        return error_page(request, exc)
    return render(request, "pharmacy/dispense.html", _dispense_context(request, order))


def _dispense_response(request: HttpRequest, order: Order, status: int = 200, **extra: Any) -> HttpResponse:
    order.refresh_from_db()
    template = "pharmacy/_dispense_panel.html" if request.htmx else "pharmacy/dispense.html"  # type: ignore[attr-defined]
    return render(request, template, _dispense_context(request, order, **extra), status=status)


@require_POST
def scan(request: HttpRequest, order_id: int) -> HttpResponse:
    try:
        order = _dispensing_order(request, order_id)
    except DomainError as exc:
        return error_page(request, exc)
    form = ScanForm(request.POST)
    if not form.is_valid():
        return _dispense_response(request, order, INVALID_FORM_STATUS, scan_form=form)
    try:
        outcome = actions.scan_box(_user(request), order.pk, form.cleaned_data["code"])
    except DomainError as exc:
        return _dispense_response(request, order, _status(exc), refusal=exc, scanned=form.cleaned_data["code"])
    return _dispense_response(request, order, accepted=outcome.scan)


@require_POST
def release(request: HttpRequest, order_id: int, scan_id: int) -> HttpResponse:
    try:
        order = _dispensing_order(request, order_id)
        actions.release_scan(_user(request), order.pk, scan_id)
    except DomainError as exc:
        return error_page(request, exc)
    return _dispense_response(request, order)


@require_POST
def complete(request: HttpRequest, order_id: int) -> HttpResponse:
    try:
        order = _dispensing_order(request, order_id)
    except DomainError as exc:
        return error_page(request, exc)
    try:
        actions.complete_dispensing(_user(request), order.pk)
    except DomainError as exc:
        return _dispense_response(request, order, _status(exc), refusal=exc)
    messages.success(request, _("Order %(number)s dispensed.") % {"number": order.number})
    if request.htmx:  # type: ignore[attr-defined]
        response = HttpResponse(status=204)
        response["HX-Redirect"] = f"/pharmacy/{order.pharmacy_id}/queue/"
        return response
    return redirect("pharmacy:queue", order.pharmacy_id)


# --- the courier ---------------------------------------------------------------------------------
def _courier_page(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    user = _user(request)
    orders = list(access.courier_orders(user))
    since = clock.now() - RECENT
    context = {
        "ready": [o for o in orders if o.status == OrderStatus.DISPENSED],
        "carrying": [o for o in orders if o.status == OrderStatus.IN_TRANSIT and o.courier_id == user.pk],
        "done": [
            o
            for o in orders
            if o.status in (OrderStatus.DELIVERED, OrderStatus.AT_STATION)
            and (o.handed_over_at or since) >= since
            and o.courier_id == user.pk
        ],
        "codes_form": CodesForm(),
        "deliver_form": DeliverForm(),
        **extra,
    }
    return render(request, "pharmacy/courier.html", context, status=status)


@require_GET
def courier(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not access.pharmacy_ids(user, Role.COURIER):
        return error_page(request, DomainError(access.errors.NOT_COURIER))
    return _courier_page(request)


def _courier_action(request: HttpRequest, order_id: int, call: Any, done: str) -> HttpResponse:
    try:
        call()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            return error_page(request, exc)
        return _courier_page(request, _status(exc), errors_for={order_id: exc})
    messages.success(request, done)
    return redirect("pharmacy:courier")


@require_POST
def handover(request: HttpRequest, order_id: int) -> HttpResponse:
    form = CodesForm(request.POST)
    codes = form.code_list() if form.is_valid() else []
    return _courier_action(
        request,
        order_id,
        lambda: actions.hand_over_to_courier(_user(request), order_id, codes),
        _("You have the order; deliver it to the patient."),
    )


@require_POST
def deliver(request: HttpRequest, order_id: int) -> HttpResponse:
    form = DeliverForm(request.POST)
    code = form.cleaned_data["code"] if form.is_valid() else ""
    return _courier_action(
        request, order_id, lambda: actions.deliver_with_code(_user(request), order_id, code), _("Delivered.")
    )


# --- the village service station -------------------------------------------------------------------
def _station_page(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    orders = list(access.station_orders(_user(request)))
    since = clock.now() - RECENT
    context = {
        "coming": [o for o in orders if o.status == OrderStatus.IN_TRANSIT],
        "waiting": [o for o in orders if o.status == OrderStatus.AT_STATION],
        "done": [o for o in orders if o.status == OrderStatus.DELIVERED and (o.delivered_at or since) >= since],
        "codes_form": CodesForm(),
        "pickup_form": PickupForm(),
        **extra,
    }
    return render(request, "pharmacy/station.html", context, status=status)


@require_GET
def station(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not access.station_ids(user):
        return error_page(request, DomainError(access.errors.NOT_STATION_OPERATOR))
    return _station_page(request)


def _station_action(request: HttpRequest, order_id: int, call: Any, done: str) -> HttpResponse:
    try:
        call()
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            return error_page(request, exc)
        return _station_page(request, _status(exc), errors_for={order_id: exc})
    messages.success(request, done)
    return redirect("pharmacy:station")


@require_POST
def station_receive(request: HttpRequest, order_id: int) -> HttpResponse:
    form = CodesForm(request.POST)
    codes = form.code_list() if form.is_valid() else []
    return _station_action(
        request,
        order_id,
        lambda: actions.receive_at_station(_user(request), order_id, codes),
        _("Received at the station; the patient is told."),
    )


@require_POST
def pickup(request: HttpRequest, order_id: int) -> HttpResponse:
    form = PickupForm(request.POST)
    data = form.cleaned_data if form.is_valid() else {}
    return _station_action(
        request,
        order_id,
        lambda: actions.pick_up_at_station(
            _user(request),
            order_id,
            identity_checked=bool(data.get("identity_checked")),
            cash_received=bool(data.get("cash_received")),
        ),
        _("Handed over to the patient."),
    )
