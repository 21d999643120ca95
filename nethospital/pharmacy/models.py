"""The pharmacy: what it sells, orders, payments, dispensing and delivery (R9, R15, R16, R18-R20, R22).

Stock is not a counter here: a pharmacy's stock is the set of serialised boxes the traceability
repository says it received and still holds (``traceability.Pack`` rows owned by the pharmacy in
status ``received``), so a box can only be sold after it was scanned in (R19). This app keeps the
commercial side (prices, orders, payments, refunds), the pharmacist's scans while an order is being
put together, and the record of which box went to which patient — the record recalls read.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient
from nethospital.directory.models import Organization
from nethospital.pharmacy.choices import (
    OPEN_STATUSES,
    Fulfilment,
    OrderStatus,
    PaymentMethod,
    PaymentStatus,
    RefundStatus,
)
from nethospital.prescriptions.models import Drug, DrugPack, Prescription, PrescriptionItem


class Offer(models.Model):
    """A product a pharmacy sells, at its price. Whether it can be sold now depends on the boxes in
    stock; a prescription drug is sold only on an approved prescription (R9)."""

    pharmacy = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="offers")
    drug_pack = models.ForeignKey(DrugPack, on_delete=models.PROTECT, related_name="+")
    price = models.DecimalField(_("price (yuan)"), max_digits=10, decimal_places=2)
    is_active = models.BooleanField(_("on sale"), default=True)
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("offer")
        constraints = [
            models.UniqueConstraint(fields=["pharmacy", "drug_pack"], name="offer_once_per_pharmacy"),
            models.CheckConstraint(condition=Q(price__gt=0), name="offer_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.drug_pack} @ {self.price}"


class Order(models.Model):
    """A patient's order at one pharmacy: the medicine of one approved prescription and/or
    non-prescription items, delivered home or picked up at a village service station.

    ``buyer`` is the account that placed it: the patient, or their registered guardian (R18).
    At most one order that is not cancelled exists per prescription (it is used once, R15).
    The delivery code is never stored: only its keyed hash (see ``delivery.py``)."""

    number = models.CharField(_("order number"), max_length=24, unique=True)
    pharmacy = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="pharmacy_orders")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="pharmacy_orders")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pharmacy_orders")
    prescription = models.ForeignKey(
        Prescription, on_delete=models.PROTECT, null=True, blank=True, related_name="pharmacy_orders"
    )
    status = models.CharField(_("status"), max_length=20, choices=OrderStatus.choices)
    fulfilment = models.CharField(_("how it reaches the patient"), max_length=20, choices=Fulfilment.choices)
    # Home delivery: who receives it and where. Personal data: shown to the pharmacy and the courier
    # only, never put into a traceability event.
    recipient_name = models.CharField(_("recipient"), max_length=50, blank=True)
    recipient_phone = models.CharField(_("recipient's mobile phone"), max_length=11, blank=True)
    delivery_address = models.CharField(_("delivery address"), max_length=200, blank=True)
    station = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pickup_orders",
        verbose_name=_("service station"),
    )
    total = models.DecimalField(_("total (yuan)"), max_digits=10, decimal_places=2)
    payment_method = models.CharField(_("payment"), max_length=20, choices=PaymentMethod.choices)
    notice_confirmed_at = models.DateTimeField(null=True, blank=True)  # R16
    idempotency_key = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    dispensed_at = models.DateTimeField(null=True, blank=True)
    dispensed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    courier = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="deliveries"
    )
    handed_over_at = models.DateTimeField(null=True, blank=True)
    arrived_at_station_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.CharField(max_length=200, blank=True)
    # One-time delivery code: a keyed hash only; ``delivery_code_version`` changes when it is reissued.
    delivery_code_hash = models.CharField(max_length=64, blank=True)
    delivery_code_version = models.PositiveSmallIntegerField(default=1)
    delivery_code_failures = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("pharmacy order")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["pharmacy", "status", "created_at"], name="order_queue"),
            models.Index(fields=["patient", "created_at"], name="order_patient"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["buyer", "idempotency_key"], name="order_idempotency"),
            # R15: a prescription has at most one order that is not cancelled.
            models.UniqueConstraint(
                fields=["prescription"],
                condition=Q(prescription__isnull=False) & ~Q(status=OrderStatus.CANCELLED),
                name="one_order_per_prescription",
            ),
            models.CheckConstraint(
                condition=Q(fulfilment=Fulfilment.DELIVERY, station__isnull=True)
                | Q(fulfilment=Fulfilment.STATION_PICKUP, station__isnull=False),
                name="order_station_only_for_pickup",
            ),
            models.CheckConstraint(
                condition=~Q(payment_method=PaymentMethod.CASH_AT_STATION) | Q(fulfilment=Fulfilment.STATION_PICKUP),
                name="order_cash_only_at_station",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class OrderLine(models.Model):
    """So many boxes of one product. Prescription lines come from the prescription's items (R9);
    the others are non-prescription drugs; the two are shown separately (R16)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="+")
    drug_pack = models.ForeignKey(DrugPack, on_delete=models.PROTECT, related_name="+")
    prescription_item = models.ForeignKey(
        PrescriptionItem, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    quantity = models.PositiveIntegerField(_("boxes"))
    unit_price = models.DecimalField(_("price per box"), max_digits=10, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        ordering = ["order", "position"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.drug_pack} × {self.quantity}"

    @property
    def is_prescription(self) -> bool:
        return self.prescription_item_id is not None

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


class Payment(models.Model):
    """One attempt to pay an order through a provider (``payments.py``), or cash to be taken at the
    station. A retry with the same idempotency key is the same payment."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=20, choices=PaymentMethod.choices)
    provider = models.CharField(max_length=30)
    status = models.CharField(max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="CNY")
    provider_reference = models.CharField(max_length=80, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    collected_by = models.ForeignKey(  # cash: the station operator who took it
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("payment")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "idempotency_key"], name="payment_idempotency"),
            # An order is paid at most once.
            models.UniqueConstraint(
                fields=["order"], condition=Q(status=PaymentStatus.SUCCEEDED), name="payment_once_per_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} {self.amount} {self.status}"


class Refund(models.Model):
    """Money given back for a cancelled order, through the provider that took it."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=12, choices=RefundStatus.choices)
    provider_reference = models.CharField(max_length=80, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("refund")
        constraints = [
            models.UniqueConstraint(
                fields=["payment"], condition=Q(status=RefundStatus.SUCCEEDED), name="refund_once_per_payment"
            )
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} of {self.payment_id}"


class DispenseScan(models.Model):
    """A box the pharmacist scanned for an order line and the gate accepted, before the order is
    dispensed. A box is in at most one live scan (``released_at`` is set when the pharmacist takes
    it out again or the order is cancelled); the scans of a dispensed order stay as its record."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="scans")
    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="scans")
    identifier = models.CharField(max_length=300)  # canonical URN of the box
    gtin = models.CharField(max_length=14, blank=True)
    batch = models.CharField(max_length=20, blank=True)
    expiry = models.DateField(null=True, blank=True)
    scanned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scanned_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("dispensing scan")
        ordering = ["scanned_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["identifier"], condition=Q(released_at__isnull=True), name="box_in_one_live_scan"
            )
        ]

    def __str__(self) -> str:
        return self.identifier


class DispensedPack(models.Model):
    """Which box went to which patient, on which prescription and order (R15, R20, R22). Recalls
    find the patients to tell here (``pharmacy.traceability.patients_for_packs``). A box is
    dispensed once: the identifier is unique."""

    identifier = models.CharField(max_length=300, unique=True)
    product_code = models.CharField(max_length=20, blank=True, db_index=True)
    gtin = models.CharField(max_length=14, blank=True)
    batch = models.CharField(max_length=20, blank=True)
    expiry = models.DateField(null=True, blank=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="dispensed_packs")
    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="dispensed_packs")
    prescription = models.ForeignKey(
        Prescription, on_delete=models.PROTECT, null=True, blank=True, related_name="dispensed_packs"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="dispensed_packs")
    pharmacy = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="dispensed_packs")
    dispensed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    dispensed_at = models.DateTimeField()
    event_id = models.CharField(max_length=300)  # the EPCIS dispensing event

    class Meta:
        verbose_name = _("dispensed box")
        indexes = [models.Index(fields=["gtin", "batch"], name="dispensed_batch")]

    def __str__(self) -> str:
        return f"{self.identifier} → {self.patient_id}"


class StockReceipt(models.Model):
    """One receiving scan at a pharmacy: the codes scanned (cases, pallets or boxes) and the EPCIS
    event that recorded it; the boxes it brought in are resolved from the aggregation (R19)."""

    pharmacy = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="stock_receipts")
    scanned_codes = models.JSONField(default=list)
    event_id = models.CharField(max_length=300)
    box_count = models.PositiveIntegerField(default=0)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()

    class Meta:
        verbose_name = _("stock receipt")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.pharmacy_id} {self.received_at:%Y-%m-%d %H:%M}"
