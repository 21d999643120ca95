"""EPCIS 2.0 queries: ``GET /epcis/events`` and ``GET /epcis/epcs/{epc}/events`` (R22).

Parameters (the REST bindings' names; lists are pipe-delimited, ``a|b``):

=========================  ===========================================================================
eventType                  ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent, ...
EQ_bizStep, EQ_disposition CBV bare words, CBV URIs, declared CURIEs or URIs (compared as full URIs)
EQ_action                  ADD, OBSERVE, DELETE
EQ_readPoint, EQ_bizLocation  location URIs, exactly as captured
MATCH_epc                  an EPC of epcList or childEPCs
MATCH_parentID             the parentID
MATCH_inputEPC / _outputEPC  inputEPCList / outputEPCList
MATCH_anyEPC               any of the above
MATCH_epcClass, MATCH_anyEPCClass  an epcClass of a quantity list
GE_/LT_eventTime, GE_/LT_recordTime  ISO 8601 with a zone offset
EQ_eventID                 event IDs
EXISTS_errorDeclaration    events declared erroneous
perPage                    1 to 1000 (default 30)
nextPageToken              from the previous page's ``Link: <...>; rel="next"``
=========================  ===========================================================================

EPC values may be URNs or GS1 Digital Links (converted to URNs like the index); an EPC pattern
``urn:epc:idpat:sgtin:CompanyPrefix.ItemRef.*`` matches every serial of that GTIN. Any other
parameter is refused (``epcisException:QueryParameterException``, 400).

Results are in capture order. ``nextPageToken`` is an opaque, signed cursor: the last event's key and
a digest of the filters, valid for one hour and only with the same filters.

The events are answered as stored (the document captured), with ``eventID`` (given or computed) and
``recordTime`` (when this repository recorded it), and ``errorDeclaration`` when the event was
declared erroneous by a later declaration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from nethospital.traceability import codes, epcis, errors
from nethospital.traceability.choices import EPCRole
from nethospital.traceability.errors import EPCISException, query_error
from nethospital.traceability.models import EPCISEvent, EventIdentifier

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
TOKEN_MAX_AGE = 3600
_TOKEN_SALT = "nethospital.epcis.nextPageToken"  # noqa: S105 - a signing salt, not a secret

_MATCH_ROLES = {
    "MATCH_epc": (EPCRole.EPC, EPCRole.CHILD),
    "MATCH_parentID": (EPCRole.PARENT,),
    "MATCH_inputEPC": (EPCRole.INPUT,),
    "MATCH_outputEPC": (EPCRole.OUTPUT,),
    "MATCH_anyEPC": (EPCRole.EPC, EPCRole.CHILD, EPCRole.PARENT, EPCRole.INPUT, EPCRole.OUTPUT),
    "MATCH_epcClass": (EPCRole.QUANTITY,),
    "MATCH_anyEPCClass": (EPCRole.QUANTITY,),
}
_TIMES = {
    "GE_eventTime": "event_time__gte",
    "LT_eventTime": "event_time__lt",
    "GE_recordTime": "record_time__gte",
    "LT_recordTime": "record_time__lt",
}
PARAMETERS = frozenset(
    {
        "eventType",
        "EQ_bizStep",
        "EQ_disposition",
        "EQ_action",
        "EQ_readPoint",
        "EQ_bizLocation",
        "EQ_eventID",
        "EXISTS_errorDeclaration",
        "perPage",
        "nextPageToken",
    }
    | set(_MATCH_ROLES)
    | set(_TIMES)
)


@dataclass
class EventQuery:
    """Parsed query parameters: the filter, its digest (for page tokens) and the page wanted."""

    filter: Q = field(default_factory=Q)
    digest: str = ""
    per_page: int = DEFAULT_PER_PAGE
    after_pk: int = 0


def _values(params: QueryDict, name: str) -> list[str]:
    values = [v for raw in params.getlist(name) for v in raw.split("|") if v != ""]
    if not values:
        raise query_error(errors.BAD_PARAMETER % {"name": name, "error": "empty"})
    return values


def _time(name: str, value: str) -> dt.datetime:
    parsed = epcis.parse_time(value)
    if parsed is None:
        raise query_error(errors.BAD_PARAMETER % {"name": name, "error": "not a date and time with an offset"})
    return parsed


def _vocabulary(name: str, values: list[str], vocabulary: str) -> list[str]:
    context = epcis._EventContext(None, epcis.Namespaces.of(None))
    found = []
    for value in values:
        try:
            found.append(epcis.vocabulary_uri(value, vocabulary, name, context))
        except EPCISException as exc:
            raise query_error(errors.BAD_PARAMETER % {"name": name, "error": exc.detail}) from exc
    return found


def identifier_filter(values: list[str], roles: tuple[str, ...]) -> Q:
    """Events naming one of ``values`` (URNs, Digital Links or SGTIN patterns) in ``roles``."""
    exact: list[str] = []
    prefixes: list[str] = []
    for value in values:
        canonical = codes.canonical_identifier(value.strip())
        if canonical.startswith("urn:epc:idpat:sgtin:") and canonical.endswith(".*"):
            prefixes.append("urn:epc:id:sgtin:" + canonical[len("urn:epc:idpat:sgtin:") : -1])
            if EPCRole.QUANTITY in roles:
                exact.append(canonical)
        else:
            exact.append(canonical)
    condition = Q(identifier__in=exact) if exact else Q(pk__in=[])
    for prefix in prefixes:
        condition |= Q(identifier__startswith=prefix)
    matching = EventIdentifier.objects.filter(condition, role__in=roles).values("event_id")
    return Q(pk__in=matching)


def parse_query(params: QueryDict, *, extra: Q | None = None) -> EventQuery:
    """Check and translate the query parameters; ``extra`` adds a fixed filter (a path's EPC)."""
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise query_error(errors.UNKNOWN_PARAMETER % {"name": unknown[0][:60]})
    condition = extra or Q()
    digest_parts: list[str] = [repr(extra)] if extra is not None else []
    for name in sorted(params):
        if name in ("perPage", "nextPageToken"):
            continue
        values = _values(params, name)
        digest_parts.append(f"{name}={'|'.join(values)}")
        if name == "eventType":
            condition &= Q(event_type__in=values)
        elif name == "EQ_bizStep":
            condition &= Q(biz_step__in=_vocabulary(name, values, "bizstep"))
        elif name == "EQ_disposition":
            condition &= Q(disposition__in=_vocabulary(name, values, "disposition"))
        elif name == "EQ_action":
            if any(v not in ("ADD", "OBSERVE", "DELETE") for v in values):
                raise query_error(errors.BAD_PARAMETER % {"name": name, "error": "ADD, OBSERVE or DELETE"})
            condition &= Q(action__in=values)
        elif name == "EQ_readPoint":
            condition &= Q(read_point__in=values)
        elif name == "EQ_bizLocation":
            condition &= Q(biz_location__in=values)
        elif name == "EQ_eventID":
            condition &= Q(event_id__in=values)
        elif name == "EXISTS_errorDeclaration":
            condition &= Q(declared_erroneous_at__isnull=False)
        elif name in _MATCH_ROLES:
            condition &= identifier_filter(values, _MATCH_ROLES[name])
        elif name in _TIMES:
            if len(values) != 1:
                raise query_error(errors.BAD_PARAMETER % {"name": name, "error": "one value"})
            condition &= Q(**{_TIMES[name]: _time(name, values[0])})
    query = EventQuery(filter=condition, digest=hashlib.sha256("&".join(digest_parts).encode()).hexdigest()[:32])
    if "perPage" in params:
        raw = params.get("perPage", "")
        if not raw.isdigit() or int(raw) < 1:
            raise query_error(errors.BAD_PARAMETER % {"name": "perPage", "error": "a whole number from 1"})
        query.per_page = min(int(raw), MAX_PER_PAGE)
    if "nextPageToken" in params:
        query.after_pk = _read_token(params.get("nextPageToken", ""), query.digest)
    return query


def make_token(last_pk: int, digest: str) -> str:
    return signing.TimestampSigner(salt=_TOKEN_SALT).sign_object({"a": last_pk, "f": digest}, compress=True)


def _read_token(token: str, digest: str) -> int:
    try:
        data = signing.TimestampSigner(salt=_TOKEN_SALT).unsign_object(token, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature as exc:
        raise query_error(errors.BAD_PAGE_TOKEN) from exc
    if not isinstance(data, dict) or data.get("f") != digest or not isinstance(data.get("a"), int):
        raise query_error(errors.BAD_PAGE_TOKEN)
    return int(data["a"])


@dataclass
class Page:
    events: list[EPCISEvent]
    next_token: str | None


def run_query(query: EventQuery, base: QuerySet[EPCISEvent] | None = None) -> Page:
    queryset = (base if base is not None else EPCISEvent.objects.all()).filter(query.filter)
    if query.after_pk:
        queryset = queryset.filter(pk__gt=query.after_pk)
    rows = list(queryset.order_by("pk")[: query.per_page + 1])
    next_token = None
    if len(rows) > query.per_page:
        rows = rows[: query.per_page]
        next_token = make_token(rows[-1].pk, query.digest)
    return Page(rows, next_token)


def epc_filter(epc: str) -> Q:
    """``/epcs/{epc}/events``: events naming this EPC in any role (the path's EPC is a URN or a
    Digital Link)."""
    value = epc.strip()
    if not value.startswith(("urn:", "http://", "https://")) and not value.isdigit():
        raise query_error(errors.BAD_EPC % {"value": value[:100]})
    return identifier_filter([value], _MATCH_ROLES["MATCH_anyEPC"] + (EPCRole.QUANTITY,))


# --- Rendering ----------------------------------------------------------------------------------


def render_event(row: EPCISEvent) -> dict[str, Any]:
    """The event as stored, with the repository's eventID, recordTime and error declaration."""
    event = dict(row.document) if isinstance(row.document, dict) else {}
    event.setdefault("eventID", row.event_id)
    event["recordTime"] = row.record_time.isoformat()
    if row.declared_erroneous_at is not None and "errorDeclaration" not in event:
        declaration: dict[str, Any] = {"declarationTime": row.declared_erroneous_at.isoformat()}
        if row.declaration_reason:
            declaration["reason"] = row.declaration_reason
        if row.corrective_event_ids:
            declaration["correctiveEventIDs"] = list(row.corrective_event_ids)
        event["errorDeclaration"] = declaration
    return event


def query_document(rows: list[EPCISEvent], *, query_name: str = "SimpleEventQuery") -> dict[str, Any]:
    """An ``EPCISQueryDocument`` holding ``rows``."""
    return {
        "@context": [epcis.STANDARD_CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": timezone.now().isoformat(),
        "epcisBody": {
            "queryResults": {
                "queryName": query_name,
                "resultsBody": {"eventList": [render_event(row) for row in rows]},
            }
        },
    }
