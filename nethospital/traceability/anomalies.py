"""Anomalies of the supply chain (R20), each an ``Alert`` with a severity and its evidence.

The checks run inside ``state.apply_events`` against the state of the pack *before* the event:

==========================  ========================================================  =====================
kind                        raised when                                               severity
==========================  ========================================================  =====================
unknown_code                an event names a code never commissioned here             critical; warning if
                                                                                      the product is known
dispensed_twice             a second dispensing (or a dispensing scan of a            critical
                            dispensed box, ``check_dispensable``)
impossible_travel           two events at different places closer in time than       critical
                            ``NETHOSPITAL_TRACE_MIN_TRAVEL_MINUTES`` (default 10)
after_end_of_life           an event after decommissioning or destruction             critical
dispensed_before_received   dispensed where it was never received (or before)         warning
expired                     received (warning) or dispensed (critical) after expiry   warning / critical
recalled                    any event for a recalled batch after the recall           critical at dispensing,
                                                                                      warning otherwise
two_parents                 packed into a second parent while in a first one          warning
==========================  ========================================================  =====================

Evidence names events by ``eventID``, ``eventTime``, ``bizStep``, ``bizLocation`` and the
organisation there. An alert goes to the organisation where it happened (or the pack's owner) and
to every regulator. Boxes reached through a container (receiving a pallet of a recalled batch) are
grouped into one alert per container, event and batch, listing the boxes.

``check_dispensable`` is the pharmacy's gate at the dispensing scan: it says why a box may not be
dispensed, and records a dispensed-twice alert for a box that was dispensed before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import User
from nethospital.core import audit, clock
from nethospital.core.errors import ErrorCode
from nethospital.directory.models import Organization
from nethospital.traceability.choices import AlertKind, EPCRole, PackStatus, Severity
from nethospital.traceability.models import Alert, EPCISEvent, EventIdentifier, Pack, Recall

if TYPE_CHECKING:
    from nethospital.traceability.state import _Batch

SEVERITY = {
    AlertKind.UNKNOWN_CODE: Severity.CRITICAL,
    AlertKind.DISPENSED_TWICE: Severity.CRITICAL,
    AlertKind.IMPOSSIBLE_TRAVEL: Severity.CRITICAL,
    AlertKind.AFTER_END_OF_LIFE: Severity.CRITICAL,
    AlertKind.DISPENSED_BEFORE_RECEIVED: Severity.WARNING,
    AlertKind.EXPIRED: Severity.WARNING,
    AlertKind.RECALLED: Severity.WARNING,
    AlertKind.TWO_PARENTS: Severity.WARNING,
}
_LISTED_IN_GROUP = 50  # boxes named in a grouped alert's evidence (the count is always exact)


def _local_date(moment: dt.datetime) -> dt.date:
    return timezone.localdate(moment)


def is_expired_on(expiry: dt.date | None, moment: dt.datetime) -> bool:
    """An expiry date (AI 17) is the last day of use."""
    return expiry is not None and _local_date(moment) > expiry


# --- Checks inside apply_events -----------------------------------------------------------------


def unknown_code(batch: _Batch, pack: Pack, event: EPCISEvent, organization: Organization | None) -> None:
    from nethospital.traceability.state import event_ref

    product_known = pack.drug_pack_id is not None
    batch.alert(
        AlertKind.UNKNOWN_CODE,
        Severity.WARNING if product_known else Severity.CRITICAL,
        pack,
        event,
        {
            "events": [event_ref(event, organization)],
            "productCode": pack.product_code,
            "productKnown": product_known,
            "reason": "commissioned elsewhere" if product_known else "no commissioning and no such product",
        },
        organization,
    )


def check_event(
    batch: _Batch, pack: Pack, event: EPCISEvent, transition: str, organization: Organization | None
) -> None:
    """Every anomaly one event can show for one pack it names directly."""
    from nethospital.traceability.state import Transition, event_ref

    concerned = organization or pack.owner_id

    def here() -> dict[str, Any]:  # built only when an alert is raised
        return event_ref(event, organization)

    if transition == Transition.DISPENSE and pack.dispensed_count >= 1:
        batch.alert(
            AlertKind.DISPENSED_TWICE,
            Severity.CRITICAL,
            pack,
            event,
            {
                "events": [*_dispensing_refs(pack.identifier, exclude=event.pk), here()],
                "dispensedBefore": pack.dispensed_count,
            },
            concerned,
        )
    _check_travel(batch, pack, event, organization)
    if pack.status in (PackStatus.DECOMMISSIONED, PackStatus.DESTROYED) and (
        pack.last_event_time is None or event.event_time > pack.last_event_time
    ):
        previous = _previous_ref(batch, pack)
        batch.alert(
            AlertKind.AFTER_END_OF_LIFE,
            Severity.CRITICAL,
            pack,
            event,
            {"events": [*previous, here()], "endOfLife": pack.status},
            concerned,
        )
    if transition == Transition.DISPENSE and pack.dispensed_count == 0:
        never = pack.received_at is None
        elsewhere = organization is not None and pack.owner_id not in (None, organization.pk)
        too_early = pack.received_at is not None and pack.received_at > event.event_time
        if never or elsewhere or too_early:
            batch.alert(
                AlertKind.DISPENSED_BEFORE_RECEIVED,
                SEVERITY[AlertKind.DISPENSED_BEFORE_RECEIVED],
                pack,
                event,
                {
                    "events": [here()],
                    "receivedAt": pack.received_at.isoformat() if pack.received_at else None,
                    "receivedBy": pack.owner_id,
                },
                concerned,
            )
    if transition in (Transition.RECEIVE, Transition.DISPENSE) and is_expired_on(pack.expiry, event.event_time):
        batch.alert(
            AlertKind.EXPIRED,
            Severity.CRITICAL if transition == Transition.DISPENSE else Severity.WARNING,
            pack,
            event,
            {"events": [here()], "expiry": pack.expiry.isoformat() if pack.expiry else None, "batch": pack.batch},
            concerned,
        )
    recall = batch.recall_for(pack)
    if recall is not None and event.event_time >= recall.recalled_at:
        batch.alert(
            AlertKind.RECALLED,
            Severity.CRITICAL if transition == Transition.DISPENSE else Severity.WARNING,
            pack,
            event,
            {"events": [here()], **_recall_ref(recall)},
            concerned,
        )


def check_resolved(
    batch: _Batch,
    pack: Pack,
    event: EPCISEvent,
    transition: str,
    organization: Organization | None,
    through: Pack,
) -> None:
    """Anomalies of a box moved with its container: grouped per container, event and batch."""
    from nethospital.traceability.state import Transition

    recall = batch.recall_for(pack)
    if recall is not None and event.event_time >= recall.recalled_at:
        _grouped(batch, AlertKind.RECALLED, Severity.WARNING, pack, event, organization, through, _recall_ref(recall))
    if transition == Transition.RECEIVE and is_expired_on(pack.expiry, event.event_time):
        expiry = pack.expiry.isoformat() if pack.expiry else None
        _grouped(batch, AlertKind.EXPIRED, Severity.WARNING, pack, event, organization, through, {"expiry": expiry})
    if pack.status in (PackStatus.DECOMMISSIONED, PackStatus.DESTROYED) and (
        pack.last_event_time is None or event.event_time > pack.last_event_time
    ):
        _grouped(batch, AlertKind.AFTER_END_OF_LIFE, Severity.CRITICAL, pack, event, organization, through, {})


def _grouped(
    batch: _Batch,
    kind: str,
    severity: str,
    pack: Pack,
    event: EPCISEvent,
    organization: Organization | None,
    through: Pack,
    extra: dict[str, Any],
) -> None:
    from nethospital.traceability.state import event_ref

    for alert in reversed(batch.alerts):
        evidence = alert.evidence
        if (
            alert.kind == kind
            and alert.event is event
            and alert.identifier == through.identifier
            and evidence.get("gtin") == pack.gtin
            and evidence.get("batch") == pack.batch
        ):
            evidence["count"] += 1
            if len(evidence["packs"]) < _LISTED_IN_GROUP:
                evidence["packs"].append(pack.identifier)
            return
    batch.alert(
        kind,
        severity,
        through,
        event,
        {
            "events": [event_ref(event, organization)],
            "container": through.identifier,
            "gtin": pack.gtin,
            "batch": pack.batch,
            "count": 1,
            "packs": [pack.identifier],
            **extra,
        },
        organization or through.owner_id,
    )


def _recall_ref(recall: Recall) -> dict[str, Any]:
    return {"recall": recall.pk, "recalledAt": recall.recalled_at.isoformat(), "batch": recall.batch}


def _site(batch: _Batch, uri: str) -> tuple[str, Any]:
    from nethospital.traceability.state import organizations_for_locations, sgln_site

    if uri not in batch.orgs:
        batch.orgs.update(organizations_for_locations([uri]))
    organization = batch.orgs.get(uri)
    return ("organization", organization.pk) if organization is not None else ("place", sgln_site(uri))


def _check_travel(batch: _Batch, pack: Pack, event: EPCISEvent, organization: Organization | None) -> None:
    """Seen at two places in an impossible time: the previous event's place (kept on the pack)
    and this one differ, and the two are closer in time than the configured minimum."""
    from nethospital.traceability.state import _minimum_travel, event_ref

    if not (event.biz_location and pack.location and pack.last_event_time) or event.biz_location == pack.location:
        return
    apart = abs(event.event_time - pack.last_event_time)
    minimum = _minimum_travel()
    if apart >= minimum or _site(batch, event.biz_location) == _site(batch, pack.location):
        return
    batch.alert(
        AlertKind.IMPOSSIBLE_TRAVEL,
        SEVERITY[AlertKind.IMPOSSIBLE_TRAVEL],
        pack,
        event,
        {
            "events": [*_previous_ref(batch, pack), event_ref(event, organization)],
            "minutesApart": round(apart.total_seconds() / 60, 1),
            "minimumMinutes": round(minimum.total_seconds() / 60, 1),
        },
        organization or pack.owner_id,
    )


def _previous_ref(batch: _Batch, pack: Pack) -> list[dict[str, Any]]:
    from nethospital.traceability.state import event_ref

    previous = pack.last_event
    if previous is None:
        return []
    if previous.biz_location and previous.biz_location not in batch.orgs:
        _site(batch, previous.biz_location)
    return [event_ref(previous, batch.orgs.get(previous.biz_location))]


def _dispensing_refs(identifier: str, *, exclude: int | None = None) -> list[dict[str, Any]]:
    """The earlier dispensing events of a box (evidence of a second sale)."""
    from nethospital.traceability.state import (
        BIZSTEP_URI,
        DISPENSING_STEPS,
        event_ref,
        organizations_for_locations,
    )

    steps = [*DISPENSING_STEPS, *(BIZSTEP_URI + s for s in DISPENSING_STEPS)]
    events = list(
        EPCISEvent.objects.filter(
            pk__in=EventIdentifier.objects.filter(identifier=identifier, role=EPCRole.EPC).values("event_id"),
            biz_step__in=steps,
            declared_erroneous_at__isnull=True,
        )
        .exclude(pk=exclude or 0)
        .order_by("event_time", "pk")[:10]
    )
    orgs = organizations_for_locations(e.biz_location for e in events)
    return [event_ref(e, orgs.get(e.biz_location)) for e in events]


# --- The dispensing gate ------------------------------------------------------------------------

NOT_FOUND = ErrorCode(
    "pack_not_found", _("This code is not known: no box of a catalogued product carries it. Set the box aside."), 404
)
ALREADY_DISPENSED = ErrorCode(
    "pack_already_dispensed",
    _(
        "This box was already dispensed (%(when)s). A code sold twice means a fake, resold or substituted "
        "box (R20): set it aside; the regulator has been alerted."
    ),
    409,
)
END_OF_LIFE = ErrorCode(
    "pack_end_of_life", _("This box was decommissioned or destroyed: it must not be dispensed."), 409
)
RECALLED = ErrorCode("pack_recalled", _("Batch %(batch)s of this product is recalled: it must not be dispensed."), 409)
EXPIRED = ErrorCode("pack_expired", _("This box expired on %(expiry)s."), 409)
NOT_IN_STOCK = ErrorCode(
    "pack_not_in_stock",
    _("This box is not in this pharmacy's stock: it was not received here (scan it at receiving first, R19)."),
    409,
)
WRONG_PRODUCT = ErrorCode("pack_wrong_product", _("This box is %(product)s, which is not on the prescription."), 409)


@dataclass(frozen=True)
class DispenseRefusal:
    """Why a scanned box may not be dispensed: a stable code and a message in the user's language."""

    error: ErrorCode
    pack: Pack | None
    params: dict[str, Any]

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        text = str(self.error.message)
        return (
            text % {k: str(v) if isinstance(v, Promise) else v for k, v in self.params.items()} if self.params else text
        )


def find_pack(code: str) -> Pack | None:
    """The pack a scanned code (element string, Digital Link, URN, China code) names, or None."""
    from nethospital.traceability.verify import parse_code

    parsed = parse_code(code)
    if parsed is None or not parsed.identifier:
        return None
    return Pack.objects.select_related("drug_pack__drug", "owner").filter(identifier=parsed.identifier).first()


def check_dispensable(
    pack_identifier: str,
    pharmacy: Organization | int,
    prescribed_gtins: Iterable[str],
    at: dt.datetime | None = None,
) -> DispenseRefusal | None:
    """None if the scanned box may be dispensed by ``pharmacy`` for a prescription of
    ``prescribed_gtins`` at ``at``; otherwise the refusal (R19, R20). A box dispensed before also
    records a dispensed-twice alert with the attempt as evidence, in the caller's transaction:
    commit it (return the refusal to the user, do not raise out of the atomic block)."""
    at = at or clock.now()
    pharmacy_id = pharmacy if isinstance(pharmacy, int) else pharmacy.pk
    pack = find_pack(pack_identifier)
    if pack is None or (pack.drug_pack_id is None and pack.commissioned_at is None):
        return DispenseRefusal(NOT_FOUND, pack, {})
    if pack.dispensed_count > 0 or pack.status in (PackStatus.DISPENSED, PackStatus.WITH_COURIER, PackStatus.DELIVERED):
        _record_attempt(pack, pharmacy_id, at)
        when = (
            formats.date_format(timezone.localtime(pack.dispensed_at), "SHORT_DATE_FORMAT") if pack.dispensed_at else ""
        )
        return DispenseRefusal(ALREADY_DISPENSED, pack, {"when": when})
    if pack.status in (PackStatus.DECOMMISSIONED, PackStatus.DESTROYED):
        return DispenseRefusal(END_OF_LIFE, pack, {})
    if pack.batch and Recall.objects.filter(gtin=pack.gtin, batch=pack.batch).exists():
        return DispenseRefusal(RECALLED, pack, {"batch": pack.batch})
    if is_expired_on(pack.expiry, at):
        return DispenseRefusal(EXPIRED, pack, {"expiry": pack.expiry.isoformat() if pack.expiry else ""})
    if pack.owner_id != pharmacy_id or pack.status != PackStatus.RECEIVED:
        return DispenseRefusal(NOT_IN_STOCK, pack, {})
    prescribed = {g.strip().zfill(14) for g in prescribed_gtins if g and g.strip()}
    if pack.gtin.zfill(14) not in prescribed:
        drug = pack.drug_pack.drug if pack.drug_pack is not None else None
        return DispenseRefusal(WRONG_PRODUCT, pack, {"product": str(drug) if drug else pack.gtin or pack.product_code})
    return None


def _record_attempt(pack: Pack, pharmacy_id: int, at: dt.datetime) -> Alert:
    return Alert.objects.create(
        kind=AlertKind.DISPENSED_TWICE,
        severity=Severity.CRITICAL,
        identifier=pack.identifier,
        product_code=pack.product_code,
        organization_id=pharmacy_id,
        evidence={
            "events": _dispensing_refs(pack.identifier),
            "attempt": {"at": at.isoformat(), "organization": pharmacy_id, "scan": "dispensing"},
            "dispensedBefore": pack.dispensed_count,
        },
        raised_at=clock.now(),
    )


# --- Acknowledging ------------------------------------------------------------------------------


@transaction.atomic
def acknowledge_alert(user: User, alert_id: int) -> Alert:
    """A regulator, or the pharmacy concerned, has seen the alert and acted on it (audited)."""
    from nethospital.traceability.access import access_alert

    alert = access_alert(user, alert_id, "acknowledge")
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.acknowledged_at is None:
        alert.acknowledged_by = user
        alert.acknowledged_at = clock.now()
        alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
        audit.record(
            user,
            "traceability.alert.acknowledge",
            alert,
            hospital=alert.organization_id,
            detail={"kind": alert.kind, "identifier": alert.identifier},
        )
    return alert
