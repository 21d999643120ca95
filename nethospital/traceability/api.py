"""The EPCIS 2.0 REST interface, mounted at ``/epcis/`` (GS1 EPCIS 2.0 REST bindings, openapi.yaml).

================================  ==========================================================
OPTIONS /epcis/capture            limits and behaviours (GS1-EPCIS-Capture-Limit, ...)
POST    /epcis/capture            an EPCISDocument (or EPCISQueryDocument): 202 + Location
GET     /epcis/capture            the caller's capture jobs (newest first, ``perPage``)
GET     /epcis/capture/{id}       one capture job's status
POST    /epcis/events             one event: 201 + Location, 409 if its eventID exists
GET     /epcis/events             query (see ``query``): an EPCISQueryDocument
GET     /epcis/events/{eventID}   one event (URL-encoded ID)
GET     /epcis/epcs/{epc}/events  events naming an EPC (URN or URL-encoded Digital Link)
================================  ==========================================================

Refusals are RFC 7807 bodies in the EPCIS exception format (``application/problem+json``).

Authentication is the session (``/accounts/login/``), and the views are exempt from Django's CSRF
check, deliberately: a cross-site page cannot make a browser send these requests with the user's
cookie, because (1) the session cookie is ``SameSite=Lax`` (not sent on cross-site POSTs) and (2)
every POST must be ``application/json`` or ``application/ld+json``, a content type an HTML form cannot
send and a cross-site script can only send after a CORS preflight that this site never grants. Machine
clients of supply-chain partners then need no CSRF token dance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from nethospital.accounts.choices import Role
from nethospital.core import context
from nethospital.traceability import capture, epcis, errors, query
from nethospital.traceability.errors import EPCISException
from nethospital.traceability.models import CaptureJob, EPCISEvent

JSON_TYPES = ("application/json", "application/ld+json")
EPCIS_VERSION = "2.0.0"
CBV_VERSION = "2.0.0"

Handler = Callable[..., HttpResponse]


def _problem(exc: EPCISException) -> HttpResponse:
    response = JsonResponse(exc.as_problem(), status=exc.status, content_type="application/problem+json")
    if exc.status == 413:
        _limit_headers(response)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Session realm="epcis"'
    return response


def _versions(response: HttpResponse) -> HttpResponse:
    response["GS1-EPCIS-Version"] = EPCIS_VERSION
    response["GS1-CBV-Version"] = CBV_VERSION
    return response


def _limit_headers(response: HttpResponse) -> None:
    response["GS1-EPCIS-Capture-Limit"] = str(capture.capture_limit())
    response["GS1-EPCIS-Capture-File-Size-Limit"] = str(capture.file_size_limit())


def _json(body: Any, status: int = 200) -> HttpResponse:
    return _versions(JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False}))


def epcis_view(methods: tuple[str, ...]) -> Callable[[Handler], Handler]:
    """CSRF-exempt (see the module docstring), EPCIS problems as responses, 405 otherwise."""

    def decorate(handler: Handler) -> Handler:
        @csrf_exempt
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = HttpResponse(status=405)
                response["Allow"] = ", ".join(methods)
                return response
            with context.using(context.RequestContext(client_address=_address(request), channel="epcis")):
                try:
                    return handler(request, *args, **kwargs)
                except EPCISException as exc:
                    return _versions(_problem(exc))

        view.__name__ = handler.__name__
        view.__doc__ = handler.__doc__
        return view

    return decorate


def _address(request: HttpRequest) -> str | None:
    from nethospital.core.middleware import client_address

    return client_address(request)


def _require_json(request: HttpRequest) -> None:
    content_type = (request.content_type or "").lower()
    if content_type not in JSON_TYPES:
        raise EPCISException(errors.UNSUPPORTED_MEDIA, 415, errors.MEDIA_TYPE)


def _read_body(request: HttpRequest) -> bytes:
    """The body, refused with 413 beyond the file size limit (read without Django's own limit,
    which is for forms)."""
    limit = capture.file_size_limit()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        capture.check_limits(0, declared)
    body = request.read(limit + 1)
    if len(body) > limit:
        capture.check_limits(0, len(body))
    return body


# --- Capture ------------------------------------------------------------------------------------


@epcis_view(("OPTIONS", "POST", "GET"))
def capture_collection(request: HttpRequest) -> HttpResponse:
    """OPTIONS: discovery; POST: capture a document (202); GET: the caller's capture jobs."""
    user: Any = request.user
    if request.method == "OPTIONS":
        capture.require_capture(user)
        response = _versions(HttpResponse(status=204))
        response["Allow"] = "OPTIONS, POST, GET"
        _limit_headers(response)
        response["GS1-Capture-Error-Behaviour"] = "all"  # both rollback and proceed
        response["GS1-EPCIS-Min"] = response["GS1-EPCIS-Max"] = EPCIS_VERSION
        response["GS1-CBV-Min"] = response["GS1-CBV-Max"] = CBV_VERSION
        response["GS1-EPC-Format"] = "Always_EPC_URN"
        return response
    if request.method == "GET":
        capture.require_query(user)
        jobs = CaptureJob.objects.order_by("-submitted_at")
        if not (user.has_role(Role.REGULATOR) or user.has_role(Role.PLATFORM_ADMIN)):
            jobs = jobs.filter(submitted_by=user)
        per_page = request.GET.get("perPage", "30")
        limit = min(int(per_page), query.MAX_PER_PAGE) if per_page.isdigit() and int(per_page) > 0 else 30
        return _json_list([capture.job_status(job) for job in jobs[:limit]])
    capture.require_capture(user)
    _require_json(request)
    behaviour = (request.headers.get("GS1-Capture-Error-Behaviour") or capture.ROLLBACK).strip().lower()
    body = _read_body(request)
    document = epcis.parse_json(body)
    job = capture.submit_capture(user, document, error_behaviour=behaviour, size=len(body))
    response = _versions(HttpResponse(status=202))
    response["Location"] = f"/epcis/capture/{job.pk}"
    return response


@epcis_view(("GET",))
def capture_job(request: HttpRequest, capture_id: str) -> HttpResponse:
    """The status of one capture job."""
    job = capture.access_capture_job(request.user, capture_id)
    return _json(capture.job_status(job))


# --- Events -------------------------------------------------------------------------------------


@epcis_view(("OPTIONS", "POST", "GET"))
def events_collection(request: HttpRequest) -> HttpResponse:
    """GET: query; POST: capture one event."""
    if request.method == "OPTIONS":
        capture.require_query(request.user)
        response = _versions(HttpResponse(status=204))
        response["Allow"] = "OPTIONS, POST, GET"
        return response
    if request.method == "POST":
        capture.require_capture(request.user)
        _require_json(request)
        event = epcis.parse_json(_read_body(request))
        captured = capture.capture_single_event(request.user, event)
        response = _json(query.render_event(captured.event), status=201)
        response["Location"] = event_location(captured.event.event_id)
        return response
    capture.require_query(request.user)
    return _query_response(request, query.parse_query(request.GET))


@epcis_view(("GET",))
def event_detail(request: HttpRequest, event_id: str) -> HttpResponse:
    """One event by its ID, as an EPCISQueryDocument."""
    capture.require_query(request.user)
    row = EPCISEvent.objects.filter(event_id=event_id).first()
    if row is None:
        raise EPCISException(errors.NO_SUCH_RESOURCE, 404, errors.NO_SUCH_EVENT % {"event_id": event_id[:300]})
    return _json(query.query_document([row]))


@epcis_view(("GET",))
def epc_events(request: HttpRequest, epc: str) -> HttpResponse:
    """Events naming one EPC (a URN, or a URL-encoded Digital Link)."""
    capture.require_query(request.user)
    return _query_response(request, query.parse_query(request.GET, extra=query.epc_filter(epc)))


def _query_response(request: HttpRequest, parsed: query.EventQuery) -> HttpResponse:
    page = query.run_query(parsed)
    response = _json(query.query_document(page.events))
    if page.next_token:
        params = request.GET.copy()
        params["nextPageToken"] = page.next_token
        params["perPage"] = str(parsed.per_page)
        response["Link"] = f'<{request.path}?{urlencode(sorted(params.lists()), doseq=True)}>; rel="next"'
    return response


def event_location(event_id: str) -> str:
    return "/epcis/events/" + quote(event_id, safe="")


def _json_list(body: list[Any]) -> HttpResponse:
    return _versions(HttpResponse(json.dumps(body, ensure_ascii=False), content_type="application/json"))


app_name = "epcis"
urlpatterns = [
    path("capture", capture_collection, name="capture"),
    path("capture/<str:capture_id>", capture_job, name="capture_job"),
    path("events", events_collection, name="events"),
    path("events/<path:event_id>", event_detail, name="event"),
    path("epcs/<path:epc>/events", epc_events, name="epc_events"),
]
