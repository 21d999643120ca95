"""EPCIS capture: asynchronous capture jobs (``POST /epcis/capture``) and single events
(``POST /epcis/events``), with who may capture and query (R19, R22).

A capture job is created when a document is received (checked as a whole: JSON, document type,
envelope against the schema, limits), and processed by the django-tasks task
``tasks.capture_epcis_document``: at once in the process that enqueued it with the immediate backend
(the embedded server and the tests), by ``nethospital worker`` with the database backend
(production). The task is enqueued on commit of the job row.

``GS1-Capture-Error-Behaviour``:

- ``rollback`` (the default): all or nothing. One bad event and nothing is stored; the job says
  ``success: false`` with one error per bad event.
- ``proceed``: the good events are stored, the bad ones reported.

Events already stored (same eventID, or the same content without an eventID: same hash ID) are
skipped, not errors. The job's events, their identifiers and the pack state (``state.apply_events``)
are written in one transaction, audited as one entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from nethospital.accounts import policy
from nethospital.accounts.choices import Role
from nethospital.core import audit
from nethospital.core.choices import AuditOutcome
from nethospital.traceability import epcis, errors
from nethospital.traceability.choices import CaptureStatus
from nethospital.traceability.errors import EPCISException
from nethospital.traceability.models import CaptureJob, EPCISEvent

logger = logging.getLogger(__name__)

ROLLBACK = "rollback"
PROCEED = "proceed"
ERROR_BEHAVIOURS = (ROLLBACK, PROCEED)

# Who may capture supply-chain events, and who may read them (never anyone anonymous).
CAPTURE_ROLES = frozenset(
    {Role.PHARMACIST, Role.PHARMACY_STAFF, Role.COURIER, Role.STATION_OPERATOR, Role.PLATFORM_ADMIN}
)
QUERY_ROLES = CAPTURE_ROLES | {Role.REGULATOR}


def capture_limit() -> int:
    """Most events in one capture request (``GS1-EPCIS-Capture-Limit``)."""
    return int(settings.NETHOSPITAL_EPCIS_CAPTURE_LIMIT)


def file_size_limit() -> int:
    """Most bytes in one capture request (``GS1-EPCIS-Capture-File-Size-Limit``)."""
    return int(settings.NETHOSPITAL_EPCIS_CAPTURE_FILE_SIZE_LIMIT)


# --- Who ----------------------------------------------------------------------------------------


def _require(user: Any, roles: frozenset[str], refusal: Any) -> None:
    if user is None or not user.is_authenticated:
        raise EPCISException(errors.SECURITY, 401, errors.LOGIN_NEEDED)
    if not (user.roles() & roles or (Role.PLATFORM_ADMIN in roles and user.is_superuser)):
        raise EPCISException(errors.SECURITY, 403, refusal)
    # Roles that need a second factor (R6) have passed one in this session.
    if policy.requires_mfa(user) and not getattr(user, "is_mfa_verified", False):
        raise EPCISException(errors.SECURITY, 403, errors.MFA_NEEDED)


def require_capture(user: Any) -> None:
    _require(user, CAPTURE_ROLES, errors.CAPTURE_ROLE_NEEDED)


def require_query(user: Any) -> None:
    _require(user, QUERY_ROLES, errors.ROLE_NEEDED)


# --- Jobs ---------------------------------------------------------------------------------------


def check_limits(event_count: int, size: int | None = None) -> None:
    if size is not None and size > file_size_limit():
        raise EPCISException(errors.CAPTURE_LIMIT, 413, errors.TOO_LARGE % {"size": size, "limit": file_size_limit()})
    if event_count > capture_limit():
        raise EPCISException(
            errors.CAPTURE_LIMIT, 413, errors.TOO_MANY_EVENTS % {"count": event_count, "limit": capture_limit()}
        )


def submit_capture(user: Any, document: Any, *, error_behaviour: str = ROLLBACK, size: int | None = None) -> CaptureJob:
    """Receive a capture document: check it as a whole, create the job, enqueue its processing on
    commit. Raises ``EPCISException`` (400, 401, 403, 413) when it is not received."""
    require_capture(user)
    if error_behaviour not in ERROR_BEHAVIOURS:
        raise errors.validation_error(errors.BAD_ERROR_BEHAVIOUR)
    received = epcis.receive_document(document)
    check_limits(len(received.events), size)
    job = CaptureJob.objects.create(
        status=CaptureStatus.RUNNING,
        error_behaviour=error_behaviour,
        submitted_by=user,
        submitted_at=timezone.now(),
        event_count=len(received.events),
        document=received.document,
    )
    language = translation.get_language() or settings.LANGUAGE_CODE
    transaction.on_commit(lambda: _enqueue(job.pk, language))
    return job


def _enqueue(capture_id: Any, language: str) -> None:
    from nethospital.traceability.tasks import capture_epcis_document

    capture_epcis_document.enqueue(str(capture_id), language)


def run_capture_job(capture_id: str, language: str | None = None) -> dict[str, Any]:
    """Process one capture job (the task's body). Never raises: a job always ends finished."""
    with epcis.cyclic_gc_paused():
        return _run_capture_job(capture_id, language)


def _run_capture_job(capture_id: str, language: str | None) -> dict[str, Any]:
    job = CaptureJob.objects.filter(pk=capture_id).select_related("submitted_by").first()
    if job is None or job.status != CaptureStatus.RUNNING:
        return {"captureID": capture_id, "skipped": True}
    with translation.override(language or settings.LANGUAGE_CODE):
        try:
            _process(job)
        except Exception:
            logger.exception("capture job %s failed", capture_id)
            problem = EPCISException(errors.IMPLEMENTATION, 500, "The capture failed; nothing was stored.")
            CaptureJob.objects.filter(pk=job.pk).update(
                status=CaptureStatus.FAILED,
                finished_at=timezone.now(),
                captured_count=0,
                errors=[problem.as_problem()],
                document=None,
            )
    job.refresh_from_db()
    return {"captureID": str(job.pk), "status": job.status, "captured": job.captured_count}


def _process(job: CaptureJob) -> None:
    document = job.document or {}
    received = epcis.ReceivedDocument(document, epcis.event_list(document), document.get("@context"))
    prepared, failures = epcis.prepare_events(received)
    problems = [failure.as_problem() for failure in failures]
    if failures and job.error_behaviour == ROLLBACK:
        with transaction.atomic():
            _finish(job, CaptureStatus.FAILED, problems, stored=0, duplicates=0)
        return
    for attempt in range(3):
        try:
            with transaction.atomic():
                result = epcis.store_events(prepared, capture_job=job)
                status = CaptureStatus.PARTIAL if failures else CaptureStatus.SUCCESS
                _finish(job, status, problems, stored=result.stored_count, duplicates=len(result.duplicates))
            return
        except IntegrityError:
            # Another capture stored one of these eventIDs between our check and our insert:
            # try again, it is a duplicate now.
            if attempt == 2:
                raise


def _finish(job: CaptureJob, status: str, problems: list[dict[str, Any]], *, stored: int, duplicates: int) -> None:
    job.status = status
    job.finished_at = timezone.now()
    job.captured_count = stored
    job.errors = problems
    job.document = None  # processed: the events are stored as received
    job.save(update_fields=["status", "finished_at", "captured_count", "errors", "document"])
    audit.record(
        job.submitted_by,
        "epcis.capture",
        job,
        outcome=AuditOutcome.SUCCESS if status != CaptureStatus.FAILED else AuditOutcome.FAILED,
        detail={
            "events": job.event_count,
            "stored": stored,
            "duplicates": duplicates,
            "errors": len(problems),
            "errorBehaviour": job.error_behaviour,
        },
    )


def job_status(job: CaptureJob) -> dict[str, Any]:
    """A capture job in the shape of the REST bindings' ``CaptureJob``."""
    return {
        "captureID": str(job.pk),
        "createdAt": job.submitted_at.isoformat(),
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
        "running": job.status == CaptureStatus.RUNNING,
        "success": job.status in (CaptureStatus.RUNNING, CaptureStatus.SUCCESS) and not job.errors,
        "captureErrorBehaviour": job.error_behaviour,
        "errors": list(job.errors or []),
        # Ours, beyond the bindings:
        "eventCount": job.event_count,
        "capturedCount": job.captured_count,
    }


def access_capture_job(user: Any, capture_id: str) -> CaptureJob:
    """The job if ``user`` submitted it (a regulator or platform admin sees all), else 404."""
    require_query(user)
    job = CaptureJob.objects.filter(pk=capture_id).first() if _is_uuid(capture_id) else None
    if job is None or not (
        job.submitted_by_id == user.pk or user.has_role(Role.REGULATOR) or user.has_role(Role.PLATFORM_ADMIN)
    ):
        raise EPCISException(errors.NO_SUCH_RESOURCE, 404, errors.NO_SUCH_CAPTURE % {"capture_id": capture_id[:60]})
    return job


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- One event (POST /epcis/events) ---------------------------------------------------------------


@dataclass(frozen=True)
class CapturedEvent:
    event: EPCISEvent
    created: bool


def capture_single_event(user: Any, event: Any) -> CapturedEvent:
    """Capture one event synchronously; 409 if its eventID (given or hash) is already stored, unless
    it is an error declaration of that event. Validated against the whole schema (a standalone event
    needs its ``@context``)."""
    require_capture(user)
    if not isinstance(event, dict):
        raise errors.validation_error(errors.NOT_A_DOCUMENT % {"type": type(event).__name__})
    if event.get("type") not in epcis.EVENT_TYPES:
        raise errors.validation_error(errors.UNKNOWN_EVENT_TYPE % {"type": str(event.get("type"))[:60]})
    from jsonschema.exceptions import best_match

    error = best_match(epcis._reference_document_validator().iter_errors(event))
    if error is not None:
        path = "/" + "/".join(str(p) for p in error.absolute_path)
        raise errors.validation_error(errors.SCHEMA_VIOLATION % {"path": path, "message": error.message[:300]})
    prepared = epcis.prepare_event(event, None, epcis.Namespaces.of(event.get("@context")))
    try:
        with transaction.atomic():
            original = EPCISEvent.objects.filter(event_id=prepared.event_id).first()
            if original is not None and not prepared.is_error_declaration:
                raise _already_exists(prepared.event_id)
            result = epcis.store_events([prepared])
            row = result.stored[0] if result.stored else (result.declared[0] if result.declared else original)
            assert row is not None
            audit.record(
                user,
                "epcis.event.capture",
                row,
                detail={"eventID": prepared.event_id[:300], "declaration": prepared.is_error_declaration},
            )
    except IntegrityError as exc:
        raise _already_exists(prepared.event_id) from exc
    return CapturedEvent(row, created=bool(result.stored))


def _already_exists(event_id: str) -> EPCISException:
    return EPCISException(errors.ALREADY_EXISTS, 409, errors.EVENT_EXISTS % {"event_id": event_id[:300]})
