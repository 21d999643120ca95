"""The state of every serialised pack, derived from EPCIS events (R19, R20, R22).

``apply_events`` is called by the capture, inside the capture's transaction, after the event rows
and their identifier index are stored, with the events in record order. It keeps ``Pack`` rows up to
date and raises the anomaly alerts of ``anomalies`` (R20) as it goes. It works on the whole batch at
once (a few queries per batch, not per event) because capture throughput is benchmarked.

What moves a pack (the CBV words are also accepted as full URIs ``https://ref.gs1.org/cbv/BizStep-x``
or as EPCIS 1.x URNs ``urn:epcglobal:cbv:bizstep:x``):

==========================  =========================  =====================  ==================================
transition                  event                      bizStep                disposition
==========================  =========================  =====================  ==================================
commissioned                ObjectEvent ADD            commissioning          active
packed (parent gets child)  AggregationEvent ADD       packing                container_closed
unpacked (child freed)      AggregationEvent DELETE    unpacking              container_open
shipped                     ObjectEvent OBSERVE        shipping               in_transit
received (owner = pharmacy) ObjectEvent OBSERVE        receiving              sellable_accessible
dispensed                   ObjectEvent OBSERVE        dispensing             dispensed
handed to the courier       ObjectEvent OBSERVE        departing              in_transit
delivered                   ObjectEvent OBSERVE        arriving               dispensed
decommissioned              ObjectEvent DELETE         decommissioning        inactive
destroyed                   ObjectEvent OBSERVE        destroying             destroyed
==========================  =========================  =====================  ==================================

``retail_selling`` / ``retail_sold`` count as dispensing (a code sold twice is R20's case);
``shipping`` + ``in_transit`` after dispensing is a hand-over to the courier too; ``accepting`` after
dispensing is a delivery. Shipping, receiving and destroying a container apply to everything in it
(aggregation resolved); packing and unpacking change the parent links. The constants at the end
(``PHARMACY_RECEIVING`` ...) are what the pharmacy's scans record.

Events declared erroneous (``EPCISEvent.declared_erroneous_at``) do not count: when one reaches
``apply_events`` the packs it named (and their containers and contents) are rebuilt from the
remaining events. Alerts already raised stay (they are evidence); the regulator acknowledges them.

Places: an event's ``bizLocation`` is either our own URI for an organisation
(``https://nethospital.example/loc/org/<id>``, see ``location_uri_for``) or an SGLN looked up in the
``Location`` table (a factory, a warehouse, or a pharmacy's store room mapped to its organisation).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote

from django.conf import settings
from django.db import connection, models
from django.db.models import F, Q
from django.utils import timezone

from nethospital.directory.models import Organization
from nethospital.prescriptions.models import DrugPack
from nethospital.traceability import anomalies
from nethospital.traceability.choices import AlertKind, EPCRole, EventType, PackStatus
from nethospital.traceability.epcis import copy_rows, model_from_values, next_ids
from nethospital.traceability.models import Alert, EPCISEvent, EventIdentifier, Location, Pack, Recall

# --- CBV vocabulary -----------------------------------------------------------------------------

BIZSTEP_URI = "https://ref.gs1.org/cbv/BizStep-"
DISPOSITION_URI = "https://ref.gs1.org/cbv/Disp-"
_CBV_PREFIXES = (
    BIZSTEP_URI,
    DISPOSITION_URI,
    "urn:epcglobal:cbv:bizstep:",
    "urn:epcglobal:cbv:disp:",
    "https://gs1.org/voc/BizStep-",
    "https://gs1.org/voc/Disp-",
    "gs1:BizStep-",
    "gs1:Disp-",
    "cbv:BizStep-",
    "cbv:Disp-",
)


def cbv_word(value: str) -> str:
    """``receiving`` for ``https://ref.gs1.org/cbv/BizStep-receiving``, the URN form or the bare word;
    anything else (a private vocabulary URI) is returned unchanged."""
    for prefix in _CBV_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


@dataclass(frozen=True)
class CBVStep:
    """A business step and disposition the pharmacy records, as full CBV URIs."""

    biz_step: str
    disposition: str
    action: str = "OBSERVE"

    @property
    def biz_step_uri(self) -> str:
        return BIZSTEP_URI + self.biz_step

    @property
    def disposition_uri(self) -> str:
        return DISPOSITION_URI + self.disposition


COMMISSIONING = CBVStep("commissioning", "active", "ADD")
PACKING = CBVStep("packing", "container_closed", "ADD")
UNPACKING = CBVStep("unpacking", "container_open", "DELETE")
SHIPPING = CBVStep("shipping", "in_transit")
PHARMACY_RECEIVING = CBVStep("receiving", "sellable_accessible")
PHARMACY_DISPENSING = CBVStep("dispensing", "dispensed")
COURIER_HANDOVER = CBVStep("departing", "in_transit")
DELIVERY = CBVStep("arriving", "dispensed")
DECOMMISSIONING = CBVStep("decommissioning", "inactive", "DELETE")
DESTROYING = CBVStep("destroying", "destroyed")

DISPENSING_STEPS = frozenset({"dispensing", "retail_selling"})
DISPENSED_DISPOSITIONS = frozenset({"dispensed", "retail_sold", "partially_dispensed"})
_COMMISSIONING_STEPS = frozenset({"", "commissioning", "encoding", "creating_class_instance"})
_TRANSPORT_STEPS = frozenset({"departing", "shipping", "transporting", "loading"})
_DELIVERY_STEPS = frozenset({"arriving", "accepting"})
_AFTER_DISPENSING = frozenset({PackStatus.DISPENSED, PackStatus.WITH_COURIER, PackStatus.DELIVERED})
_END_OF_LIFE = frozenset({PackStatus.DECOMMISSIONED, PackStatus.DESTROYED})
# States from which packing into a case still means "packed" (not yet in distribution).
_PACKABLE = frozenset({PackStatus.UNKNOWN, PackStatus.COMMISSIONED, PackStatus.PACKED})


class Transition:
    COMMISSION = "commission"
    PACK = "pack"
    UNPACK = "unpack"
    SHIP = "ship"
    RECEIVE = "receive"
    DISPENSE = "dispense"
    HAND_TO_COURIER = "hand_to_courier"
    DELIVER = "deliver"
    DECOMMISSION = "decommission"
    DESTROY = "destroy"
    OBSERVE = "observe"


def transition_of(event: EPCISEvent, pack_status: str | None = None) -> str:
    """Which transition ``event`` is for a pack in ``pack_status`` (see the table above)."""
    step, disposition = cbv_word(event.biz_step), cbv_word(event.disposition)
    action = (event.action or "").upper()
    if event.event_type == EventType.AGGREGATION:
        if action == "ADD":
            return Transition.PACK
        if action == "DELETE":
            return Transition.UNPACK
        return Transition.OBSERVE
    if event.event_type != EventType.OBJECT:
        return Transition.OBSERVE
    if step == "destroying" or disposition == "destroyed":
        return Transition.DESTROY
    if step in DISPENSING_STEPS or (
        disposition in DISPENSED_DISPOSITIONS and step not in _DELIVERY_STEPS | _TRANSPORT_STEPS
    ):
        return Transition.DISPENSE
    if action == "ADD" and step in _COMMISSIONING_STEPS:
        return Transition.COMMISSION
    if step == "decommissioning" or action == "DELETE":
        return Transition.DECOMMISSION
    dispensed = pack_status in _AFTER_DISPENSING
    if step in _TRANSPORT_STEPS and dispensed:
        return Transition.HAND_TO_COURIER
    if step in _DELIVERY_STEPS and dispensed and disposition != "in_transit":
        return Transition.DELIVER
    if step in ("shipping", "departing") or (disposition == "in_transit" and not dispensed):
        return Transition.SHIP
    if step == "receiving" or (step in _DELIVERY_STEPS and not dispensed):
        return Transition.RECEIVE
    return Transition.OBSERVE


# Transport steps on a container apply to everything inside it.
_RESOLVED_THROUGH_CONTAINERS = frozenset({Transition.SHIP, Transition.RECEIVE, Transition.DESTROY})

# --- Identifiers --------------------------------------------------------------------------------

CHINA_CODE_URN = "urn:nethospital:cn-drug-code:"
_SGTIN = re.compile(r"^urn:epc:id:sgtin:(\d+)\.(\d+)\.(.+)$")
_SSCC = re.compile(r"^urn:epc:id:sscc:(\d+)\.(\d+)$")
_LGTIN = re.compile(r"^urn:epc:class:lgtin:(\d+)\.(\d+)\.(.+)$")
_CHINA = re.compile(r"^urn:nethospital:cn-drug-code:(\d{20})$")
_DIGITAL_LINK = re.compile(r"^https?://[^/]+(?:/.*)?/01/(\d{14})/21/([^/?#]+)")
_DIGITAL_LINK_SSCC = re.compile(r"^https?://[^/]+(?:/.*)?/00/(\d{18})(?:[/?#]|$)")


def gs1_check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class PackCode:
    """What an identifier says about the item it names."""

    identifier: str
    gtin: str = ""
    serial: str = ""
    china_code: str = ""
    product_code: str = ""
    is_container: bool = False
    batch: str = ""

    @property
    def china_prefix(self) -> str:
        return self.china_code[:7]


@functools.lru_cache(maxsize=65536)
def describe_identifier(identifier: str) -> PackCode | None:
    """The GTIN / serial / China code of a canonical identifier, or None if it names no pack
    (a returnable asset, a location, a class of product)."""
    if match := _SGTIN.match(identifier):
        company, item, serial = match.groups()
        body = item[:1] + company + item[1:]
        gtin = body + gs1_check_digit(body) if len(body) == 13 else ""
        return PackCode(identifier, gtin=gtin, serial=unquote(serial), product_code=gtin)
    if _SSCC.match(identifier) or _DIGITAL_LINK_SSCC.match(identifier):
        return PackCode(identifier, is_container=True)
    if match := _CHINA.match(identifier):
        code = match.group(1)
        return PackCode(identifier, china_code=code, product_code=code[:7])
    if match := _DIGITAL_LINK.match(identifier):
        gtin, serial = match.groups()
        return PackCode(identifier, gtin=gtin, serial=unquote(serial), product_code=gtin)
    return None


def lgtin_parts(identifier: str) -> tuple[str, str] | None:
    """(GTIN, batch) of an LGTIN class URN."""
    if match := _LGTIN.match(identifier):
        company, item, lot = match.groups()
        body = item[:1] + company + item[1:]
        if len(body) == 13:
            return body + gs1_check_digit(body), unquote(lot)
    return None


# --- Places -------------------------------------------------------------------------------------


def location_base() -> str:
    return str(settings.NETHOSPITAL_LOCATION_URI_BASE)


def location_uri_for(organization: Organization | int) -> str:
    """Our own bizLocation URI for one of our organisations (a pharmacy, a station)."""
    pk = organization if isinstance(organization, int) else organization.pk
    return f"{location_base()}org/{pk}"


def _own_org_id(uri: str) -> int | None:
    prefix = location_base() + "org/"
    if uri.startswith(prefix):
        rest = uri[len(prefix) :].strip("/")
        if rest.isdigit():
            return int(rest)
    return None


def sgln_site(uri: str) -> str:
    """An SGLN without its extension: two store rooms of one site are one place."""
    if uri.startswith("urn:epc:id:sgln:"):
        parts = uri.split(":")[-1].split(".")
        if len(parts) == 3:
            return f"urn:epc:id:sgln:{parts[0]}.{parts[1]}.0"
    return uri


def organizations_for_locations(uris: Iterable[str]) -> dict[str, Organization | None]:
    """``organization_for_location`` for many URIs in two queries."""
    wanted = {u for u in uris if u}
    result: dict[str, Organization | None] = dict.fromkeys(wanted)
    own = {u: _own_org_id(u) for u in wanted}
    org_ids = {pk for pk in own.values() if pk is not None}
    sglns = {u for u in wanted if u.startswith("urn:epc:id:sgln:")}
    lookups = sglns | {sgln_site(u) for u in sglns}
    by_sgln: dict[str, int | None] = {}
    if lookups:
        by_sgln = dict(Location.objects.filter(sgln__in=lookups).values_list("sgln", "organization_id"))
        org_ids |= {pk for pk in by_sgln.values() if pk is not None}
    orgs = Organization.objects.in_bulk(org_ids) if org_ids else {}
    for uri in wanted:
        pk = own[uri]
        if pk is None and uri in sglns:
            pk = by_sgln.get(uri) or by_sgln.get(sgln_site(uri))
        result[uri] = orgs.get(pk) if pk is not None else None
    return result


def organization_for_location(uri: str) -> Organization | None:
    """The organisation at a bizLocation: our own ``.../loc/org/<id>`` URI, or an SGLN registered in
    ``Location`` (exactly, or its site without the extension)."""
    if not uri:
        return None
    return organizations_for_locations([uri]).get(uri)


def register_location(
    sgln: str, organization: Organization | None, *, name_zh: str = "", name_en: str = "", city: str = ""
) -> Location:
    """Map an SGLN to one of our organisations (or just name it): set-up data, not a clinical write."""
    location, _ = Location.objects.update_or_create(
        sgln=sgln, defaults={"organization": organization, "name_zh": name_zh, "name_en": name_en, "city": city}
    )
    return location


# What a new pack is before its first event (the model's defaults, status unknown).
_NEW_PACK: dict[str, Any] = {
    "id": None,
    "batch": "",
    "expiry": None,
    "status": PackStatus.UNKNOWN,
    "parent_id": None,
    "location": "",
    "owner_id": None,
    "dispensed_count": 0,
    "commissioned_at": None,
    "received_at": None,
    "dispensed_at": None,
    "last_event_id": None,
    "last_event_time": None,
}

# --- Queries ------------------------------------------------------------------------------------


class _EqualsAny(models.Lookup):  # type: ignore[type-arg]
    """``column = ANY(%s)`` with the values as one array parameter (PostgreSQL): psycopg's
    client-side binding renders each parameter of an ``IN`` list into the statement, which for
    2,000 identifiers costs more than the query."""

    lookup_name = "equals_any"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]


def _in_list(column: F, values: list[str]) -> Q | _EqualsAny:
    """``column IN values`` as a filter: one array parameter on PostgreSQL, ``__in`` elsewhere."""
    if connection.vendor == "postgresql":
        return _EqualsAny(column, values)
    return Q(**{f"{column.name}__in": values})


# --- The batch engine ---------------------------------------------------------------------------


def _minimum_travel() -> dt.timedelta:
    return dt.timedelta(minutes=float(settings.NETHOSPITAL_TRACE_MIN_TRAVEL_MINUTES))


def _ilmd_value(ilmd: Any, name: str) -> str:
    if not isinstance(ilmd, dict):
        return ""
    for key, value in ilmd.items():
        if key.rsplit("#", 1)[-1].rsplit(":", 1)[-1] == name and isinstance(value, str | int):
            return str(value).strip()
    return ""


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def event_ref(event: EPCISEvent, organization: Organization | None = None) -> dict[str, Any]:
    """How an alert's evidence names an event: its id, time and place."""
    return {
        "eventID": event.event_id,
        "eventTime": event.event_time.isoformat(),
        "bizStep": cbv_word(event.biz_step),
        "bizLocation": event.biz_location,
        "organization": organization.pk if organization is not None else None,
    }


@dataclass
class _Batch:
    replay: bool = False
    packs: dict[str, Pack] = field(default_factory=dict)
    new: list[Pack] = field(default_factory=list)
    dirty: dict[str, Pack] = field(default_factory=dict)
    parent_of: dict[str, str | None] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)
    children_loaded: set[str] = field(default_factory=set)
    reparented: set[str] = field(default_factory=set)
    orgs: dict[str, Organization | None] = field(default_factory=dict)
    recalls: dict[tuple[str, str], Recall] = field(default_factory=dict)
    recall_gtins: set[str] = field(default_factory=set)
    drug_packs_by_gtin: dict[str, DrugPack] = field(default_factory=dict)
    drug_packs_by_prefix: dict[str, DrugPack] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)

    # -- loading --

    def _remember(self, pack: Pack, parent_identifier: str | None) -> None:
        self.packs[pack.identifier] = pack
        self.parent_of[pack.identifier] = parent_identifier
        if parent_identifier:
            self.children.setdefault(parent_identifier, set()).add(pack.identifier)

    def load(self, identifiers: Iterable[str]) -> None:
        wanted = sorted({i for i in identifiers if i not in self.packs})
        for start in range(0, len(wanted), 2000):
            chunk = wanted[start : start + 2000]
            rows = (
                Pack.objects.select_for_update(of=("self",))
                .filter(_in_list(F("identifier"), chunk))
                .annotate(parent_identifier=F("parent__identifier"))
                .order_by("identifier")
            )
            for pack in rows:
                self._remember(pack, pack.parent_identifier)  # type: ignore[attr-defined]

    def _load_children(self, identifiers: Iterable[str]) -> None:
        """Children in the database of the given packs, one query for all of them. Only containers
        can have any (``is_container`` is set when a pack first becomes a parent)."""
        by_pk: dict[int, str] = {}
        for identifier in identifiers:
            if identifier in self.children_loaded:
                continue
            self.children_loaded.add(identifier)
            pack = self.packs.get(identifier)
            if pack is not None and pack.pk is not None and pack.is_container:
                by_pk[pack.pk] = identifier
        if not by_pk:
            return
        rows = Pack.objects.select_for_update().filter(parent_id__in=list(by_pk)).order_by("identifier")
        for child in rows:
            if child.identifier not in self.packs:  # in memory, the batch's own state wins
                self._remember(child, by_pk[child.parent_id])  # type: ignore[index]

    def children_of(self, identifier: str) -> set[str]:
        self._load_children([identifier])
        return set(self.children.get(identifier, set()))

    def descendants(self, identifier: str) -> list[str]:
        found: list[str] = []
        seen = {identifier}
        level = [identifier]
        while level:
            self._load_children(level)
            following: list[str] = []
            for parent in level:
                for child in sorted(self.children.get(parent, set())):
                    if child not in seen:
                        seen.add(child)
                        found.append(child)
                        following.append(child)
            level = following
        return found

    def set_parent(self, child: str, parent: str | None) -> None:
        old = self.parent_of.get(child)
        if old:
            self.children.get(old, set()).discard(child)
        self.parent_of[child] = parent
        if parent:
            self.children.setdefault(parent, set()).add(child)
        self.dirty[child] = self.packs[child]
        self.reparented.add(child)

    def prepare(self, events: Sequence[EPCISEvent], identifiers: dict[int, list[tuple[str, str]]]) -> None:
        named = {ident for rows in identifiers.values() for _, ident in rows}
        self.load(named)
        self.orgs.update(organizations_for_locations(e.biz_location for e in events))
        gtins: set[str] = set()
        prefixes: set[str] = set()
        for ident in named:
            code = describe_identifier(ident)
            if code is None:
                continue
            if code.gtin:
                gtins.add(code.gtin)
            if code.china_code:
                prefixes.add(code.china_prefix)
        for pack in self.packs.values():
            if pack.gtin:
                gtins.add(pack.gtin)
        if gtins or prefixes:
            for drug_pack in DrugPack.objects.filter(Q(gtin__in=gtins) | Q(china_prefix__in=prefixes)).select_related(
                "drug"
            ):
                self.drug_packs_by_gtin[drug_pack.gtin] = drug_pack
                self.drug_packs_by_prefix[drug_pack.china_prefix] = drug_pack
                gtins.add(drug_pack.gtin)
        self._load_recalls(gtins)

    def _load_recalls(self, gtins: set[str]) -> None:
        wanted = gtins - self.recall_gtins
        if wanted:
            self.recall_gtins |= wanted
            self.recalls.update({(r.gtin, r.batch): r for r in Recall.objects.filter(gtin__in=wanted)})

    def recall_for(self, pack: Pack) -> Recall | None:
        """The recall of the pack's batch, if any (boxes met inside containers are looked up lazily)."""
        if not pack.gtin or not pack.batch:
            return None
        if pack.gtin not in self.recall_gtins:
            self._load_recalls({pack.gtin})
        return self.recalls.get((pack.gtin, pack.batch))

    # -- packs --

    def get_or_new(self, code: PackCode, event: EPCISEvent) -> tuple[Pack, bool]:
        known = self.packs.get(code.identifier)
        if known is not None:
            return known, known.last_event_id is None
        drug_pack = self.drug_packs_by_gtin.get(code.gtin) if code.gtin else None
        if drug_pack is None and code.china_code:
            drug_pack = self.drug_packs_by_prefix.get(code.china_prefix)
        pack: Pack = model_from_values(
            Pack,
            {
                **_NEW_PACK,
                "identifier": code.identifier,
                "gtin": code.gtin or (drug_pack.gtin if drug_pack else ""),
                "serial": code.serial,
                "china_code": code.china_code,
                "product_code": code.product_code,
                "drug_pack_id": drug_pack.pk if drug_pack is not None else None,
                "is_container": code.is_container,
            },
        )
        Pack._meta.get_field("drug_pack").set_cached_value(pack, drug_pack)
        self.new.append(pack)
        self._remember(pack, None)
        self.children_loaded.add(code.identifier)  # a new pack has no children in the database
        return pack, True

    def organization(self, event: EPCISEvent) -> Organization | None:
        return self.orgs.get(event.biz_location) if event.biz_location else None

    def alert(
        self,
        kind: str,
        severity: str,
        pack: Pack,
        event: EPCISEvent | None,
        evidence: dict[str, Any],
        organization: Organization | int | None = None,
    ) -> None:
        """Queue an alert for the organisation concerned (an Organization or its id)."""
        self.alerts.append(
            Alert(
                kind=kind,
                severity=severity,
                identifier=pack.identifier,
                product_code=pack.product_code,
                organization_id=organization.pk if isinstance(organization, Organization) else organization,
                event=event,
                evidence=evidence,
                raised_at=event.record_time if event is not None else timezone.now(),
            )
        )

    # -- writing --

    def flush(self) -> None:
        """Write the batch: new packs inserted with their final state (containers before their
        contents, so parent ids exist), changed packs updated in one statement per 500 rows."""
        new_ids = {id(p) for p in self.new}
        if self.new and connection.vendor == "postgresql":
            self._copy_new()
        elif self.new:
            self._insert_new()
        for identifier in self.reparented:
            parent = self.parent_of.get(identifier)
            self.packs[identifier].parent_id = self.packs[parent].pk if parent else None
        changed = [p for p in self.dirty.values() if id(p) not in new_ids]
        for start in range(0, len(changed), 500):
            _update_packs(changed[start : start + 500])
        alerts = self.alerts
        if self.replay:  # a rebuild raises only what was not raised before
            alerts = [a for a in alerts if not _already_raised(a)]
        if alerts:
            Alert.objects.bulk_create(alerts, batch_size=500)

    def _insert_new(self) -> None:
        for level in self._insertion_levels():
            for pack in level:
                parent = self.parent_of.get(pack.identifier)
                pack.parent_id = self.packs[parent].pk if parent else None
            Pack.objects.bulk_create(level, batch_size=500)
            missing = [p for p in level if p.pk is None]
            if missing:  # a database that does not return ids from bulk inserts
                ids = dict(
                    Pack.objects.filter(identifier__in=[p.identifier for p in missing]).values_list("identifier", "pk")
                )
                for pack in missing:
                    pack.pk = ids[pack.identifier]

    def _copy_new(self) -> None:
        """PostgreSQL: the new packs with COPY, ids taken from the sequence first so that a new pack
        inside a new case names it (containers first all the same)."""
        ordered = [pack for level in self._insertion_levels() for pack in level]
        for pack, pk in zip(ordered, next_ids(Pack, len(ordered)), strict=True):
            pack.pk = pk
            pack._state.adding = False
        for pack in ordered:
            parent = self.parent_of.get(pack.identifier)
            pack.parent_id = self.packs[parent].pk if parent else None
        fields = [cast("models.Field[Any, Any]", f) for f in Pack._meta.concrete_fields]
        # The attributes as they are (str, int, bool, date, aware datetime, None: what psycopg
        # adapts itself); text fields through str() as CharField.get_prep_value would (choices).
        columns = [(f.attname, isinstance(f, models.CharField)) for f in fields]

        def row(pack: Pack) -> list[Any]:
            values = [getattr(pack, name) for name, _ in columns]
            return [str(v) if is_text and v is not None else v for v, (_, is_text) in zip(values, columns, strict=True)]

        copy_rows(Pack._meta.db_table, [str(f.column) for f in fields], (row(pack) for pack in ordered))

    def _insertion_levels(self) -> list[list[Pack]]:
        """New packs grouped so that a new container is inserted before the new packs inside it."""
        new = {p.identifier: p for p in self.new}
        depth: dict[str, int] = {}

        def depth_of(identifier: str, seen: int = 0) -> int:
            if identifier not in depth:
                parent = self.parent_of.get(identifier)
                depth[identifier] = depth_of(parent, seen + 1) + 1 if parent in new and seen < 16 else 0
            return depth[identifier]

        levels: dict[int, list[Pack]] = {}
        for identifier, pack in new.items():
            levels.setdefault(depth_of(identifier), []).append(pack)
        return [levels[d] for d in sorted(levels)]


def _update_packs(packs: list[Pack]) -> None:
    """``bulk_update`` without its per-row CASE expressions: one UPDATE ... FROM per call, the values
    prepared by the fields themselves. PostgreSQL gets one array per column (``unnest``), so the
    statement has a constant number of parameters; SQLite (3.33+) gets a VALUES list."""
    if not packs:
        return
    fields = [cast("models.Field[Any, Any]", Pack._meta.get_field(name)) for name in _PACK_FIELDS]
    table = connection.ops.quote_name(Pack._meta.db_table)
    id_column = connection.ops.quote_name("id")
    columns = [[pack.pk for pack in packs]]
    for model_field in fields:
        columns.append([model_field.get_db_prep_save(getattr(pack, model_field.attname), connection) for pack in packs])
    names = ["id", *(f"c{i}" for i in range(len(fields)))]
    assignments = ", ".join(
        f"{connection.ops.quote_name(f.column)} = v.{name}" for f, name in zip(fields, names[1:], strict=True)
    )
    if connection.vendor == "postgresql":
        types = ["bigint", *(f.db_type(connection) for f in fields)]
        arrays = ", ".join(f"%s::{db_type}[]" for db_type in types)
        source = f"unnest({arrays}) AS v({', '.join(names)})"
        params: list[Any] = columns
    else:
        row = "(" + ", ".join(["%s"] * len(names)) + ")"
        selected = ", ".join(f"column{i + 1} AS {name}" for i, name in enumerate(names))
        # Only model metadata and placeholders go into the text; every value is a parameter.
        source = f"(SELECT {selected} FROM (VALUES {', '.join([row] * len(packs))})) AS v"  # noqa: S608
        params = [value for values in zip(*columns, strict=True) for value in values]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignments} FROM {source} WHERE {table}.{id_column} = v.id", params)  # noqa: S608


_PACK_FIELDS = [
    "gtin",
    "serial",
    "china_code",
    "product_code",
    "drug_pack",
    "batch",
    "expiry",
    "is_container",
    "status",
    "parent",
    "location",
    "owner",
    "dispensed_count",
    "commissioned_at",
    "received_at",
    "dispensed_at",
    "last_event",
    "last_event_time",
]


def _already_raised(alert: Alert) -> bool:
    return Alert.objects.filter(kind=alert.kind, identifier=alert.identifier, event=alert.event).exists()


def _identifiers_by_event(event_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    by_event: dict[int, list[tuple[str, str]]] = {pk: [] for pk in event_ids}
    if not event_ids:
        return by_event
    for start in range(0, len(event_ids), 2000):
        rows = EventIdentifier.objects.filter(event_id__in=event_ids[start : start + 2000]).values_list(
            "event_id", "role", "identifier"
        )
        for event_id, role, identifier in rows.order_by("pk"):
            by_event[event_id].append((role, identifier))
    return by_event


def apply_events(
    events: Sequence[EPCISEvent], *, identifiers: Mapping[int, list[tuple[str, str]]] | None = None
) -> None:
    """Bring packs up to date with newly captured events (in record order), raising alerts (R20).
    Call inside the capture's transaction, after the events and their identifiers are stored.
    ``identifiers``: the (role, identifier) rows just stored for some of the events, by event id, in
    the order stored (the capture has them in memory); the others' are read from the index."""
    if not events:
        return
    erroneous = [e for e in events if e.declared_erroneous_at is not None or _is_error_declaration(e)]
    live = [e for e in events if e.declared_erroneous_at is None and not _is_error_declaration(e)]
    if live:
        known = identifiers or {}
        by_event = _identifiers_by_event([e.pk for e in live if e.pk not in known])
        by_event.update({e.pk: known[e.pk] for e in live if e.pk in known})
        batch = _Batch()
        batch.prepare(live, by_event)
        for event in live:
            _apply_one(batch, event, by_event[event.pk])
        batch.flush()
    if erroneous:
        named = _identifiers_by_event([e.pk for e in erroneous])
        rebuild_packs({ident for rows in named.values() for _, ident in rows})


def _is_error_declaration(event: EPCISEvent) -> bool:
    """An event carrying ``errorDeclaration`` declares another event wrong; it moves nothing itself."""
    return isinstance(event.document, dict) and "errorDeclaration" in event.document


def rebuild_packs(identifiers: Iterable[str]) -> None:
    """Recompute packs from all events that still count (after an errorDeclaration): the packs named,
    their containers and their contents, replayed in event-time order."""
    group = {i for i in identifiers if describe_identifier(i) is not None}
    if not group:
        return
    # Close the group over aggregation: whatever was packed with these packs is affected too.
    for _ in range(10):
        packs = Pack.objects.filter(identifier__in=group)
        related = set(Pack.objects.filter(parent__in=packs).values_list("identifier", flat=True))
        related |= set(packs.exclude(parent=None).values_list("parent__identifier", flat=True))
        aggregation_events = EventIdentifier.objects.filter(
            identifier__in=group, event__event_type=EventType.AGGREGATION
        ).values("event_id")
        related |= set(
            EventIdentifier.objects.filter(event_id__in=aggregation_events).values_list("identifier", flat=True)
        )
        related = {i for i in related if describe_identifier(i) is not None}
        if related <= group:
            break
        group |= related
    Pack.objects.filter(identifier__in=group).update(
        batch="",
        expiry=None,
        status=PackStatus.UNKNOWN,
        parent=None,
        location="",
        owner=None,
        dispensed_count=0,
        commissioned_at=None,
        received_at=None,
        dispensed_at=None,
        last_event=None,
        last_event_time=None,
    )
    events = list(
        EPCISEvent.objects.filter(
            pk__in=EventIdentifier.objects.filter(identifier__in=group).values("event_id"),
            declared_erroneous_at__isnull=True,
        ).order_by("event_time", "record_time", "pk")
    )
    live = [e for e in events if not _is_error_declaration(e)]
    if not live:
        return
    by_event = _identifiers_by_event([e.pk for e in live])
    batch = _Batch(replay=True)
    batch.prepare(live, by_event)
    for event in live:
        _apply_one(batch, event, by_event[event.pk])
    batch.flush()


# --- One event ----------------------------------------------------------------------------------


def _apply_one(batch: _Batch, event: EPCISEvent, named: list[tuple[str, str]]) -> None:
    if event.event_type == EventType.AGGREGATION:
        _apply_aggregation(batch, event, named)
        return
    roles = {EPCRole.EPC, EPCRole.PARENT, EPCRole.INPUT, EPCRole.OUTPUT}
    if event.event_type == EventType.TRANSFORMATION:
        roles = {EPCRole.INPUT, EPCRole.OUTPUT}
    lots = {}
    for role, identifier in named:
        if role == EPCRole.QUANTITY and (parts := lgtin_parts(identifier)):
            lots[parts[0]] = parts[1]
    for role, identifier in named:
        if role not in roles:
            continue
        code = describe_identifier(identifier)
        if code is None:
            continue
        pack, is_new = batch.get_or_new(code, event)
        transition = transition_of(event, pack.status)
        if event.event_type == EventType.TRANSFORMATION and role == EPCRole.OUTPUT and is_new:
            transition = Transition.COMMISSION
        _apply_to_pack(batch, pack, event, transition, is_new=is_new, lot=lots.get(pack.gtin, ""))
        if transition in _RESOLVED_THROUGH_CONTAINERS:
            for child_identifier in batch.descendants(pack.identifier):
                child = batch.packs[child_identifier]
                _apply_to_pack(batch, child, event, transition, is_new=False, through=pack)


def _apply_aggregation(batch: _Batch, event: EPCISEvent, named: list[tuple[str, str]]) -> None:
    parent_identifier = next((i for r, i in named if r == EPCRole.PARENT), "")
    child_identifiers = [i for r, i in named if r == EPCRole.CHILD]
    parent_code = describe_identifier(parent_identifier) if parent_identifier else None
    transition = transition_of(event)
    parent: Pack | None = None
    if parent_code is not None:
        parent, is_new = batch.get_or_new(parent_code, event)
        parent.is_container = True
        if is_new and transition == Transition.PACK:
            # Packing creates the case or pallet (its SSCC is assigned here): it is genuine.
            _apply_to_pack(batch, parent, event, Transition.COMMISSION, is_new=False)
        else:
            _apply_to_pack(batch, parent, event, Transition.OBSERVE, is_new=is_new)
    if transition == Transition.UNPACK and parent is not None and not child_identifiers:
        child_identifiers = sorted(batch.children_of(parent.identifier))  # DELETE without children: all
    for identifier in child_identifiers:
        code = describe_identifier(identifier)
        if code is None:
            continue
        child, is_new = batch.get_or_new(code, event)
        _apply_to_pack(batch, child, event, Transition.OBSERVE if parent is None else transition, is_new=is_new)
        if parent is None:
            continue
        current = batch.parent_of.get(child.identifier)
        if transition == Transition.PACK:
            if current and current != parent.identifier:
                batch.alert(
                    AlertKind.TWO_PARENTS,
                    anomalies.SEVERITY[AlertKind.TWO_PARENTS],
                    child,
                    event,
                    {
                        "events": [event_ref(event, batch.organization(event))],
                        "firstParent": current,
                        "secondParent": parent.identifier,
                        "kept": current,
                    },
                    batch.organization(event) or child.owner_id,
                )
            elif current is None:
                batch.set_parent(child.identifier, parent.identifier)
                if _is_latest(child, event) and child.status in _PACKABLE:
                    child.status = PackStatus.PACKED
        elif transition == Transition.UNPACK and current == parent.identifier:
            batch.set_parent(child.identifier, None)
            if child.status == PackStatus.PACKED:
                child.status = PackStatus.COMMISSIONED if child.commissioned_at else PackStatus.UNKNOWN


def _is_latest(pack: Pack, event: EPCISEvent) -> bool:
    return pack.last_event_time is None or event.event_time >= pack.last_event_time


def _apply_to_pack(
    batch: _Batch,
    pack: Pack,
    event: EPCISEvent,
    transition: str,
    *,
    is_new: bool,
    lot: str = "",
    through: Pack | None = None,
) -> None:
    """One pack, one event: checks first (they compare with the state before the event), then the move."""
    batch.dirty[pack.identifier] = pack
    organization = batch.organization(event)
    latest = _is_latest(pack, event)
    if is_new and transition != Transition.COMMISSION and through is None:
        anomalies.unknown_code(batch, pack, event, organization)
    if through is None:
        anomalies.check_event(batch, pack, event, transition, organization)
    else:
        anomalies.check_resolved(batch, pack, event, transition, organization, through)

    if transition == Transition.COMMISSION:
        if pack.commissioned_at is None or event.event_time < pack.commissioned_at:
            pack.commissioned_at = event.event_time
        ilmd = event.document.get("ilmd") if isinstance(event.document, dict) else None
        pack.batch = pack.batch or _ilmd_value(ilmd, "lotNumber")[:20] or lot[:20]
        if pack.expiry is None:
            pack.expiry = _parse_date(_ilmd_value(ilmd, "itemExpirationDate"))
        if latest and pack.status == PackStatus.UNKNOWN:
            pack.status = PackStatus.COMMISSIONED
    elif lot and not pack.batch:
        pack.batch = lot[:20]
    if transition == Transition.DISPENSE:
        pack.dispensed_count += 1
        if pack.dispensed_at is None or event.event_time < pack.dispensed_at:
            pack.dispensed_at = event.event_time
    if transition == Transition.RECEIVE and latest and pack.status not in _END_OF_LIFE | _AFTER_DISPENSING:
        pack.received_at = event.event_time
        pack.owner = organization
    if latest:
        new_status = _STATUS_AFTER.get(transition)
        terminal = pack.status in _END_OF_LIFE
        if new_status is not None and not terminal:
            if transition in (Transition.SHIP, Transition.RECEIVE) and pack.status in _AFTER_DISPENSING:
                new_status = None  # a dispensed box is not stock again
            elif through is not None and pack.status in _END_OF_LIFE | _AFTER_DISPENSING:
                new_status = None
        if new_status is not None and not terminal:
            pack.status = new_status
        pack.location = event.biz_location
        pack.last_event = event
        pack.last_event_time = event.event_time


_STATUS_AFTER = {
    Transition.SHIP: PackStatus.SHIPPED,
    Transition.RECEIVE: PackStatus.RECEIVED,
    Transition.DISPENSE: PackStatus.DISPENSED,
    Transition.HAND_TO_COURIER: PackStatus.WITH_COURIER,
    Transition.DELIVER: PackStatus.DELIVERED,
    Transition.DECOMMISSION: PackStatus.DECOMMISSIONED,
    Transition.DESTROY: PackStatus.DESTROYED,
}


__all__ = [
    "COURIER_HANDOVER",
    "DELIVERY",
    "PHARMACY_DISPENSING",
    "PHARMACY_RECEIVING",
    "SHIPPING",
    "CBVStep",
    "apply_events",
    "cbv_word",
    "describe_identifier",
    "location_uri_for",
    "organization_for_location",
    "organizations_for_locations",
    "rebuild_packs",
    "register_location",
]
