"""The JSON API (Django Ninja): one NinjaAPI with a router per app, OpenAPI at /api/docs.

Every refusal is a 4xx with one body shape, in the user's language (Accept-Language or the
language cookie)::

    {"error": {"code": "id_number_check", "message": "...", "fields": {"id_number": ["..."]}}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from nethospital.accounts.api import router as accounts_router
from nethospital.consultations.api import router as consultations_router
from nethospital.core.errors import (
    BAD_REQUEST,
    INVALID_INPUT,
    LOGIN_REQUIRED,
    NOT_FOUND,
    REQUEST_TOO_LARGE,
    DomainError,
)
from nethospital.directory.api import router as directory_router
from nethospital.pharmacy.api import router as pharmacy_router
from nethospital.prescriptions.api import router as prescriptions_router
from nethospital.records.api import router as records_router
from nethospital.scheduling.api import router as scheduling_router

api = NinjaAPI(
    title="Net Hospital API",
    version="1",
    description="JSON API of Net Hospital. Session authentication (log in through /accounts/login/); "
    "unsafe methods need the CSRF token in the X-CSRFToken header.",
    docs_url="/docs",
    urls_namespace="api",
)

# Where a parameter comes from, as Ninja puts it first in a validation error's location.
PARAM_SOURCES = frozenset({"body", "query", "path", "header", "cookie", "form", "file"})

api.add_router("/", accounts_router)
api.add_router("/directory/", directory_router)
api.add_router("/", records_router)
api.add_router("/", scheduling_router)
api.add_router("/", consultations_router)
api.add_router("/", pharmacy_router)
api.add_router("/", prescriptions_router)


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    response = api.create_response(request, exc.as_dict(), status=exc.status)
    if exc.status == 429 and "retry_after" in exc.params:
        response["Retry-After"] = str(exc.params["retry_after"])
    return response


def _pydantic_message(error: dict[str, Any]) -> str:
    """Pydantic's messages are English only; say the common ones in the user's language."""
    kind = str(error.get("type", ""))
    if kind == "missing":
        return _("This field is required.")
    if kind == "string_too_long":
        return _("This value is too long.")
    if kind.startswith("date") or kind.startswith("datetime"):
        return _("Enter a valid date (YYYY-MM-DD).")
    if kind.startswith("int") or kind.startswith("float") or kind.startswith("decimal"):
        return _("Enter a number.")
    if kind in ("json_invalid", "model_attributes_type", "dict_type", "model_type"):
        return _("The request body must be a JSON object.")
    if kind in ("enum", "literal_error"):
        return _("This is not one of the allowed choices.")
    if kind.startswith("bool"):
        return _("Enter true or false.")
    return _("This value is not valid.")


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        fields.setdefault(_field_name(error.get("loc", ())), []).append(_pydantic_message(error))
    return api.create_response(request, error_body(INVALID_INPUT.code, str(INVALID_INPUT.message), fields), status=422)


def _field_name(loc: Sequence[Any]) -> str:
    """The field a client sent, from Ninja's error location: ("body", "payload", "body") is the
    JSON field ``body`` (every body schema parameter here is called ``payload``), ("query", "q")
    is ``q``, ("file", "file") is ``file``. Only the leading source and parameter are dropped, so
    a field that happens to be called "body" or "path" keeps its name."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in PARAM_SOURCES:
        source, parts = parts[0], parts[1:]
        if source in ("body", "form") and len(parts) > 1 and parts[0] == "payload":
            parts = parts[1:]
    return ".".join(parts) or "__all__"


@api.exception_handler(SuspiciousOperation)
def _unreadable_request(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields, a malformed multipart body: the
    same structured 4xx as any refusal (Django alone would answer an HTML 400)."""
    if isinstance(exc, RequestDataTooBig):
        message = REQUEST_TOO_LARGE.message % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
        return api.create_response(request, error_body(REQUEST_TOO_LARGE.code, message), status=413)
    return api.create_response(request, error_body(BAD_REQUEST.code, str(BAD_REQUEST.message)), status=400)


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, error_body(LOGIN_REQUIRED.code, str(LOGIN_REQUIRED.message)), status=401)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, error_body(NOT_FOUND.code, str(NOT_FOUND.message)), status=404)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = "csrf_failed" if exc.status_code == 403 else "http_error"
    return api.create_response(request, error_body(code, str(exc)), status=exc.status_code)
