"""Background work of traceability, run by ``nethospital worker`` (database backend) or at once in
the enqueuing process (immediate backend: the embedded server and the tests)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from nethospital.traceability import capture


@task()
def capture_epcis_document(capture_id: str, language: str = "") -> dict[str, Any]:
    """Process one EPCIS capture job (``POST /epcis/capture`` answered 202 with its Location)."""
    return capture.run_capture_job(capture_id, language or None)
