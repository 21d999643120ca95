"""What a scanner delivers, as one canonical result (R19).

``parse(text)`` reads any of:

- a GS1 element string from a DataMatrix (or GS1-128 / GS1 QR): with or without the AIM symbology
  identifier (``]d2``, ``]C1``, ``]Q3``), with GS (``\\x1d``) as the FNC1 separator (``␝`` and the
  text ``<GS>``, as some keyboard-wedge scanners send them, are read as GS too), or in the
  human-readable form ``(01)...(17)...(10)...(21)...``; every AI of the GS1 syntax dictionary is
  parsed (by biip), and 01, 00, 17, 10, 21, 414/254, 8004 are used;
- a GS1 Digital Link URI, on ``id.gs1.org`` or any other host (``https://example.com/x/01/.../21/...``),
  with key qualifiers in the path and attributes (17, 10 ...) in the query string;
- an EPC URN (``urn:epc:id:sgtin:CompanyPrefix.IndicatorItemRef.Serial``, ``urn:epc:id:sscc:...``,
  ``urn:epc:class:lgtin:...``, ``urn:epc:id:sgln:...`` and the other EPC schemes as identifiers);
- China's 20-digit drug traceability code: exactly 20 digits whose first 7 are the product and pack
  code (``prescriptions.DrugPack.china_prefix``). Its canonical identifier is
  ``urn:nethospital:cn-drug-code:<20 digits>`` (our own URN namespace: the code has no GS1 or EPC
  form). A prefix not in the catalogue gives a result with ``is_mapped = False``, never an error.
  Twenty bare digits are always read as a China code: a GS1 element string of 20 digits
  (``01`` + GTIN + ``21`` + 2 digits) is only read as GS1 when it carries ``]d2`` or a GS.

The result's ``identifier`` is the canonical URN the EPCIS index and ``Pack.identifier`` use: SGTIN
for a serialised box, SSCC for a case or pallet, LGTIN for a batch, the China URN for a China code.

Conversions SGTIN URN ⇄ Digital Link are lossless. A Digital Link does not say where the GS1 company
prefix ends inside the GTIN; ``company_prefix_length`` decides, else the prefixes listed in the
setting ``NETHOSPITAL_GS1_COMPANY_PREFIXES`` (our suppliers), else GS1's table of prefix lengths
(shipped with biip), else 7 digits.

Errors are ``CodeError`` (a ``DomainError``: a stable code and a message in the user's language):
a wrong check digit, an impossible date in AI 17 (``261331``), a malformed URN or Digital Link.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import biip
from biip.gs1_prefixes import GS1CompanyPrefix
from django.conf import settings

from nethospital.core.errors import DomainError, ErrorCode
from nethospital.traceability import errors

CHINA_URN_PREFIX = "urn:nethospital:cn-drug-code:"
DIGITAL_LINK_DOMAIN = "https://id.gs1.org"
DEFAULT_COMPANY_PREFIX_LENGTH = 7
GS = "\x1d"

# GS1 AI encodable character set 82 (serials, batches): what AI 21 and AI 10 may hold.
_CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")
# EPC URIs escape exactly these characters of set 82 (EPC Tag Data Standard, §6.3).
_URN_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_SYMBOLOGY = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_CHINA = re.compile(r"^\d{20}$")
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17", "7006"})

KIND_SGTIN = "sgtin"
KIND_SSCC = "sscc"
KIND_LGTIN = "lgtin"
KIND_GTIN = "gtin"  # a product class without batch or serial
KIND_CHINA = "china"
KIND_SGLN = "sgln"
KIND_OTHER = "other"


class CodeError(DomainError):
    """A code that cannot be read; ``code`` and ``message`` say why (bilingual)."""


def _fail(error: ErrorCode, **params: Any) -> CodeError:
    return CodeError(error, field="code", **params)


@dataclass(frozen=True)
class ScannedCode:
    """One scanned or typed code, reduced to what traceability needs."""

    text: str
    kind: str
    identifier: str  # canonical URN
    source: str  # element_string, digital_link, urn, china
    gtin: str = ""
    serial: str = ""
    batch: str = ""
    expiry: dt.date | None = None
    sscc: str = ""
    china_code: str = ""
    company_prefix: str = ""
    # For China codes: whether the 7-digit prefix is in the drug catalogue (None: not looked up).
    is_mapped: bool | None = None
    drug_pack_id: int | None = None
    element_strings: dict[str, str] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return self.identifier

    @property
    def china_prefix(self) -> str:
        return self.china_code[:7]

    @property
    def product_code(self) -> str:
        """What the tables are sharded by: the GTIN, or the China product prefix."""
        return self.gtin or self.china_prefix

    @property
    def digital_link(self) -> str:
        """The canonical GS1 Digital Link of the identifier ("" for a China code)."""
        if self.kind == KIND_CHINA:
            return ""
        return to_digital_link(self.identifier)


# --- GS1 arithmetic ---------------------------------------------------------------------------------


def check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of ``body`` (all digits but the last)."""
    reversed_body = body[::-1]
    total = 3 * sum(map(int, reversed_body[0::2])) + sum(map(int, reversed_body[1::2]))
    return str((10 - total % 10) % 10)


def has_valid_check_digit(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and check_digit(number[:-1]) == number[-1]


def _configured_prefixes() -> tuple[str, ...]:
    return tuple(settings.NETHOSPITAL_GS1_COMPANY_PREFIXES or ())


def gcp_length(key_digits: str, *, given: int | None = None) -> int:
    """Where the GS1 company prefix ends in ``key_digits`` (a GTIN without its indicator digit, a
    GLN, an SSCC without its extension digit ...): ``given``, else a configured prefix, else GS1's
    prefix table, else 7."""
    if given is not None:
        if not 6 <= given <= 12:
            raise ValueError("a GS1 company prefix has 6 to 12 digits")
        return given
    for prefix in sorted(_configured_prefixes(), key=len, reverse=True):
        if key_digits.startswith(prefix):
            return len(prefix)
    found = GS1CompanyPrefix.extract(key_digits)
    if found is not None and 6 <= len(found.value) <= 12:
        return len(found.value)
    return DEFAULT_COMPANY_PREFIX_LENGTH


def escape_urn_component(value: str) -> str:
    return "".join(_URN_ESCAPES.get(ch, ch) for ch in value)


def unescape_urn_component(value: str) -> str:
    return unquote(value)


def escape_digital_link_component(value: str) -> str:
    """Percent-encode everything but the URI unreserved characters (RFC 3986): a Digital Link path
    segment then never contains a reserved character, and the encoding is unique."""
    return quote(value, safe="")


def _valid_serial(value: str) -> bool:
    return bool(_CSET82.match(value))


# --- SGTIN and friends ------------------------------------------------------------------------------


def gtin_from_sgtin_parts(company: str, item: str) -> str:
    if not (company.isdigit() and item.isdigit() and len(company) + len(item) == 13 and 6 <= len(company) <= 12):
        raise ValueError("company prefix and item reference must be 13 digits together, the prefix 6 to 12")
    body = item[0] + company + item[1:]
    return body + check_digit(body)


def sgtin_parts_from_gtin(gtin: str, *, length: int | None = None) -> tuple[str, str]:
    """(company prefix, indicator + item reference) of a GTIN-14."""
    gtin = gtin.zfill(14)
    cp_len = gcp_length(gtin[1:13], given=length)
    return gtin[1 : 1 + cp_len], gtin[0] + gtin[1 + cp_len : 13]


def sgtin_urn(gtin: str, serial: str, *, company_prefix_length: int | None = None) -> str:
    company, item = sgtin_parts_from_gtin(gtin, length=company_prefix_length)
    return f"urn:epc:id:sgtin:{company}.{item}.{escape_urn_component(serial)}"


def lgtin_urn(gtin: str, batch: str, *, company_prefix_length: int | None = None) -> str:
    company, item = sgtin_parts_from_gtin(gtin, length=company_prefix_length)
    return f"urn:epc:class:lgtin:{company}.{item}.{escape_urn_component(batch)}"


def gtin_class_urn(gtin: str, *, company_prefix_length: int | None = None) -> str:
    company, item = sgtin_parts_from_gtin(gtin, length=company_prefix_length)
    return f"urn:epc:idpat:sgtin:{company}.{item}.*"


def sscc_urn(sscc: str, *, company_prefix_length: int | None = None) -> str:
    cp_len = gcp_length(sscc[1:17], given=company_prefix_length)
    return f"urn:epc:id:sscc:{sscc[1 : 1 + cp_len]}.{sscc[0]}{sscc[1 + cp_len : 17]}"


def sgln_urn(gln: str, extension: str = "0", *, company_prefix_length: int | None = None) -> str:
    cp_len = gcp_length(gln[:12], given=company_prefix_length)
    return f"urn:epc:id:sgln:{gln[:cp_len]}.{gln[cp_len:12]}.{escape_urn_component(extension or '0')}"


_THREE_PART_SCHEMES = frozenset({"sgtin", "lgtin", "sgln", "grai", "gdti", "sgcn", "itip", "cpi"})
_URN = re.compile(r"^urn:epc:(id|class|idpat):([a-z0-9]+):(.+)$")


def _split_urn(urn: str) -> tuple[str, str, list[str]]:
    match = _URN.match(urn)
    if not match:
        raise ValueError("not an EPC URN")
    family, scheme, rest = match.groups()
    # The last component (a serial, a lot, an extension) may itself contain dots.
    return family, scheme, rest.split(".", 2 if scheme in _THREE_PART_SCHEMES else 1)


def _digits(*parts: str) -> bool:
    return all(p.isdigit() for p in parts)


def urn_to_digital_link(urn: str, *, domain: str = DIGITAL_LINK_DOMAIN) -> str:
    """The canonical GS1 Digital Link of an EPC URN (EPC Tag Data Standard 2.0, GS1 Digital Link
    1.2 §4.11). Raises ``ValueError`` for schemes without a Digital Link form."""
    family, scheme, parts = _split_urn(urn)
    key = (family, scheme)
    try:
        if key == ("id", "sgtin") and len(parts) == 3 and _digits(parts[0], parts[1]):
            gtin = gtin_from_sgtin_parts(parts[0], parts[1])
            return f"{domain}/01/{gtin}/21/{escape_digital_link_component(unquote(parts[2]))}"
        if key == ("class", "lgtin") and len(parts) == 3 and _digits(parts[0], parts[1]):
            gtin = gtin_from_sgtin_parts(parts[0], parts[1])
            return f"{domain}/01/{gtin}/10/{escape_digital_link_component(unquote(parts[2]))}"
        if key == ("idpat", "sgtin") and len(parts) == 3 and parts[2] == "*" and _digits(parts[0], parts[1]):
            return f"{domain}/01/{gtin_from_sgtin_parts(parts[0], parts[1])}"
    except ValueError as exc:
        raise ValueError(str(exc)) from exc
    if key == ("id", "sscc") and len(parts) == 2 and _digits(*parts) and len(parts[0]) + len(parts[1]) == 17:
        body = parts[1][0] + parts[0] + parts[1][1:]
        return f"{domain}/00/{body}{check_digit(body)}"
    if key in (("id", "sgln"), ("id", "pgln")) and _digits(parts[0], parts[1]):
        if len(parts[0]) + len(parts[1]) != 12:
            raise ValueError("company prefix and reference must be 12 digits together")
        body = parts[0] + parts[1]
        gln = body + check_digit(body)
        if scheme == "pgln" and len(parts) == 2:
            return f"{domain}/417/{gln}"
        if scheme == "sgln" and len(parts) == 3:
            extension = unquote(parts[2])
            suffix = "" if extension == "0" else f"/254/{escape_digital_link_component(extension)}"
            return f"{domain}/414/{gln}{suffix}"
    if key == ("id", "giai") and len(parts) == 2 and parts[0].isdigit():
        return f"{domain}/8004/{escape_digital_link_component(parts[0] + unquote(parts[1]))}"
    if key == ("id", "grai") and len(parts) == 3 and _digits(parts[0], parts[1]):
        body = "0" + parts[0] + parts[1]
        if len(body) != 13:
            raise ValueError("company prefix and asset type must be 12 digits together")
        serial = escape_digital_link_component(unquote(parts[2]))
        return f"{domain}/8003/{body}{check_digit(body)}{serial}"
    if key == ("id", "gsrn") and len(parts) == 2 and _digits(*parts) and len(parts[0]) + len(parts[1]) == 17:
        body = parts[0] + parts[1]
        return f"{domain}/8018/{body}{check_digit(body)}"
    if key == ("id", "gsrnp") and len(parts) == 2 and _digits(*parts) and len(parts[0]) + len(parts[1]) == 17:
        body = parts[0] + parts[1]
        return f"{domain}/8017/{body}{check_digit(body)}"
    if key == ("id", "gdti") and len(parts) == 3 and _digits(parts[0], parts[1]):
        body = parts[0] + parts[1]
        if len(body) != 12:
            raise ValueError("company prefix and document type must be 12 digits together")
        return f"{domain}/253/{body}{check_digit(body)}{escape_digital_link_component(unquote(parts[2]))}"
    raise ValueError(f"no Digital Link form for {scheme}")


def to_digital_link(identifier: str, *, domain: str = DIGITAL_LINK_DOMAIN) -> str:
    """Any identifier we index as a Digital Link (URNs converted; Digital Links made canonical)."""
    if identifier.startswith("urn:epc:"):
        try:
            return urn_to_digital_link(identifier, domain=domain)
        except ValueError as exc:
            raise _fail(errors.NOT_CONVERTIBLE, value=identifier[:100]) from exc
    if identifier.startswith(("http://", "https://")):
        return canonical_digital_link(identifier, domain=domain)
    raise _fail(errors.NOT_CONVERTIBLE, value=identifier[:100])


# --- Digital Link → URN -----------------------------------------------------------------------------

# The GS1 keys and key qualifiers a Digital Link path may carry (GS1 Digital Link 1.2, table 4-1).
_PATH_AIS = frozenset(
    {"00", "01", "22", "10", "21", "235", "253", "255", "401", "402", "414", "254", "415", "8020", "417"}
    | {"8003", "8004", "8006", "8010", "8011", "8013", "8017", "8018", "7040"}
)


_PRIMARY_KEYS = frozenset(
    {"00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8013", "8017", "8018"}
)


def _digital_link_path_pairs(uri: str) -> list[tuple[str, str]]:
    """The (AI, value) pairs of the path of a Digital Link, from the first GS1 key on (any host,
    any path prefix before it)."""
    path = urlsplit(uri).path
    segments = [s for s in path.split("/") if s]
    for start in range(len(segments)):
        if segments[start] in _PRIMARY_KEYS:
            rest = segments[start:]
            if len(rest) % 2:
                raise ValueError("the path has an AI without a value")
            pairs = [(rest[i], unquote(rest[i + 1])) for i in range(0, len(rest), 2)]
            if any(ai not in _PATH_AIS for ai, _ in pairs):
                raise ValueError("the path has an AI that is not a key or key qualifier")
            return pairs
    raise ValueError("no GS1 key in the path")


def canonical_digital_link(uri: str, *, domain: str = DIGITAL_LINK_DOMAIN) -> str:
    """A Digital Link on ``id.gs1.org`` without query string, with the path's keys only, the GTIN as
    14 digits and values percent-encoded uniquely (the "constrained canonical" form)."""
    pairs = _digital_link_path_pairs(uri)
    parts = []
    for ai, value in pairs:
        if ai == "01":
            value = value.zfill(14)
        parts.append(f"{ai}/{escape_digital_link_component(value)}")
    return f"{domain}/" + "/".join(parts)


def digital_link_to_urn(uri: str, *, company_prefix_length: int | None = None) -> str:
    """The EPC URN of a Digital Link's most specific identifier (SGTIN for 01+21, LGTIN for 01+10,
    a GTIN pattern for 01 alone, SSCC for 00, SGLN for 414[+254], GIAI for 8004, GRAI for 8003, PGLN
    for 417). Raises ``ValueError`` for other keys or bad values."""
    pairs = dict(_digital_link_path_pairs(uri))
    if "01" in pairs:
        gtin = pairs["01"].zfill(14)
        if not (gtin.isdigit() and len(gtin) == 14 and has_valid_check_digit(gtin)):
            raise ValueError("bad GTIN")
        if "21" in pairs:
            return sgtin_urn(gtin, pairs["21"], company_prefix_length=company_prefix_length)
        if "10" in pairs:
            return lgtin_urn(gtin, pairs["10"], company_prefix_length=company_prefix_length)
        return gtin_class_urn(gtin, company_prefix_length=company_prefix_length)
    if "00" in pairs:
        sscc = pairs["00"]
        if not (len(sscc) == 18 and has_valid_check_digit(sscc)):
            raise ValueError("bad SSCC")
        return sscc_urn(sscc, company_prefix_length=company_prefix_length)
    if "414" in pairs or "417" in pairs:
        gln = pairs.get("414") or pairs["417"]
        if not (len(gln) == 13 and has_valid_check_digit(gln)):
            raise ValueError("bad GLN")
        cp_len = gcp_length(gln[:12], given=company_prefix_length)
        if "417" in pairs:
            return f"urn:epc:id:pgln:{gln[:cp_len]}.{gln[cp_len:12]}"
        return sgln_urn(gln, pairs.get("254", "0"), company_prefix_length=cp_len)
    if "8004" in pairs:
        giai = pairs["8004"]
        cp_len = gcp_length(giai, given=company_prefix_length)
        return f"urn:epc:id:giai:{giai[:cp_len]}.{escape_urn_component(giai[cp_len:])}"
    if "8003" in pairs:
        grai = pairs["8003"]
        if len(grai) < 14 or not has_valid_check_digit(grai[:14]):
            raise ValueError("bad GRAI")
        cp_len = gcp_length(grai[1:13], given=company_prefix_length)
        return f"urn:epc:id:grai:{grai[1 : 1 + cp_len]}.{grai[1 + cp_len : 13]}.{escape_urn_component(grai[14:])}"
    raise ValueError("no EPC URN form for this key")


def canonical_identifier(value: str, *, company_prefix_length: int | None = None) -> str:
    """The identifier the index uses for an EPC / class named by an event: URNs as given (the
    company prefix is explicit in them), Digital Links converted to URNs when they have a URN form
    (else made canonical), a bare 20-digit China code as its URN, anything else unchanged."""
    if value.startswith("urn:"):
        return value
    if value.startswith(("https://", "http://")):
        try:
            return digital_link_to_urn(value, company_prefix_length=company_prefix_length)
        except ValueError:
            try:
                return canonical_digital_link(value)
            except ValueError:
                return value
    if _CHINA.match(value):
        return CHINA_URN_PREFIX + value
    return value


@dataclass(frozen=True)
class IndexedIdentifier:
    """What the identifier index stores for one identifier."""

    identifier: str
    gtin: str = ""
    product_code: str = ""


def index_identifier(value: str) -> IndexedIdentifier:
    """Canonical identifier with its GTIN and product code (GTIN or China prefix), for the index.
    Never raises: identifiers the index cannot read are stored as given."""
    identifier = canonical_identifier(value)
    gtin = ""
    if identifier.startswith(("urn:epc:id:sgtin:", "urn:epc:class:lgtin:", "urn:epc:idpat:sgtin:")):
        parts = identifier.split(":", 4)[4].split(".")
        if len(parts) >= 2:
            try:
                gtin = gtin_from_sgtin_parts(parts[0], parts[1])
            except ValueError:
                gtin = ""
        return IndexedIdentifier(identifier, gtin, gtin)
    if identifier.startswith(CHINA_URN_PREFIX):
        code = identifier[len(CHINA_URN_PREFIX) :]
        return IndexedIdentifier(identifier, "", code[:7])
    return IndexedIdentifier(identifier)


# --- Parsing what was scanned -------------------------------------------------------------------


def _normalise_scanner_text(text: str) -> str:
    text = text.strip().replace("\r", "").replace("\n", "")
    # Keyboard-wedge scanners cannot type GS; they send a stand-in.
    return text.replace("\u241d", GS).replace("<GS>", GS).replace("{GS}", GS)


def _china(text: str, digits: str, *, lookup: bool) -> ScannedCode:
    drug_pack_id = None
    mapped: bool | None = None
    if lookup:
        from nethospital.prescriptions.models import DrugPack

        drug_pack_id = DrugPack.objects.filter(china_prefix=digits[:7]).values_list("pk", flat=True).first()
        mapped = drug_pack_id is not None
    return ScannedCode(
        text=text,
        kind=KIND_CHINA,
        identifier=CHINA_URN_PREFIX + digits,
        source="china",
        china_code=digits,
        is_mapped=mapped,
        drug_pack_id=drug_pack_id,
    )


def _element_error(message: str, value: str) -> CodeError:
    """Turn biip's message into our error: impossible dates and check digits are called by name."""
    match = re.search(r"GS1 AI \((\d+)\)", message)
    if match and match.group(1) in _DATE_AIS:
        ai = match.group(1)
        found = re.search(rf"(?:'|from ')(?:{ai})?(\d{{6}})'", message)
        return _fail(errors.IMPOSSIBLE_DATE, ai=ai, value=found.group(1) if found else value[:40])
    return _fail(errors.BAD_ELEMENT_STRING, detail=message[:200])


def _check_key(element: Any) -> None:
    """biip reads a key with a wrong check digit but notes the error; we refuse it."""
    for key, error in (("GTIN", element.gtin_error), ("SSCC", element.sscc_error), ("GLN", element.gln_error)):
        if error:
            expected = re.search(r"Expected (\d)", error)
            raise _fail(
                errors.BAD_CHECK_DIGIT,
                key=key,
                value=element.value,
                expected=expected.group(1) if expected else "?",
            )


def _from_element_strings(text: str, elements: list[Any], source: str, *, cp_length: int | None) -> ScannedCode:
    values: dict[str, str] = {}
    dates: dict[str, dt.date | None] = {}
    for element in elements:
        _check_key(element)
        values[element.ai.ai] = element.value
        if element.ai.ai in _DATE_AIS:
            dates[element.ai.ai] = element.date
    expiry = dates.get("17")
    batch = values.get("10", "")
    if "01" in values:
        gtin = values["01"].zfill(14)
        serial = values.get("21", "")
        company, _item = sgtin_parts_from_gtin(gtin, length=cp_length)
        if serial:
            if not _valid_serial(serial):
                raise _fail(errors.BAD_SERIAL, value=serial[:40])
            kind, identifier = KIND_SGTIN, sgtin_urn(gtin, serial, company_prefix_length=len(company))
        elif batch:
            kind, identifier = KIND_LGTIN, lgtin_urn(gtin, batch, company_prefix_length=len(company))
        else:
            kind, identifier = KIND_GTIN, gtin_class_urn(gtin, company_prefix_length=len(company))
        return ScannedCode(
            text=text,
            kind=kind,
            identifier=identifier,
            source=source,
            gtin=gtin,
            serial=serial,
            batch=batch,
            expiry=expiry,
            company_prefix=company,
            element_strings=values,
        )
    if "21" in values:
        raise _fail(errors.SERIAL_WITHOUT_GTIN)
    if "00" in values:
        sscc = values["00"]
        identifier = sscc_urn(sscc, company_prefix_length=cp_length)
        return ScannedCode(
            text=text,
            kind=KIND_SSCC,
            identifier=identifier,
            source=source,
            sscc=sscc,
            batch=batch,
            expiry=expiry,
            company_prefix=identifier.split(":")[-1].split(".")[0],
            element_strings=values,
        )
    if "414" in values:
        identifier = sgln_urn(values["414"], values.get("254", "0"), company_prefix_length=cp_length)
        return ScannedCode(text=text, kind=KIND_SGLN, identifier=identifier, source=source, element_strings=values)
    raise _fail(errors.NO_KEY)


def _parse_element_string(text: str, *, cp_length: int | None) -> ScannedCode:
    body = text
    symbology = _SYMBOLOGY.match(body)
    if symbology:
        body = body[3:]
    body = body.lstrip(GS)  # FNC1 in first position, sent as GS by some scanners
    try:
        if body.startswith("("):
            message = biip.gs1_messages.GS1Message.parse_hri(body)
        else:
            message = biip.gs1_messages.GS1Message.parse(body)
    except biip.ParseError as exc:
        raise _element_error(str(exc), body) from exc
    return _from_element_strings(text, list(message.element_strings), "element_string", cp_length=cp_length)


def _parse_digital_link(text: str, *, cp_length: int | None) -> ScannedCode:
    try:
        uri = biip.gs1_digital_link_uris.GS1DigitalLinkURI.parse(text)
    except biip.ParseError as exc:
        message = str(exc)
        if "GS1 AI (" in message:
            raise _element_error(message, text) from exc
        raise _fail(errors.BAD_DIGITAL_LINK, detail=message[:200]) from exc
    return _from_element_strings(text, list(uri.element_strings), "digital_link", cp_length=cp_length)


def parse_urn(text: str) -> ScannedCode:
    """An EPC URN (or our China URN) as a ``ScannedCode``; checks its structure."""
    if text.startswith(CHINA_URN_PREFIX):
        digits = text[len(CHINA_URN_PREFIX) :]
        if not _CHINA.match(digits):
            raise _fail(errors.BAD_CHINA_CODE, length=len(digits))
        return _china(text, digits, lookup=False)
    try:
        family, scheme, parts = _split_urn(text)
    except ValueError as exc:
        raise _fail(errors.BAD_URN, value=text[:100], detail=str(exc)) from exc

    def bad(detail: str) -> CodeError:
        return _fail(errors.BAD_URN, value=text[:100], detail=detail)

    if (family, scheme) in (("id", "sgtin"), ("class", "lgtin")):
        if len(parts) != 3:
            raise bad("expected CompanyPrefix.IndicatorItemRef.Serial")
        try:
            gtin = gtin_from_sgtin_parts(parts[0], parts[1])
        except ValueError as exc:
            raise bad(str(exc)) from exc
        value = unescape_urn_component(parts[2])
        if not _valid_serial(value):
            raise _fail(errors.BAD_SERIAL, value=value[:40])
        if scheme == "sgtin":
            return ScannedCode(text, KIND_SGTIN, text, "urn", gtin=gtin, serial=value, company_prefix=parts[0])
        return ScannedCode(text, KIND_LGTIN, text, "urn", gtin=gtin, batch=value, company_prefix=parts[0])
    if (family, scheme) == ("idpat", "sgtin"):
        if len(parts) != 3 or parts[2] != "*":
            raise bad("expected CompanyPrefix.IndicatorItemRef.*")
        try:
            gtin = gtin_from_sgtin_parts(parts[0], parts[1])
        except ValueError as exc:
            raise bad(str(exc)) from exc
        return ScannedCode(text, KIND_GTIN, text, "urn", gtin=gtin, company_prefix=parts[0])
    if (family, scheme) == ("id", "sscc"):
        if len(parts) != 2 or not _digits(*parts) or len(parts[0]) + len(parts[1]) != 17:
            raise bad("expected CompanyPrefix.ExtensionSerialRef, 17 digits together")
        body = parts[1][0] + parts[0] + parts[1][1:]
        return ScannedCode(text, KIND_SSCC, text, "urn", sscc=body + check_digit(body), company_prefix=parts[0])
    if (family, scheme) == ("id", "sgln"):
        if len(parts) != 3 or not _digits(parts[0], parts[1]) or len(parts[0]) + len(parts[1]) != 12:
            raise bad("expected CompanyPrefix.LocationRef.Extension")
        return ScannedCode(text, KIND_SGLN, text, "urn", company_prefix=parts[0])
    return ScannedCode(text, KIND_OTHER, text, "urn")


def parse(text: str, *, company_prefix_length: int | None = None, lookup: bool = True) -> ScannedCode:
    """Read one scanned or typed code; raises ``CodeError`` with the reason when it cannot.

    ``lookup`` looks a China code's prefix up in the drug catalogue (``is_mapped``)."""
    raw = text or ""
    cleaned = _normalise_scanner_text(raw)
    if not cleaned:
        raise _fail(errors.EMPTY_CODE)
    if _CHINA.match(cleaned):
        return _china(raw, cleaned, lookup=lookup)
    if cleaned.startswith("urn:"):
        result = parse_urn(cleaned)
        if result.kind == KIND_CHINA and lookup:
            return _china(raw, result.china_code, lookup=True)
        return result
    if cleaned.lower().startswith(("http://", "https://")):
        return _parse_digital_link(cleaned, cp_length=company_prefix_length)
    if _SYMBOLOGY.match(cleaned) or cleaned[0].isdigit() or cleaned.startswith(("(", GS)):
        return _parse_element_string(cleaned, cp_length=company_prefix_length)
    raise _fail(errors.UNREADABLE_CODE)


__all__ = [
    "CHINA_URN_PREFIX",
    "CodeError",
    "ScannedCode",
    "canonical_digital_link",
    "canonical_identifier",
    "check_digit",
    "digital_link_to_urn",
    "index_identifier",
    "parse",
    "parse_urn",
    "sgtin_urn",
    "to_digital_link",
    "urn_to_digital_link",
]
