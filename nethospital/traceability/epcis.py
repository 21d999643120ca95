"""The EPCIS 2.0 repository's core: validation, normalisation, event hash IDs and storing (R19, R22).

One validation pass per event, in this order, each failure an ``EPCISException``
(``epcisException:ValidationException``) that names the event (``instance`` =
``#/epcisBody/eventList/<i>``):

1. the event type is one of the five EPCIS 2.0 types (the schema would let any "extension" type pass);
2. the event against ``EPCIS-JSON-Schema.json`` (draft-07). A compiled validator (fastjsonschema,
   one per event type: the schema's event definition is "if type is X then X") answers first; an
   event it refuses is validated again by jsonschema (the reference engine) for the message, and
   only refused if jsonschema refuses it too. Formats are not checked by either, as
   the schema's authors intended, which is why step 3 exists;
3. what the schema misses: bizStep, disposition (and persistentDisposition, error reasons, business
   transaction and source/destination types) are CBV bare words, CBV URIs of real CBV words, full
   URIs, or CURIEs whose prefix is declared in ``@context``; every extension field (event level,
   inside readPoint, bizLocation, sensor elements, errorDeclaration) and every ILMD field is
   ``prefix:name`` with the prefix declared (or the standard ``cbvmda``, ``gs1``, ``cbv``, ``epcis``,
   ``rdfs``...), or a full URI; times carry a zone offset and are real dates; the EPCs and classes
   named are well-formed (an SGTIN's company prefix and item reference are 13 digits, a Digital Link's
   GTIN or SSCC has a right check digit, a China code has 20 digits); ILMD dates are real dates.

Normalisation pulls out what queries and pack state need (event time, action, bizStep and
disposition as full CBV URIs ``https://ref.gs1.org/cbv/BizStep-...``, readPoint, bizLocation, the
product code, and every identifier as a canonical URN — Digital Links converted). The event itself is
stored as received; when the capture document declared namespace prefixes in its ``@context`` and the
event has no ``@context`` of its own, the document's is attached so that the event's CURIEs keep their
meaning when it is queried alone.

Event IDs: a given ``eventID`` is kept. Otherwise the EPCIS event hash ID of CBV 2.0 §8.9 is
computed (``ni:///sha-256;<hex>?ver=CBV2.0``): the canonical pre-hash string of the event (fields in
the canonical property order, lists sorted, times in UTC with milliseconds, numbers without trailing
zeros, CBV words and URNs as GS1 Web URIs, EPC URNs as canonical GS1 Digital Links, CURIEs expanded,
extensions as ``{namespace}name=value`` sorted) hashed with SHA-256. ``recordTime``, ``eventID``,
``certificationInfo``, comments and ``errorDeclaration`` are not part of it: the same event sent twice
gets the same ID and is stored once, and the error declaration of an event captured without an ID
carries that event's ID (EPCIS 2.0 §7.4.1.4 wants the declaration to name the original's eventID).

Storing (``store_events``) is bulk: one query for the IDs already stored, then events and
identifiers in bulk (on PostgreSQL with COPY, the events' ids taken from their sequence first; a
``bulk_create`` elsewhere), one update per declared original, then ``state.apply_events`` in the same
transaction with the identifiers in hand.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from django.db import connection
from django.utils import timezone

from nethospital.traceability import codes, errors
from nethospital.traceability.choices import EPCRole, EventType
from nethospital.traceability.errors import EPCISException, validation_error
from nethospital.traceability.models import CaptureJob, EPCISEvent, EventIdentifier

EVENT_TYPES = frozenset(EventType.values)
CBV_BASE = "https://ref.gs1.org/cbv/"
BIZSTEP_URI = CBV_BASE + "BizStep-"
DISPOSITION_URI = CBV_BASE + "Disp-"
STANDARD_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# Prefixes the standard EPCIS context declares: they need no declaration in a document.
STANDARD_PREFIXES = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": CBV_BASE,
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
# URI schemes accepted as full URIs in vocabulary fields (anything else before a colon must be a
# declared prefix).
URI_SCHEMES = frozenset({"http", "https", "urn", "tag", "ni", "did", "geo", "mailto", "data"})
MAX_IDENTIFIER_LENGTH = 300

_ROLE_OF_LIST = {
    "epcList": EPCRole.EPC,
    "childEPCs": EPCRole.CHILD,
    "inputEPCList": EPCRole.INPUT,
    "outputEPCList": EPCRole.OUTPUT,
}
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_ILMD_DATES = ("itemExpirationDate", "bestBeforeDate", "sellByDate", "productionDate", "firstFreezeDate")


# --- Static data (loaded once per process) -----------------------------------------------------


def _data(name: str) -> Any:
    return json.loads(resources.files("nethospital.traceability").joinpath("epcis_data", name).read_text("utf-8"))


@functools.cache
def epcis_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _data("EPCIS-JSON-Schema.json")
    return schema


def _event_schema() -> dict[str, Any]:
    root = epcis_schema()
    return {
        "$schema": root["$schema"],
        "$id": root["$id"],
        "$ref": "#/definitions/EPCIS-Document-Event",
        "definitions": root["definitions"],
    }


def _accepts_any_string(schema: Any, definitions: dict[str, Any]) -> bool:
    """Whether ``schema`` accepts every string when formats are not checked (``{"type": "string",
    "format": "uri"}``, through ``$ref`` and ``anyOf``)."""
    for _ in range(10):
        if isinstance(schema, dict) and set(schema) == {"$ref"} and schema["$ref"].startswith("#/definitions/"):
            schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    if not isinstance(schema, dict):
        return False
    if set(schema) == {"anyOf"}:
        return any(_accepts_any_string(branch, definitions) for branch in schema["anyOf"])
    return schema.get("type") == "string" and set(schema) <= {"type", "format"}


def _without_vacuous_property_names(node: Any, definitions: dict[str, Any]) -> Any:
    """A copy of ``node`` without the ``propertyNames`` that every name passes. The event types'
    ``propertyNames`` are ``anyOf`` an enum of standard names or ``vocab-uri``, a string with the
    format ``uri``: with formats unchecked every name passes, but the compiled validator would still
    try each branch of each name in turn (an exception per failed branch, a third of its time)."""
    if isinstance(node, list):
        return [_without_vacuous_property_names(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _without_vacuous_property_names(value, definitions)
        for key, value in node.items()
        if not (key == "propertyNames" and _accepts_any_string(value, definitions))
    }


@functools.cache
def _fast_event_validators() -> dict[str, Any]:
    """A compiled validator (fastjsonschema) per event type. ``EPCIS-Document-Event`` is an
    ``allOf`` of ``if type is X then X``: for one of the five types it is exactly that type's
    definition, so the event is checked against that one directly."""
    import fastjsonschema

    root = epcis_schema()
    definitions = _without_vacuous_property_names(root["definitions"], root["definitions"])
    return {
        event_type: fastjsonschema.compile(
            {
                "$schema": root["$schema"],
                "$id": root["$id"],
                "$ref": f"#/definitions/{event_type}",
                "definitions": definitions,
            },
            use_formats=False,
        )
        for event_type in sorted(EVENT_TYPES)
    }


@functools.cache
def _fast_document_event_validator() -> Any:
    import fastjsonschema

    return fastjsonschema.compile(_event_schema(), use_formats=False)


def _fast_event_validator() -> Any:
    """Validate one event with the compiled validators (raises ``JsonSchemaValueException``)."""
    validators = _fast_event_validators()

    def validate(event: Any) -> Any:
        event_type = event.get("type") if isinstance(event, dict) else None
        by_type = validators.get(event_type) if isinstance(event_type, str) else None
        if by_type is not None:
            return by_type(event)
        return _fast_document_event_validator()(event)

    return validate


@functools.cache
def _reference_event_validator() -> Any:
    from jsonschema import Draft7Validator

    return Draft7Validator(_event_schema())


@functools.cache
def _reference_document_validator() -> Any:
    from jsonschema import Draft7Validator

    return Draft7Validator(epcis_schema())


@dataclass(frozen=True)
class Vocabulary:
    """The CBV bare words of one vocabulary and the URI each stands for."""

    name: str
    uri_prefix: str  # https://ref.gs1.org/cbv/BizStep-
    words: frozenset[str]

    def uri(self, word: str) -> str:
        return self.uri_prefix + word


@functools.cache
def vocabularies() -> dict[str, Vocabulary]:
    """From the CBV JSON-LD contexts: bizstep, disposition, btt, sdt, er."""
    found: dict[str, Vocabulary] = {}
    for key, file_name, marker in (
        ("bizstep", "cbv-context-bizstep.json", "BizStep-"),
        ("disposition", "cbv-context-disposition.json", "Disp-"),
        ("btt", "cbv-context-biztransaction-type.json", "BTT-"),
        ("sdt", "cbv-context-sourcedest-type.json", "SDT-"),
        ("er", "cbv-context-error-reason.json", "ER-"),
    ):
        context = _data(file_name)["@context"]
        words = frozenset(k for k, v in context.items() if isinstance(v, str) and v.startswith("cbv:" + marker))
        found[key] = Vocabulary(key, CBV_BASE + marker, words)
    return found


# Legacy and alternative spellings of CBV URIs, mapped to the vocabulary key.
_CBV_URI_FORMS = (
    ("urn:epcglobal:cbv:bizstep:", "bizstep"),
    ("urn:epcglobal:cbv:disp:", "disposition"),
    ("urn:epcglobal:cbv:btt:", "btt"),
    ("urn:epcglobal:cbv:sdt:", "sdt"),
    ("urn:epcglobal:cbv:er:", "er"),
    ("https://gs1.org/voc/BizStep-", "bizstep"),
    ("https://gs1.org/voc/Disp-", "disposition"),
    (BIZSTEP_URI, "bizstep"),
    (DISPOSITION_URI, "disposition"),
    (CBV_BASE + "BTT-", "btt"),
    (CBV_BASE + "SDT-", "sdt"),
    (CBV_BASE + "ER-", "er"),
)


@functools.cache
def standard_fields() -> dict[str, frozenset[str]]:
    """The standard member names of each event type and of the extension points, from the schema."""
    definitions = epcis_schema()["definitions"]
    common = set(definitions["Event"]["properties"]) | {"type", "@context"}
    fields: dict[str, frozenset[str]] = {
        event_type: frozenset(common | set(definitions[event_type]["allOf"][1]["properties"]))
        for event_type in EVENT_TYPES
    }
    fields["sensorMetadata"] = frozenset(definitions["sensorMetadata"]["properties"])
    fields["sensorReport"] = frozenset(definitions["sensorReport"]["properties"])
    fields["sensorElement"] = frozenset({"sensorMetadata", "sensorReport"})
    fields["errorDeclaration"] = frozenset({"declarationTime", "reason", "correctiveEventIDs"})
    fields["readPoint"] = fields["bizLocation"] = frozenset({"id"})
    return fields


def warm_up() -> None:
    """Load the schema, compile the validators and read the vocabularies (about a second)."""
    _fast_event_validators()
    vocabularies()
    standard_fields()


# --- Namespaces ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Namespaces:
    """Prefixes (``example`` → ``http://ns.example.com/epcis/``) and plain terms declared in
    ``@context``, with the standard EPCIS ones."""

    prefixes: dict[str, str]
    terms: frozenset[str] = frozenset()
    # Pre-hash renderings of the strings met under these namespaces (``_PreHash.value``): the same
    # bizStep, place and EPC URN come back in many events of one document.
    rendered: dict[tuple[str, str | None, str], str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, *contexts: Any) -> Namespaces:
        prefixes = dict(STANDARD_PREFIXES)
        terms: set[str] = set()
        for context in contexts:
            items = context if isinstance(context, list) else [context]
            for item in items:
                if not isinstance(item, dict):
                    continue  # a context URL
                for key, value in item.items():
                    if key.startswith("@"):
                        continue
                    target = value.get("@id") if isinstance(value, dict) else value
                    if not isinstance(target, str):
                        continue
                    if ":" in key:
                        terms.add(key)
                    else:
                        # JSON-LD 1.1 wants a prefix's IRI to end with / or #; the EPCIS examples
                        # declare some without, so any absolute IRI makes a prefix (and a term).
                        terms.add(key)
                        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
                            prefixes[key] = target
        return cls(prefixes, frozenset(terms))

    def expand(self, value: str) -> str | None:
        """The full URI of a CURIE with a declared prefix, else None."""
        prefix, sep, rest = value.partition(":")
        if sep and prefix in self.prefixes and not rest.startswith("//"):
            return self.prefixes[prefix] + rest
        return None

    def is_declared_name(self, name: str) -> bool:
        """A member name with a namespace: ``prefix:name`` with a declared prefix, a full URI, or a
        term of ``@context``."""
        if name in self.terms:
            return True
        prefix, sep, rest = name.partition(":")
        if not sep:
            return False
        if prefix in self.prefixes:
            return True
        return prefix in URI_SCHEMES and bool(rest)

    def expanded_name(self, name: str) -> str:
        """``{namespace}local`` for the hash pre-string (a full URI stays as it is)."""
        prefix, sep, rest = name.partition(":")
        if sep and prefix in self.prefixes:
            return "{" + self.prefixes[prefix] + "}" + rest
        return name


# --- Validation and normalisation ---------------------------------------------------------------


@dataclass
class PreparedEvent:
    """One validated event with its indexed fields, ready to store."""

    index: int
    document: dict[str, Any]
    event_type: str
    event_id: str
    event_id_given: bool
    event_time: dt.datetime
    offset: str
    action: str
    biz_step: str
    disposition: str
    read_point: str
    biz_location: str
    product_code: str
    identifiers: list[tuple[str, codes.IndexedIdentifier]] = field(default_factory=list)
    declared_at: dt.datetime | None = None
    declaration_reason: str = ""
    corrective_event_ids: list[str] = field(default_factory=list)

    @property
    def is_error_declaration(self) -> bool:
        return self.declared_at is not None


def event_pointer(index: int | None) -> str:
    return "" if index is None else f"#/epcisBody/eventList/{index}"


class _EventContext:
    def __init__(self, index: int | None, namespaces: Namespaces) -> None:
        self.index = index
        self.namespaces = namespaces

    def fail(self, detail: Any, **extra: Any) -> EPCISException:
        if self.index is not None:
            extra["eventIndex"] = self.index
        return validation_error(detail, instance=event_pointer(self.index), **extra)


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 date and time with a zone offset, or None."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _schema_check(event: dict[str, Any], ctx: _EventContext) -> None:
    import fastjsonschema

    try:
        _fast_event_validators()[event["type"]](event)  # one of the five types (checked before)
        return
    except fastjsonschema.JsonSchemaValueException as exc:
        fast_error = exc
    # The reference engine decides; the compiled validator's message names the member at fault.
    if _reference_event_validator().is_valid(event):
        return
    path = "/" + "/".join(str(p) for p in (fast_error.path or [])[1:])
    message = str(fast_error.message)
    if fast_error.name and message.startswith(str(fast_error.name)):
        message = message[len(str(fast_error.name)) :].strip()
    raise ctx.fail(errors.SCHEMA_VIOLATION % {"path": path, "message": message[:300]})


def vocabulary_uri(value: Any, vocabulary: str, label: str, ctx: _EventContext) -> str:
    """The full URI of a bizStep / disposition / type value; refuses what is not CBV or a URI."""
    vocab = vocabularies()[vocabulary]
    if not isinstance(value, str) or not value:
        raise ctx.fail(errors.NOT_CBV_WORD % {"field": label, "value": str(value)[:100]})
    if value in vocab.words:
        return vocab.uri(value)
    for prefix, key in _CBV_URI_FORMS:
        if value.startswith(prefix):
            word = value[len(prefix) :]
            if key == vocabulary and word in vocab.words:
                return vocab.uri(word)
            raise ctx.fail(errors.NOT_IN_CBV % {"field": label, "value": value[:100]})
    expanded = ctx.namespaces.expand(value)
    if expanded is not None:
        if expanded.startswith(CBV_BASE):
            return vocabulary_uri(expanded, vocabulary, label, ctx)
        return expanded
    scheme, sep, rest = value.partition(":")
    if sep and scheme.lower() in URI_SCHEMES and rest:
        return value
    raise ctx.fail(errors.NOT_CBV_WORD % {"field": label, "value": value[:100]})


def _check_names(obj: Any, standard: frozenset[str], where: str, ctx: _EventContext) -> None:
    """Every member of ``obj`` that is not standard carries a namespace, recursively inside."""
    if not isinstance(obj, dict):
        return
    for name, value in obj.items():
        if name in standard or name.startswith("@") or name == "#text":
            continue
        if not ctx.namespaces.is_declared_name(name):
            raise ctx.fail(errors.UNDECLARED_NAMESPACE % {"name": f"{where}{name}"})
        _check_extension_value(value, f"{where}{name}/", ctx)


def _check_extension_value(value: Any, where: str, ctx: _EventContext) -> None:
    if isinstance(value, dict):
        _check_names(value, frozenset(), where, ctx)
    elif isinstance(value, list):
        for item in value:
            _check_extension_value(item, where, ctx)


_CHECKED_URNS = ("urn:epc:id:sgtin:", "urn:epc:class:lgtin:", "urn:epc:id:sscc:", codes.CHINA_URN_PREFIX)


@functools.lru_cache(maxsize=65536)
def _checked_urn(value: str) -> codes.IndexedIdentifier:
    """A URN's structure checked and its index entry (a URN's reading depends on nothing else; a
    box named by commissioning, packing and dispensing in one document is read once). Raises
    ``CodeError``, which is not cached."""
    if value.startswith(_CHECKED_URNS):
        codes.parse_urn(value)
    return codes.index_identifier(value)


def _identifier(value: Any, label: str, ctx: _EventContext) -> codes.IndexedIdentifier:
    if not isinstance(value, str) or not value or len(value) > MAX_IDENTIFIER_LENGTH:
        raise ctx.fail(errors.BAD_IDENTIFIER % {"field": label, "value": str(value)[:100], "error": "too long"})
    if value.startswith("urn:"):
        try:
            indexed = _checked_urn(value)
        except codes.CodeError as exc:
            raise ctx.fail(
                errors.BAD_IDENTIFIER % {"field": label, "value": value[:100], "error": exc.message}
            ) from exc
        if len(indexed.identifier) > MAX_IDENTIFIER_LENGTH:
            raise ctx.fail(errors.BAD_IDENTIFIER % {"field": label, "value": value[:100], "error": "too long"})
        return indexed
    try:
        if value.startswith(_CHECKED_URNS):
            codes.parse_urn(value)
        elif value.startswith(("https://", "http://")):
            try:
                codes.digital_link_to_urn(value)
            except ValueError as exc:
                if "bad" in str(exc):  # a GS1 key with a wrong check digit or length
                    raise ctx.fail(
                        errors.BAD_IDENTIFIER
                        % {"field": label, "value": value[:100], "error": f"{exc} (check digit or length)"}
                    ) from exc
    except codes.CodeError as exc:
        raise ctx.fail(errors.BAD_IDENTIFIER % {"field": label, "value": value[:100], "error": exc.message}) from exc
    indexed = codes.index_identifier(value)
    if len(indexed.identifier) > MAX_IDENTIFIER_LENGTH:
        raise ctx.fail(errors.BAD_IDENTIFIER % {"field": label, "value": value[:100], "error": "too long"})
    return indexed


def _ilmd_checks(ilmd: Any, ctx: _EventContext) -> None:
    if not isinstance(ilmd, dict):
        return
    _check_names(ilmd, frozenset(), "ilmd/", ctx)
    for name, value in ilmd.items():
        local = name.rsplit(":", 1)[-1].rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if local in _ILMD_DATES and isinstance(value, str):
            try:
                dt.date.fromisoformat(value[:10])
            except ValueError as exc:
                raise ctx.fail(errors.BAD_TIME % {"field": f"ilmd/{name}", "value": value[:40]}) from exc


def _required_time(event: dict[str, Any], name: str, ctx: _EventContext) -> dt.datetime:
    parsed = parse_time(event.get(name))
    if parsed is None:
        raise ctx.fail(errors.BAD_TIME % {"field": name, "value": str(event.get(name))[:60]})
    return parsed


def prepare_event(
    event: Any, index: int | None, namespaces: Namespaces, *, document_context: Any = None
) -> PreparedEvent:
    """Validate and normalise one event (the whole pass described in the module docstring)."""
    ctx = _EventContext(index, namespaces)
    if not isinstance(event, dict):
        raise ctx.fail(errors.SCHEMA_VIOLATION % {"path": "/", "message": "an event is a JSON object"})
    event_type = event.get("type")
    if event_type not in EVENT_TYPES:
        raise ctx.fail(errors.UNKNOWN_EVENT_TYPE % {"type": str(event_type)[:60]})
    if "@context" in event:
        namespaces = Namespaces.of(document_context, event["@context"])
        ctx = _EventContext(index, namespaces)
    _schema_check(event, ctx)

    event_time = _required_time(event, "eventTime", ctx)
    if "recordTime" in event:
        _required_time(event, "recordTime", ctx)
    names = standard_fields()
    _check_names(event, names[event_type], "", ctx)
    biz_step = vocabulary_uri(event["bizStep"], "bizstep", "bizStep", ctx) if "bizStep" in event else ""
    disposition = (
        vocabulary_uri(event["disposition"], "disposition", "disposition", ctx) if "disposition" in event else ""
    )
    persistent = event.get("persistentDisposition") or {}
    for key in ("set", "unset"):
        for value in persistent.get(key, []):
            vocabulary_uri(value, "disposition", f"persistentDisposition/{key}", ctx)
    for list_name, key, vocab in (
        ("bizTransactionList", "type", "btt"),
        ("sourceList", "type", "sdt"),
        ("destinationList", "type", "sdt"),
    ):
        for item in event.get(list_name, []):
            if key in item:
                vocabulary_uri(item[key], vocab, f"{list_name}/type", ctx)
    for point in ("readPoint", "bizLocation"):
        _check_names(event.get(point), names[point], f"{point}/", ctx)
    for element in event.get("sensorElementList", []):
        _check_names(element, names["sensorElement"], "sensorElement/", ctx)
        _check_names(element.get("sensorMetadata"), names["sensorMetadata"], "sensorMetadata/", ctx)
        for report in element.get("sensorReport", []):
            _check_names(report, names["sensorReport"], "sensorReport/", ctx)
    _ilmd_checks(event.get("ilmd"), ctx)

    declared_at = None
    reason = ""
    corrective: list[str] = []
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, dict):
        declared_at = _required_time(declaration, "declarationTime", ctx)
        _check_names(declaration, names["errorDeclaration"], "errorDeclaration/", ctx)
        if "reason" in declaration:
            reason = vocabulary_uri(declaration["reason"], "er", "errorDeclaration/reason", ctx)
        corrective = [str(i) for i in declaration.get("correctiveEventIDs", [])]

    identifiers: list[tuple[str, codes.IndexedIdentifier]] = []
    seen: set[tuple[str, str]] = set()

    def add(role: str, value: Any, label: str) -> None:
        indexed = _identifier(value, label, ctx)
        if (role, indexed.identifier) not in seen:
            seen.add((role, indexed.identifier))
            identifiers.append((role, indexed))

    for value in event.get("epcList", []):
        add(EPCRole.EPC, value, "epcList")
    if "parentID" in event:
        add(EPCRole.PARENT, event["parentID"], "parentID")
    for list_name in ("childEPCs", "inputEPCList", "outputEPCList"):
        for value in event.get(list_name, []):
            add(_ROLE_OF_LIST[list_name], value, list_name)
    for list_name in _QUANTITY_LISTS:
        for item in event.get(list_name, []):
            add(EPCRole.QUANTITY, item.get("epcClass"), f"{list_name}/epcClass")
    product_code = next((i.product_code for _, i in identifiers if i.product_code), "")

    given_id = event.get("eventID")
    if given_id is not None and (not isinstance(given_id, str) or not given_id.strip() or len(given_id) > 300):
        raise ctx.fail(errors.SCHEMA_VIOLATION % {"path": "/eventID", "message": "an eventID is a URI"})
    stored = event
    if document_context is not None and "@context" not in event and _declares_prefixes(document_context):
        stored = {"@context": document_context, **event}
    return PreparedEvent(
        index=index if index is not None else 0,
        document=stored,
        event_type=event_type,
        event_id=given_id or event_hash_id(event, namespaces),
        event_id_given=bool(given_id),
        event_time=event_time,
        offset=str(event.get("eventTimeZoneOffset", "")),
        action=str(event.get("action", "")),
        biz_step=biz_step,
        disposition=disposition,
        read_point=str((event.get("readPoint") or {}).get("id", ""))[:300],
        biz_location=str((event.get("bizLocation") or {}).get("id", ""))[:300],
        product_code=product_code,
        identifiers=identifiers,
        declared_at=declared_at,
        declaration_reason=reason[:200],
        corrective_event_ids=corrective,
    )


def _declares_prefixes(context: Any) -> bool:
    items = context if isinstance(context, list) else [context]
    return any(isinstance(item, dict) and item for item in items)


# --- Documents ----------------------------------------------------------------------------------


@dataclass
class ReceivedDocument:
    """A capture body that is a syntactically correct EPCIS document."""

    document: dict[str, Any]
    events: list[Any]
    context: Any


def parse_json(body: bytes | str) -> Any:
    try:
        with cyclic_gc_paused():  # a document of thousands of events is a lot of new containers
            return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation_error(errors.NOT_JSON % {"error": str(exc)[:200]}) from exc


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a capture document is parsed or processed.
    Parsing, validating and storing 1,000 events creates some 200,000 containers that live until
    the end of the job; each time enough of them survive, the collector walks every object of the
    process (about a tenth of the capture's time in the benchmark). Reference counting still frees
    everything that is not in a cycle; the collector runs again as soon as it is re-enabled. The
    document's size is bounded by the capture limits. Re-enabled only if it was enabled (another
    thread may have paused it too)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def event_list(document: dict[str, Any]) -> list[Any]:
    body = document.get("epcisBody") or {}
    if document.get("type") == "EPCISQueryDocument":
        body = ((body.get("queryResults") or {}).get("resultsBody")) or {}
    events = body.get("eventList", [])
    return events if isinstance(events, list) else []


def receive_document(document: Any) -> ReceivedDocument:
    """Check a capture body as a whole (type and envelope; the events are checked one by one later).
    An ``EPCISQueryDocument`` is accepted too: its events are captured (the REST bindings say so)."""
    if not isinstance(document, dict) or document.get("type") not in ("EPCISDocument", "EPCISQueryDocument"):
        kind = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise validation_error(errors.NOT_A_DOCUMENT % {"type": str(kind)[:60]})
    events = event_list(document)
    envelope = _without_events(document)
    validator = _reference_document_validator()
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(envelope))
    if error is not None:
        path = "/" + "/".join(str(p) for p in error.absolute_path)
        raise validation_error(errors.SCHEMA_VIOLATION % {"path": path, "message": error.message[:300]})
    return ReceivedDocument(document, events, document.get("@context"))


def _without_events(document: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of the document with an empty event list (the envelope)."""
    copy = dict(document)
    body = dict(copy.get("epcisBody") or {})
    if document.get("type") == "EPCISQueryDocument":
        results = dict(body.get("queryResults") or {})
        results_body = dict(results.get("resultsBody") or {})
        results_body["eventList"] = []
        results["resultsBody"] = results_body
        body["queryResults"] = results
    else:
        body["eventList"] = []
    copy["epcisBody"] = body
    return copy


def prepare_events(received: ReceivedDocument) -> tuple[list[PreparedEvent], list[EPCISException]]:
    """Every event of a document: the good ones prepared, the bad ones as exceptions (in order)."""
    namespaces = Namespaces.of(received.context)
    prepared: list[PreparedEvent] = []
    failures: list[EPCISException] = []
    for index, event in enumerate(received.events):
        try:
            prepared.append(prepare_event(event, index, namespaces, document_context=received.context))
        except EPCISException as exc:
            failures.append(exc)
    return prepared, failures


# --- Event hash ID (CBV 2.0 §8.9) ---------------------------------------------------------------

# The canonical property order, after eventType / eventTime / eventTimeZoneOffset.
_HASH_ORDER = (
    "epcList",
    "parentID",
    "inputEPCList",
    "childEPCs",
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "action",
    "transformationID",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
)
_SENSOR_METADATA_ORDER = (
    "time",
    "startTime",
    "endTime",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
)
_SENSOR_REPORT_ORDER = (
    "type",
    "exception",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "time",
    "microorganism",
    "chemicalSubstance",
    "value",
    "component",
    "stringValue",
    "booleanValue",
    "hexBinaryValue",
    "uriValue",
    "minValue",
    "maxValue",
    "meanValue",
    "sDev",
    "percRank",
    "percValue",
    "uom",
    "coordinateReferenceSystem",
)
_NOT_HASHED = frozenset(
    {"type", "eventTime", "eventTimeZoneOffset", "eventID", "recordTime", "@context", "certificationInfo"}
    | {"errorDeclaration", "rdfs:comment", "comment"}
    | set(_HASH_ORDER)
)


@dataclass(frozen=True)
class HashProfile:
    """How CBV words and EPC URIs are written in the pre-hash string. ``CBV20`` is the published
    algorithm; ``DRAFT_2021`` is the draft the EPCIS 2.0 examples were hashed with (CBV words under
    ``https://ns.gs1.org/voc/``, EPC URNs left as URNs), kept to show that the examples' IDs that are
    hashes at all are hashes of this same canonical form."""

    name: str
    draft_vocabulary: bool
    convert_epcs: bool


def _profile_bases(draft: bool) -> dict[str, str]:
    if draft:
        return {
            "bizstep": "https://ns.gs1.org/voc/Bizstep-",
            "disposition": "https://ns.gs1.org/voc/Disp-",
            "btt": "https://ns.gs1.org/voc/BTT-",
            "sdt": "https://ns.gs1.org/voc/SDT-",
            "er": "https://ns.gs1.org/voc/ER-",
        }
    return {key: vocab.uri_prefix for key, vocab in vocabularies().items()}


CBV20 = HashProfile("CBV2.0", draft_vocabulary=False, convert_epcs=True)
DRAFT_2021 = HashProfile("draft-2021", draft_vocabulary=True, convert_epcs=False)


@functools.lru_cache(maxsize=8192)
def _utc_time(value: str) -> str:
    """A time of the pre-hash string: UTC with milliseconds (the text itself when it is no time)."""
    parsed = parse_time(value)
    if parsed is None:
        return value.strip()
    utc = parsed.astimezone(dt.UTC)
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


class _PreHash:
    def __init__(self, namespaces: Namespaces, profile: HashProfile) -> None:
        self.namespaces = namespaces
        self.profile = profile
        self.bases = _profile_bases(profile.draft_vocabulary)

    @staticmethod
    def time(value: Any) -> str:
        return _utc_time(value) if isinstance(value, str) else str(value).strip()

    @staticmethod
    def number(value: Any) -> str | None:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else repr(value)
        return None

    def value(self, value: Any, vocabulary: str | None = None) -> str:
        if isinstance(value, str):
            key = (self.profile.name, vocabulary, value)
            rendered = self.namespaces.rendered.get(key)
            if rendered is None:
                rendered = self.namespaces.rendered[key] = self._text(value.strip(), vocabulary)
            return rendered
        number = self.number(value)
        if number is not None:
            return number
        return self._text(str(value).strip(), vocabulary)

    def _text(self, text: str, vocabulary: str | None) -> str:
        if vocabulary and text in vocabularies()[vocabulary].words:
            return self.bases[vocabulary] + text
        for prefix, key in _CBV_URI_FORMS:
            if text.startswith(prefix) and prefix.startswith("urn:"):
                return self.bases[key] + text[len(prefix) :]
        if self.profile.convert_epcs:
            if text.startswith("urn:epc:"):
                try:
                    return codes.urn_to_digital_link(text)
                except ValueError:
                    return text
            if text.startswith(("https://", "http://")) and not text.startswith(
                ("https://ref.gs1.org", "https://gs1.org")
            ):
                try:
                    return codes.canonical_digital_link(text)
                except ValueError:
                    return text
        expanded = self.namespaces.expand(text)
        return expanded if expanded is not None else text

    def generic(self, name: str, value: Any) -> list[str]:
        """An extension (or ILMD) member and everything inside it, as sorted ``{ns}name=value``."""
        key = self.namespaces.expanded_name(name)
        if isinstance(value, list):
            return [part for item in value for part in self.generic(name, item)]
        if isinstance(value, dict):
            text = "=" + self.value(value["#text"]) if "#text" in value else ""
            inner = sorted(
                part
                for child, child_value in value.items()
                if child != "#text" and not child.startswith("@")
                for part in self.generic(child, child_value)
            )
            return [key + text + "".join(inner)]
        rendered = self.value(value)
        return [key + ("=" + rendered if rendered != "" else "")]

    def members(self, obj: dict[str, Any], order: Sequence[str]) -> str:
        """Standard members in order, then the extensions of this extension point, sorted."""
        out = []
        for name in order:
            if name in obj and obj[name] is not None:
                value = obj[name]
                if "time" in name.lower() and isinstance(value, str):
                    out.append(f"{name}={self.time(value)}")
                else:
                    out.append(f"{name}={self.value(value)}")
        extensions = sorted(
            part
            for name, value in obj.items()
            if name not in order and not name.startswith("@")
            for part in self.generic(name, value)
        )
        return "".join(out) + "".join(extensions)

    def event(self, event: dict[str, Any]) -> str:
        out = [
            f"eventType={event['type']}",
            f"eventTime={self.time(event.get('eventTime'))}",
            f"eventTimeZoneOffset={event.get('eventTimeZoneOffset', '')}",
        ]
        for name in _HASH_ORDER:
            if name not in event or event[name] is None:
                continue
            value = event[name]
            if name in ("epcList", "inputEPCList", "childEPCs", "outputEPCList"):
                if value:
                    out.append(name + "".join(sorted("epc=" + self.value(v) for v in value)))
            elif name in _QUANTITY_LISTS:
                if value:
                    items = []
                    for item in value:
                        text = "quantityElement" + "epcClass=" + self.value(item.get("epcClass", ""))
                        if "quantity" in item:
                            text += "quantity=" + self.value(item["quantity"])
                        if "uom" in item:
                            text += "uom=" + self.value(item["uom"])
                        items.append(text)
                    out.append(name + "".join(sorted(items)))
            elif name == "bizStep":
                out.append("bizStep=" + self.value(value, "bizstep"))
            elif name == "disposition":
                out.append("disposition=" + self.value(value, "disposition"))
            elif name == "persistentDisposition":
                parts = []
                for key in ("set", "unset"):
                    parts += sorted(f"{key}=" + self.value(v, "disposition") for v in value.get(key, []))
                out.append(name + "".join(parts))
            elif name in ("readPoint", "bizLocation"):
                out.append(name + self.members(value, ("id",)))
            elif name in ("bizTransactionList", "sourceList", "destinationList"):
                key = {"bizTransactionList": "bizTransaction", "sourceList": "source"}.get(name, "destination")
                vocab = "btt" if name == "bizTransactionList" else "sdt"
                items = []
                for item in value:
                    text = f"{key}=" + self.value(item.get(key, ""))
                    if "type" in item:
                        text += "type=" + self.value(item["type"], vocab)
                    items.append(text)
                out.append(name + "".join(sorted(items)))
            elif name == "sensorElementList":
                elements = []
                for element in value:
                    text = "sensorElement"
                    if isinstance(element.get("sensorMetadata"), dict):
                        text += "sensorMetadata" + self.members(element["sensorMetadata"], _SENSOR_METADATA_ORDER)
                    text += "".join(
                        sorted(
                            "sensorReport" + self.members(report, _SENSOR_REPORT_ORDER)
                            for report in element.get("sensorReport", [])
                        )
                    )
                    text += "".join(
                        sorted(
                            part
                            for key, val in element.items()
                            if key not in ("sensorMetadata", "sensorReport")
                            for part in self.generic(key, val)
                        )
                    )
                    elements.append(text)
                out.append(name + "".join(sorted(elements)))
            else:
                out.append(f"{name}={self.value(value)}")
        rest = sorted(
            part
            for name, value in event.items()
            if name not in _NOT_HASHED and not name.startswith("@")
            for part in self.generic(name, value)
        )
        return "".join(out) + "".join(rest)


def pre_hash_string(
    event: dict[str, Any], namespaces: Namespaces | None = None, *, profile: HashProfile = CBV20
) -> str:
    """The canonical pre-hash string of CBV 2.0 §8.9.2 (rules 1-21)."""
    return _PreHash(namespaces or Namespaces.of(event.get("@context")), profile).event(event)


def event_hash_id(event: dict[str, Any], namespaces: Namespaces | None = None, *, profile: HashProfile = CBV20) -> str:
    """``ni:///sha-256;<hex>?ver=CBV2.0`` of the event (RFC 6920 'ni' URI)."""
    digest = hashlib.sha256(pre_hash_string(event, namespaces, profile=profile).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


# --- Storing ------------------------------------------------------------------------------------


@dataclass
class StoreResult:
    stored: list[EPCISEvent] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # eventIDs already stored (not stored again)
    declared: list[EPCISEvent] = field(default_factory=list)  # originals newly declared erroneous

    @property
    def stored_count(self) -> int:
        return len(self.stored)


def existing_events(event_ids: Iterable[str]) -> dict[str, EPCISEvent]:
    wanted = list(dict.fromkeys(event_ids))
    if connection.vendor == "postgresql" and wanted:
        # Usually none is stored yet: ask with one array parameter which are, then read those.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT event_id FROM {EPCISEvent._meta.db_table} WHERE event_id = ANY(%s)",  # noqa: S608
                [wanted],
            )
            wanted = [event_id for (event_id,) in cursor.fetchall()]
    found: dict[str, EPCISEvent] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        for row in EPCISEvent.objects.filter(event_id__in=chunk).only(
            "pk", "event_id", "declared_erroneous_at", "declaration_reason", "corrective_event_ids", "document"
        ):
            found[row.event_id] = row
    return found


def model_from_values(model: Any, values: dict[str, Any]) -> Any:
    """An unsaved instance of ``model`` from a value for every concrete field (by attname), built
    with positional arguments: Django's keyword path costs twice as much, a thousand times a
    document."""
    return model(*[values[name] for name in _attnames(model)])


@functools.cache
def _attnames(model: Any) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


def _row(prepared: PreparedEvent, record_time: dt.datetime, job: CaptureJob | None) -> EPCISEvent:
    row: EPCISEvent = model_from_values(
        EPCISEvent,
        {
            "id": None,
            "event_id": prepared.event_id,
            "event_type": prepared.event_type,
            "event_time": prepared.event_time,
            "event_timezone_offset": prepared.offset[:6],
            "record_time": record_time,
            "action": prepared.action[:8],
            "biz_step": prepared.biz_step[:200],
            "disposition": prepared.disposition[:200],
            "read_point": prepared.read_point,
            "biz_location": prepared.biz_location,
            "product_code": prepared.product_code[:20],
            "document": prepared.document,
            "capture_job_id": job.pk if job is not None else None,
            "declared_erroneous_at": prepared.declared_at,
            "declaration_reason": prepared.declaration_reason,
            "corrective_event_ids": prepared.corrective_event_ids,
        },
    )
    if job is not None:
        EPCISEvent._meta.get_field("capture_job").set_cached_value(row, job)
    return row


def store_events(
    prepared: Sequence[PreparedEvent], *, capture_job: CaptureJob | None = None, record_time: dt.datetime | None = None
) -> StoreResult:
    """Store validated events (call inside a transaction): new events once, duplicates skipped,
    error declarations applied to the events they name; then pack state (``state.apply_events``).

    An event whose eventID is already stored is a duplicate unless it carries an errorDeclaration:
    then the stored event is the original, declared erroneous (and kept), with the declaration's
    reason and corrective event IDs. A declaration whose original is not stored is stored itself,
    declared erroneous."""
    record_time = record_time or timezone.now()
    result = StoreResult()
    existing = existing_events(p.event_id for p in prepared)
    new_rows: dict[str, EPCISEvent] = {}
    new_events: list[tuple[EPCISEvent, PreparedEvent]] = []
    declarations: list[PreparedEvent] = []
    for item in prepared:
        if item.event_id in existing or item.event_id in new_rows:
            if item.is_error_declaration:
                declarations.append(item)
            else:
                result.duplicates.append(item.event_id)
            continue
        row = _row(item, record_time, capture_job)
        new_rows[item.event_id] = row
        new_events.append((row, item))
    rows = list(new_rows.values())
    if rows and connection.vendor == "postgresql":
        _copy_rows(new_events)
    else:
        EPCISEvent.objects.bulk_create(rows, batch_size=1000)
        if rows and rows[0].pk is None:  # a database that does not return ids from bulk inserts
            ids = dict(EPCISEvent.objects.filter(event_id__in=list(new_rows)).values_list("event_id", "pk"))
            for row in rows:
                row.pk = ids[row.event_id]
        EventIdentifier.objects.bulk_create(
            [
                EventIdentifier(
                    event_id=row.pk,
                    role=role,
                    identifier=indexed.identifier,
                    gtin=indexed.gtin,
                    product_code=indexed.product_code[:20],
                )
                for row, item in new_events
                for role, indexed in item.identifiers
            ],
            batch_size=2000,
        )
    result.stored = rows
    for item in declarations:
        original = new_rows.get(item.event_id) or existing[item.event_id]
        _declare(original, item)
        if original.pk not in {r.pk for r in result.declared} and original.event_id not in new_rows:
            result.declared.append(original)
    # The identifiers just stored, as the state engine would read them back (in insertion order).
    named = {row.pk: [(role, indexed.identifier) for role, indexed in item.identifiers] for row, item in new_events}
    _apply_state(rows + result.declared, named)
    return result


_EVENT_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "event_time",
    "event_timezone_offset",
    "record_time",
    "action",
    "biz_step",
    "disposition",
    "read_point",
    "biz_location",
    "product_code",
    "document",
    "capture_job",
    "declared_erroneous_at",
    "declaration_reason",
    "corrective_event_ids",
)
_IDENTIFIER_COLUMNS = ("event", "role", "identifier", "gtin", "product_code")


def next_ids(model: Any, count: int) -> list[int]:
    """PostgreSQL: ``count`` new ids from the sequence of ``model``'s id column, in increasing order
    (what the inserts would have been given), so that rows can be written with COPY and referred to
    before they are written."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return sorted(value for (value,) in cursor.fetchall())


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL: ``COPY table (columns) FROM STDIN`` of ``rows`` (values as psycopg adapts them).
    Errors are Django's (a unique violation is an ``IntegrityError``, as with an INSERT)."""
    with connection.cursor() as cursor, connection.wrap_database_errors:
        quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
        with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _copy_rows(new_events: list[tuple[EPCISEvent, PreparedEvent]]) -> None:
    """PostgreSQL: write events and identifiers with COPY (several times faster than a multi-row
    INSERT for a thousand events). The events' ids are taken from their sequence first, so the
    identifiers can name them without reading them back."""
    for (row, _), pk in zip(new_events, next_ids(EPCISEvent, len(new_events)), strict=True):
        row.pk = pk
        row._state.adding = False
    event_fields: list[Any] = [EPCISEvent._meta.get_field(name) for name in _EVENT_COLUMNS]
    json_columns = {"document", "corrective_event_ids"}
    copy_rows(
        EPCISEvent._meta.db_table,
        [str(f.column) for f in event_fields],
        (
            [
                json.dumps(getattr(row, name)) if name in json_columns else getattr(row, field.attname)
                for name, field in zip(_EVENT_COLUMNS, event_fields, strict=True)
            ]
            for row, _ in new_events
        ),
    )
    identifier_fields: list[Any] = [EventIdentifier._meta.get_field(name) for name in _IDENTIFIER_COLUMNS]
    copy_rows(
        EventIdentifier._meta.db_table,
        [str(f.column) for f in identifier_fields],
        (
            (row.pk, role, indexed.identifier, indexed.gtin, indexed.product_code[:20])
            for row, item in new_events
            for role, indexed in item.identifiers
        ),
    )


def _declare(original: EPCISEvent, declaration: PreparedEvent) -> None:
    """Mark ``original`` declared erroneous (kept, never deleted) and link its corrective events."""
    links = list(original.corrective_event_ids or [])
    links += [i for i in declaration.corrective_event_ids if i not in links]
    original.declared_erroneous_at = original.declared_erroneous_at or declaration.declared_at
    original.declaration_reason = original.declaration_reason or declaration.declaration_reason
    original.corrective_event_ids = links
    if original.pk is not None:
        EPCISEvent.objects.filter(pk=original.pk).update(
            declared_erroneous_at=original.declared_erroneous_at,
            declaration_reason=original.declaration_reason,
            corrective_event_ids=links,
        )


def _apply_state(events: list[EPCISEvent], identifiers: dict[int, list[tuple[str, str]]]) -> None:
    """Pack state is derived in the capture's transaction (``traceability.state``)."""
    if not events:
        return
    from nethospital.traceability import state

    state.apply_events(events, identifiers=identifiers)
