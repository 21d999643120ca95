"""Error codes of the traceability codes and the EPCIS repository (English and Chinese).

Two families:

- ``ErrorCode`` constants for what a scanner or a person typed (``codes.CodeError``): a stable code
  and a message in the user's language.
- EPCIS exceptions (``EPCISException``) in the shape the GS1 EPCIS 2.0 REST bindings use, RFC 7807
  problem bodies: ``{"type": "epcisException:ValidationException", "title": ..., "status": 400,
  "detail": ...}``. The ``title`` is fixed English per exception type (machines read ``type``); the
  ``detail`` is in the requester's language.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode

# --- Codes a scanner delivers -----------------------------------------------------------------

EMPTY_CODE = ErrorCode("code_empty", _("No code was scanned or typed."))
UNREADABLE_CODE = ErrorCode(
    "code_unreadable",
    _("This is not a code we can read (a GS1 DataMatrix, a GS1 Digital Link, an EPC URN or a 20-digit code)."),
)
BAD_ELEMENT_STRING = ErrorCode("code_bad_element_string", _("The GS1 code is not valid: %(detail)s"))
BAD_CHECK_DIGIT = ErrorCode(
    "code_bad_check_digit",
    _("The check digit of %(key)s %(value)s is wrong (expected %(expected)s): the code was misread or is not genuine."),
)
IMPOSSIBLE_DATE = ErrorCode(
    "code_impossible_date",
    _("The date %(value)s in AI (%(ai)s) is not a real date (YYMMDD)."),
)
NO_KEY = ErrorCode(
    "code_no_key",
    _("The code names no product or container: it needs a GTIN (01) or an SSCC (00)."),
)
SERIAL_WITHOUT_GTIN = ErrorCode("code_serial_without_gtin", _("A serial number (21) needs a GTIN (01) in the code."))
BAD_URN = ErrorCode("code_bad_urn", _("The EPC URN %(value)s is not valid: %(detail)s"))
BAD_DIGITAL_LINK = ErrorCode("code_bad_digital_link", _("The GS1 Digital Link is not valid: %(detail)s"))
BAD_CHINA_CODE = ErrorCode(
    "code_bad_china_code", _("A Chinese drug traceability code has exactly 20 digits (this one has %(length)s).")
)
BAD_SERIAL = ErrorCode(
    "code_bad_serial",
    _("The serial number %(value)s is not valid: 1 to 20 characters of the GS1 character set."),
)
NOT_CONVERTIBLE = ErrorCode("code_not_convertible", _("%(value)s cannot be written as a GS1 Digital Link."))

# --- EPCIS exceptions ---------------------------------------------------------------------------

VALIDATION = "epcisException:ValidationException"
QUERY_PARAMETER = "epcisException:QueryParameterException"
CAPTURE_LIMIT = "epcisException:CaptureLimitExceededException"
ALREADY_EXISTS = "epcisException:ResourceAlreadyExistsException"
NO_SUCH_RESOURCE = "epcisException:NoSuchResourceException"
SECURITY = "epcisException:SecurityException"
UNSUPPORTED_MEDIA = "epcisException:UnsupportedMediaTypeException"
IMPLEMENTATION = "epcisException:ImplementationException"

TITLES = {
    VALIDATION: "EPCIS validation exception",
    QUERY_PARAMETER: "EPCIS query parameter exception",
    CAPTURE_LIMIT: "Capture Payload too large",
    ALREADY_EXISTS: "A resource with the provided identifier already exists.",
    NO_SUCH_RESOURCE: "Resource not found",
    SECURITY: "Access to resource forbidden",
    UNSUPPORTED_MEDIA: "Unsupported media type",
    IMPLEMENTATION: "Implementation exception",
}


class EPCISException(Exception):
    """A refusal in the EPCIS exception format. ``detail`` may be a lazy translation."""

    def __init__(self, exception_type: str, status: int, detail: Any = "", *, instance: str = "", **extra: Any) -> None:
        self.type = exception_type
        self.status = status
        self.detail = detail
        self.instance = instance
        self.extra = extra
        super().__init__(f"{exception_type}: {detail}")

    def as_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": TITLES.get(self.type, self.type),
            "status": self.status,
            "detail": str(self.detail),
        }
        if self.instance:
            body["instance"] = self.instance
        body.update(self.extra)
        return body


def validation_error(detail: Any, *, instance: str = "", **extra: Any) -> EPCISException:
    return EPCISException(VALIDATION, 400, detail, instance=instance, **extra)


def query_error(detail: Any) -> EPCISException:
    return EPCISException(QUERY_PARAMETER, 400, detail)


# User-facing details of EPCIS exceptions (the ``detail`` member).
NOT_JSON = _("The body is not valid JSON: %(error)s")
NOT_A_DOCUMENT = _("The body must be an EPCISDocument or an EPCISQueryDocument (got type %(type)s).")
SCHEMA_VIOLATION = _("%(path)s: %(message)s")
UNKNOWN_EVENT_TYPE = _(
    "Unknown event type %(type)s: ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent or "
    "AssociationEvent."
)
NOT_CBV_WORD = _(
    "%(field)s %(value)s is neither a CBV word nor a full URI (or a prefix:name with the prefix declared in @context)."
)
NOT_IN_CBV = _("%(field)s %(value)s is in the CBV namespace but is not a CBV word.")
UNDECLARED_NAMESPACE = _(
    "The field %(name)s needs a namespace: write prefix:name with the prefix declared in @context, or a full URI."
)
BAD_TIME = _("%(field)s %(value)s is not a date and time with a time zone offset (ISO 8601).")
BAD_IDENTIFIER = _("%(field)s %(value)s: %(error)s")
TOO_MANY_EVENTS = _("The document has %(count)s events; at most %(limit)s are captured per request.")
TOO_LARGE = _("The document has %(size)s bytes; at most %(limit)s are captured per request.")
MEDIA_TYPE = _("Send the document as application/json or application/ld+json.")
BAD_ERROR_BEHAVIOUR = _("GS1-Capture-Error-Behaviour must be rollback or proceed.")
EVENT_EXISTS = _("An event with eventID %(event_id)s is already stored.")
LOGIN_NEEDED = _("Log in to use the EPCIS interface.")
ROLE_NEEDED = _("The EPCIS interface is for pharmacists, pharmacy staff, couriers, station operators and regulators.")
CAPTURE_ROLE_NEEDED = _(
    "Capturing events is for pharmacists, pharmacy staff, couriers, station operators and platform admins."
)
MFA_NEEDED = _("Your role requires two-factor authentication in this session.")
NO_SUCH_CAPTURE = _("There is no capture job %(capture_id)s.")
NO_SUCH_EVENT = _("There is no event %(event_id)s.")
UNKNOWN_PARAMETER = _("Unknown query parameter %(name)s.")
BAD_PARAMETER = _("The query parameter %(name)s is not valid: %(error)s")
BAD_PAGE_TOKEN = _("The nextPageToken is not valid for this query, or it has expired.")
BAD_EPC = _("%(value)s is neither an EPC URN nor a GS1 Digital Link.")
