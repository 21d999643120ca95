from django.db import models
from django.utils.translation import gettext_lazy as _


class Fulfilment(models.TextChoices):
    """How the medicine reaches the patient."""

    DELIVERY = "delivery", _("home delivery")
    STATION_PICKUP = "station_pickup", _("pickup at a village service station")


class OrderStatus(models.TextChoices):
    AWAITING_PAYMENT = "awaiting_payment", _("waiting for payment")
    AWAITING_DISPENSING = "awaiting_dispensing", _("waiting for the pharmacist")
    DISPENSED = "dispensed", _("dispensed, waiting for the courier")
    IN_TRANSIT = "in_transit", _("on its way")
    AT_STATION = "at_station", _("ready for pickup at the station")
    DELIVERED = "delivered", _("delivered")
    CANCELLED = "cancelled", _("cancelled")


# Orders that hold their prescription (one active order per prescription) and reserve stock.
OPEN_STATUSES = (OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_DISPENSING)
# Orders that may still be cancelled (and refunded): nothing has left the shelf yet.
CANCELLABLE_STATUSES = OPEN_STATUSES
ACTIVE_STATUSES = (
    OrderStatus.AWAITING_PAYMENT,
    OrderStatus.AWAITING_DISPENSING,
    OrderStatus.DISPENSED,
    OrderStatus.IN_TRANSIT,
    OrderStatus.AT_STATION,
    OrderStatus.DELIVERED,
)


class PaymentMethod(models.TextChoices):
    SANDBOX = "sandbox", _("online payment (sandbox)")
    CASH_AT_STATION = "cash_at_station", _("cash at the service station")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("not paid yet")
    SUCCEEDED = "succeeded", _("paid")
    FAILED = "failed", _("declined")
    VOIDED = "voided", _("voided (nothing was taken)")
    REFUNDED = "refunded", _("refunded")


class RefundStatus(models.TextChoices):
    SUCCEEDED = "succeeded", _("refunded")
    FAILED = "failed", _("refund failed")
