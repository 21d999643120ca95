"""A box's whole way, from the factory to the patient's door, for the patient who received it.

The steps are the events naming the box itself plus the events of the cases and pallets it travelled
in while it was inside them (aggregation resolved in time). Each step is shown as a time, what
happened (in words, not CBV codes) and the place's name; nothing about any other person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import User
from nethospital.directory.models import Organization
from nethospital.traceability.access import JourneyAccess, access_journey
from nethospital.traceability.choices import EPCRole, EventType
from nethospital.traceability.models import EPCISEvent, EventIdentifier, Location, Pack
from nethospital.traceability.state import cbv_word, organizations_for_locations, sgln_site

STEP_LABELS = {
    "commissioning": _("Made and given its code"),
    "packing": _("Packed into a case or pallet"),
    "unpacking": _("Taken out of its case"),
    "shipping": _("Shipped"),
    "departing": _("Handed to the courier"),
    "receiving": _("Received"),
    "storing": _("Stored"),
    "dispensing": _("Dispensed by the pharmacist"),
    "retail_selling": _("Sold"),
    "arriving": _("Delivered"),
    "accepting": _("Delivered"),
    "transporting": _("On its way"),
    "inspecting": _("Inspected"),
    "decommissioning": _("Code withdrawn"),
    "destroying": _("Destroyed"),
}
_MAX_DEPTH = 4


@dataclass(frozen=True)
class JourneyStep:
    time: dt.datetime
    what: str
    place: str
    container: str  # the case or pallet it travelled in at that step, if the event named that


@dataclass(frozen=True)
class Journey:
    pack: Pack
    steps: list[JourneyStep]
    viewer_role: str


def place_names(uris: set[str]) -> dict[str, str]:
    """Names for bizLocation URIs in the reader's language: our organisations, registered SGLNs."""
    wanted = {u for u in uris if u}
    names: dict[str, str] = {}
    orgs = organizations_for_locations(wanted)
    sglns = {u for u in wanted if orgs.get(u) is None and u.startswith("urn:epc:id:sgln:")}
    locations = {loc.sgln: loc for loc in Location.objects.filter(sgln__in=sglns | {sgln_site(u) for u in sglns})}
    chinese = (get_language() or "").startswith("zh")
    for uri in wanted:
        org: Organization | None = orgs.get(uri)
        if org is not None:
            names[uri] = org.name
            continue
        loc = locations.get(uri) or locations.get(sgln_site(uri))
        if loc is not None and (loc.name_zh or loc.name_en):
            names[uri] = (loc.name_zh or loc.name_en) if chinese else (loc.name_en or loc.name_zh)
        else:
            names[uri] = str(_("a registered supply-chain site"))
    return names


def _counted(queryset):  # type: ignore[no-untyped-def]
    return queryset.filter(declared_erroneous_at__isnull=True).exclude(document__has_key="errorDeclaration")


def _containment(identifier: str) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    """The containers the box was in, with from / until (None: still inside)."""
    rows = (
        EventIdentifier.objects.filter(
            identifier=identifier, role=EPCRole.CHILD, event__event_type=EventType.AGGREGATION
        )
        .filter(event__declared_erroneous_at__isnull=True)
        .select_related("event")
        .order_by("event__event_time", "event__pk")
    )
    spans: list[tuple[str, dt.datetime, dt.datetime | None]] = []
    open_spans: dict[str, dt.datetime] = {}
    for row in rows:
        event = row.event
        parent = (
            EventIdentifier.objects.filter(event=event, role=EPCRole.PARENT)
            .values_list("identifier", flat=True)
            .first()
        )
        if not parent:
            continue
        if event.action == "ADD" and parent not in open_spans:
            open_spans[parent] = event.event_time
        elif event.action == "DELETE" and parent in open_spans:
            spans.append((parent, open_spans.pop(parent), event.event_time))
    spans.extend((parent, start, None) for parent, start in open_spans.items())
    return spans


def journey_events(identifier: str) -> list[tuple[EPCISEvent, str]]:
    """(event, container named) pairs in time order: the box's own and its containers' while inside."""
    collected: dict[int, tuple[EPCISEvent, str]] = {}
    own = _counted(EPCISEvent.objects.filter(identifiers__identifier=identifier)).distinct()
    for event in own:
        collected[event.pk] = (event, "")
    frontier: list[tuple[str, dt.datetime | None, dt.datetime | None, int]] = [(identifier, None, None, 0)]
    while frontier:
        current, lower, upper, depth = frontier.pop()
        if depth >= _MAX_DEPTH:
            continue
        for parent, start, end in _containment(current):
            start = max(start, lower) if lower else start
            end = min(e for e in (end, upper) if e is not None) if (end or upper) else None
            if end is not None and end < start:
                continue
            events = _counted(
                EPCISEvent.objects.filter(
                    identifiers__identifier=parent,
                    identifiers__role__in=[EPCRole.EPC, EPCRole.PARENT],
                    event_time__gte=start,
                )
            ).exclude(event_type=EventType.AGGREGATION)
            if end is not None:
                events = events.filter(event_time__lte=end)
            for event in events.distinct():
                collected.setdefault(event.pk, (event, parent))
            frontier.append((parent, start, end, depth + 1))
    return sorted(collected.values(), key=lambda pair: (pair[0].event_time, pair[0].pk))


def journey_for(user: User, pack_identifier: str) -> Journey:
    """The journey of a box the user (or someone they act for) received; audited (R23)."""
    from nethospital.traceability.verify import parse_code

    parsed = parse_code(pack_identifier)
    identifier = parsed.identifier if parsed is not None and parsed.identifier else pack_identifier
    allowed: JourneyAccess = access_journey(user, identifier)
    pairs = journey_events(allowed.pack.identifier)
    names = place_names({event.biz_location for event, _container in pairs})
    steps = []
    for event, container in pairs:
        word = cbv_word(event.biz_step)
        what = STEP_LABELS.get(word, word or _("Seen"))
        steps.append(JourneyStep(event.event_time, str(what), names.get(event.biz_location, ""), container))
    return Journey(allowed.pack, steps, allowed.viewer_role)
