"""Drug traceability: the EPCIS 2.0 event repository, the state of every serialised pack derived
from it, recalls and anomaly alerts (R19, R20, R22).

Events are stored as received (``document``) with the fields queries need pulled out and indexed;
``EventIdentifier`` indexes every identifier an event names. ``Pack`` is the current state of one
serialised box (or case / pallet), kept up to date by ``state.apply`` in the same transaction as the
capture. Every traceability row carries its product code (GTIN or China product prefix) so that the
tables can be sharded by product later. Nothing here is ever deleted; corrections are
errorDeclarations that keep the original.

The references written a thousand times per capture document (an identifier's event, an event's
capture job, a pack's last event) have no foreign-key constraint in the database
(``db_constraint=False``, docs/traceability.md): each would be checked once per row at commit
(about 3,900 checks, 20 ms of a 1,000-event document), and they cross the shards of a product-sharded
store (docs/ARCHITECTURE: no cross-shard foreign keys on hot paths). The capture code guarantees them
instead: event ids are taken from the events' sequence and the identifier rows naming them are written
in the same transaction, right after the events (``epcis.store_events``); the capture job is committed
before its task runs; a pack's last event is one stored in the same or an earlier transaction
(``state``); and no event or capture job is ever deleted.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from nethospital.directory.models import Organization
from nethospital.traceability.choices import (
    AlertKind,
    CaptureStatus,
    EPCRole,
    EventType,
    PackStatus,
    Severity,
)


class CaptureJob(models.Model):
    """One ``POST /epcis/capture``: an EPCISDocument captured asynchronously (202 + Location)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=10, choices=CaptureStatus.choices, default=CaptureStatus.RUNNING)
    error_behaviour = models.CharField(max_length=10, default="rollback")  # rollback | proceed
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    event_count = models.PositiveIntegerField(default=0)
    captured_count = models.PositiveIntegerField(default=0)
    document = models.JSONField(null=True, blank=True)  # kept until processed
    errors = models.JSONField(default=list)

    class Meta:
        verbose_name = _("EPCIS capture job")
        ordering = ["-submitted_at"]

    def __str__(self) -> str:
        return f"capture {self.id} ({self.status})"


class EPCISEvent(models.Model):
    event_id = models.CharField(max_length=300, unique=True)
    event_type = models.CharField(max_length=24, choices=EventType.choices)
    event_time = models.DateTimeField(db_index=True)
    event_timezone_offset = models.CharField(max_length=6)
    record_time = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=8, blank=True)
    biz_step = models.CharField(max_length=200, blank=True, db_index=True)  # full CBV URI
    disposition = models.CharField(max_length=200, blank=True, db_index=True)  # full CBV URI
    read_point = models.CharField(max_length=300, blank=True)
    biz_location = models.CharField(max_length=300, blank=True, db_index=True)
    product_code = models.CharField(max_length=20, blank=True, db_index=True)  # first GTIN / China prefix named
    document = models.JSONField()  # the event exactly as captured
    capture_job = models.ForeignKey(
        CaptureJob, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False
    )
    # errorDeclaration: the event is declared erroneous; corrective events name it.
    declared_erroneous_at = models.DateTimeField(null=True, blank=True)
    declaration_reason = models.CharField(max_length=200, blank=True)
    corrective_event_ids = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("EPCIS event")
        ordering = ["record_time", "pk"]
        indexes = [models.Index(fields=["event_type", "event_time"], name="epcis_type_time")]

    def __str__(self) -> str:
        return self.event_id


class EventIdentifier(models.Model):
    """An identifier named by an event (EPC, parent, child, input, output, or a quantity class)."""

    event = models.ForeignKey(EPCISEvent, on_delete=models.PROTECT, related_name="identifiers", db_constraint=False)
    role = models.CharField(max_length=10, choices=EPCRole.choices)
    identifier = models.CharField(max_length=300)  # canonical URN (or the URI as given)
    gtin = models.CharField(max_length=14, blank=True)
    product_code = models.CharField(max_length=20, blank=True)

    class Meta:
        verbose_name = _("event identifier")
        indexes = [
            models.Index(fields=["identifier", "event"], name="epcis_identifier"),
            models.Index(fields=["product_code"], name="epcis_ident_product"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.identifier}"


class Pack(models.Model):
    """The current state of one serialised item (a box, a case, a pallet) derived from events."""

    identifier = models.CharField(max_length=300, unique=True)  # canonical URN
    gtin = models.CharField(max_length=14, blank=True, db_index=True)
    serial = models.CharField(max_length=40, blank=True)
    china_code = models.CharField(max_length=20, blank=True, db_index=True)  # the 20-digit code if any
    product_code = models.CharField(max_length=20, blank=True, db_index=True)
    drug_pack = models.ForeignKey(
        "prescriptions.DrugPack", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    batch = models.CharField(max_length=20, blank=True)
    expiry = models.DateField(null=True, blank=True)
    is_container = models.BooleanField(default=False)  # a case (SSCC / SGTIN with children) or pallet
    status = models.CharField(max_length=16, choices=PackStatus.choices, default=PackStatus.COMMISSIONED)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    location = models.CharField(max_length=300, blank=True)  # last bizLocation
    owner = models.ForeignKey(Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="packs")
    dispensed_count = models.PositiveSmallIntegerField(default=0)
    # When its commissioning event happened; null for a code never commissioned (not genuine).
    commissioned_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    dispensed_at = models.DateTimeField(null=True, blank=True)
    last_event = models.ForeignKey(
        EPCISEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False
    )
    last_event_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("pack")
        indexes = [
            models.Index(fields=["owner", "status", "gtin", "expiry"], name="pack_stock"),
            models.Index(fields=["gtin", "batch"], name="pack_batch"),
        ]

    def __str__(self) -> str:
        return self.identifier


class Location(models.Model):
    """A place of the supply chain named by its GS1 SGLN (a factory, a warehouse, a pharmacy's
    store room), mapped to the organisation that runs it when it is one of ours. Events name places
    by URI; ``traceability.state.organization_for_location`` resolves SGLNs through this table and
    our own ``https://nethospital.example/loc/org/<id>`` URIs directly."""

    sgln = models.CharField(_("SGLN"), max_length=300, unique=True)  # urn:epc:id:sgln:...
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="trace_locations"
    )
    name_zh = models.CharField(_("name (Chinese)"), max_length=120, blank=True)
    name_en = models.CharField(_("name (English)"), max_length=120, blank=True)
    city = models.CharField(_("city"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("supply-chain location")

    def __str__(self) -> str:
        return self.sgln


class Recall(models.Model):
    """A regulator's recall of a batch: dispensing is blocked at once."""

    gtin = models.CharField(max_length=14)
    batch = models.CharField(max_length=20)
    product_code = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=300)
    recalled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recalled_at = models.DateTimeField()

    class Meta:
        verbose_name = _("recall")
        constraints = [models.UniqueConstraint(fields=["gtin", "batch"], name="recall_once")]

    def __str__(self) -> str:
        return f"{self.gtin} / {self.batch}"


class Alert(models.Model):
    """An anomaly (R20) with its evidence, for regulators and the pharmacy concerned."""

    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    identifier = models.CharField(max_length=300, db_index=True)
    product_code = models.CharField(max_length=20, blank=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="traceability_alerts"
    )
    event = models.ForeignKey(EPCISEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts")
    evidence = models.JSONField(default=dict)
    raised_at = models.DateTimeField(db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("traceability alert")
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.identifier}"
