from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    OBJECT = "ObjectEvent", "ObjectEvent"
    AGGREGATION = "AggregationEvent", "AggregationEvent"
    TRANSACTION = "TransactionEvent", "TransactionEvent"
    TRANSFORMATION = "TransformationEvent", "TransformationEvent"
    ASSOCIATION = "AssociationEvent", "AssociationEvent"


class EPCRole(models.TextChoices):
    """How an identifier appears in an event (for the query index)."""

    EPC = "epc", "epcList"
    PARENT = "parent", "parentID"
    CHILD = "child", "childEPCs"
    INPUT = "input", "inputEPCList"
    OUTPUT = "output", "outputEPCList"
    QUANTITY = "quantity", "quantityList"


class CaptureStatus(models.TextChoices):
    RUNNING = "running", _("running")
    SUCCESS = "success", _("captured")
    PARTIAL = "partial", _("captured with errors (proceed)")
    FAILED = "failed", _("failed, nothing captured")


class PackStatus(models.TextChoices):
    # Seen in an event but never commissioned here: not genuine until proven (R20).
    UNKNOWN = "unknown", _("unknown (never commissioned)")
    COMMISSIONED = "commissioned", _("made (commissioned)")
    PACKED = "packed", _("packed into a case or pallet")
    SHIPPED = "shipped", _("shipped")
    RECEIVED = "received", _("received at a pharmacy")
    DISPENSED = "dispensed", _("dispensed")
    WITH_COURIER = "with_courier", _("handed to the courier")
    DELIVERED = "delivered", _("delivered")
    DECOMMISSIONED = "decommissioned", _("decommissioned")
    DESTROYED = "destroyed", _("destroyed")


class AlertKind(models.TextChoices):
    UNKNOWN_CODE = "unknown_code", _("unknown code")
    DISPENSED_TWICE = "dispensed_twice", _("dispensed more than once")
    IMPOSSIBLE_TRAVEL = "impossible_travel", _("seen at two places in an impossible time")
    AFTER_END_OF_LIFE = "after_end_of_life", _("event after decommissioning or destruction")
    DISPENSED_BEFORE_RECEIVED = "dispensed_before_received", _("dispensed before it was received")
    EXPIRED = "expired", _("expired")
    RECALLED = "recalled", _("recalled batch")
    TWO_PARENTS = "two_parents", _("packed into two parents at once")


class Severity(models.TextChoices):
    INFO = "info", _("information")
    WARNING = "warning", _("warning")
    CRITICAL = "critical", _("critical")
