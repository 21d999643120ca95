"""The EPCIS events the pharmacy's scans record (R19, R22), built here and stored by the
traceability repository's capture in the caller's transaction (which also brings the packs'
state up to date, ``traceability.state.apply_events``).

===================================  ============================  ======================================
scan                                 bizStep / disposition         where
===================================  ============================  ======================================
stock received (cases, pallets)      receiving / sellable_access.  bizLocation: the pharmacy
boxes dispensed for an order         dispensing / dispensed        bizLocation: the pharmacy
handed to the courier                departing / in_transit        bizLocation: the pharmacy
arrived at the service station       receiving / in_progress       bizLocation: the station
delivered at the door                arriving / dispensed          readPoint: the order's delivery point
picked up at the station             arriving / dispensed          bizLocation: the station
===================================  ============================  ======================================

A home delivery names no bizLocation: the patient's home is not a business location, and an address
is personal data that never goes into the supply-chain record. Its readPoint is an opaque URI of
the order's delivery point (``.../loc/delivery/<order number>``). Events carry no names, addresses,
prescriptions or patients — only box codes, steps, times and places.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from nethospital.accounts.models import User
from nethospital.core import clock
from nethospital.directory.models import Organization
from nethospital.traceability import state
from nethospital.traceability.epcis import STANDARD_CONTEXT
from nethospital.traceability.state import CBVStep

STATION_ARRIVAL = CBVStep("receiving", "in_progress")


def delivery_point_uri(order_number: str) -> str:
    return f"{state.location_base()}delivery/{order_number}"


def _offset(moment: dt.datetime) -> str:
    offset = timezone.localtime(moment).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def object_event(
    step: CBVStep,
    identifiers: Sequence[str],
    *,
    location: Organization | None = None,
    read_point: str = "",
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """One EPCIS 2.0 ObjectEvent (JSON-LD form) naming the boxes or containers by canonical URN."""
    moment = (at or clock.now()).replace(microsecond=0)
    local = timezone.localtime(moment)
    document: dict[str, Any] = {
        "@context": [STANDARD_CONTEXT],
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": local.isoformat(),
        "eventTimeZoneOffset": _offset(moment),
        "epcList": list(dict.fromkeys(identifiers)),
        "action": step.action,
        "bizStep": step.biz_step_uri,
        "disposition": step.disposition_uri,
    }
    if location is not None:
        uri = state.location_uri_for(location)
        document["bizLocation"] = {"id": uri}
        document["readPoint"] = {"id": uri}
    if read_point:
        document["readPoint"] = {"id": read_point}
    return document


def capture(user: User, documents: Sequence[dict[str, Any]]) -> list[str]:
    """Store the events through the repository's capture of single events (validated against the
    EPCIS schema, stored with their identifier index, pack state brought up to date, audited), in the
    caller's transaction; the stored event IDs."""
    from nethospital.traceability.capture import capture_single_event

    return [capture_single_event(user, document).event.event_id for document in documents]
