"""Capture jobs processed at the same time, as two ``nethospital worker`` processes do in production
(and the benchmark's worker mode): real threads, each with its own PostgreSQL connection, released
together just before they lock the packs. Documents that name the same packs must not lose an
update (pack rows locked), must not create a pack twice (unique identifier, the job retried), must
store an event named by both only once (hash-ID de-duplication), and the audit chain stays whole.

PostgreSQL only: SQLite serialises every writer, so it would prove nothing."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from nethospital.accounts.choices import Role
from nethospital.core import audit
from nethospital.core.models import AuditEntry
from nethospital.traceability import capture, epcis, state
from nethospital.traceability.choices import CaptureStatus, PackStatus
from nethospital.traceability.models import CaptureJob, EPCISEvent, EventIdentifier, Pack
from nethospital.traceability.tests.trace_helpers import pharmacy, staff

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BARRIER_TIMEOUT = 60  # seconds: a thread that never gets there fails the test, never hangs it
GTIN_URN = "urn:epc:id:sgtin:0614141.107346"
FACTORY = "urn:epc:id:sgln:0614141.07346.0"
DAY = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def box(serial: int) -> str:
    return f"{GTIN_URN}.{serial}"


def object_event(serial: int, at: dt.timedelta, **fields: Any) -> dict[str, Any]:
    """An ObjectEvent for one box, ``at`` after the first day's start."""
    return {
        "type": "ObjectEvent",
        "epcList": [box(serial)],
        "eventTime": (DAY + at).isoformat(),
        "eventTimeZoneOffset": "+08:00",
        **fields,
    }


def commissioning(serial: int, minutes: int) -> dict[str, Any]:
    return object_event(
        serial,
        dt.timedelta(minutes=minutes),
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        bizLocation={"id": FACTORY},
        ilmd={"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2028-11-01"},
    )


def dispensing(serial: int, minutes: int, location: str) -> dict[str, Any]:
    return object_event(
        serial,
        dt.timedelta(hours=5, minutes=minutes),
        action="OBSERVE",
        bizStep="dispensing",
        disposition="dispensed",
        bizLocation={"id": location},
    )


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": [epcis.STANDARD_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": DAY.isoformat(),
        "epcisBody": {"eventList": events},
    }


def run_jobs_together(job_ids: list[str], owner: Any, name: str) -> list[dict[str, Any]]:
    """Each job's task body in a thread of its own, all released together just before each first
    calls ``owner.name`` (a retry after a conflict does not wait again)."""
    barrier = threading.Barrier(len(job_ids))
    waited: set[int] = set()
    original = getattr(owner, name)

    def together(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            barrier.wait(timeout=BARRIER_TIMEOUT)
        return original(*args, **kwargs)

    def work(job_id: str) -> dict[str, Any]:
        try:
            return capture.run_capture_job(job_id)
        finally:
            connection.close()  # each thread has its own connection

    setattr(owner, name, together)
    try:
        with ThreadPoolExecutor(max_workers=len(job_ids)) as pool:
            return list(pool.map(work, job_ids, timeout=BARRIER_TIMEOUT * 3))
    finally:
        setattr(owner, name, original)


def given_boxes_and_pharmacy(count: int) -> tuple[Any, str]:
    org = pharmacy("Concurrent Pharmacy")
    user = staff(Role.PHARMACY_STAFF, org)
    if count:
        capture.submit_capture(user, document([commissioning(serial, 0) for serial in range(1, count + 1)]))
    assert Pack.objects.filter(status=PackStatus.COMMISSIONED).count() == count
    return user, state.location_uri_for(org)


def accepted_not_processed(user: Any, *documents: list[dict[str, Any]]) -> list[str]:
    """Capture jobs as a 202 leaves them with the database task backend: waiting for a worker."""
    with override_settings(TASKS=DATABASE_TASKS):
        jobs = [capture.submit_capture(user, document(events)) for events in documents]
    assert [CaptureJob.objects.get(pk=job.pk).status for job in jobs] == [CaptureStatus.RUNNING] * len(jobs)
    return [str(job.pk) for job in jobs]


def test_two_capture_jobs_locking_the_same_packs_at_once_lose_no_update():
    # Given boxes 1-40 commissioned, and two documents accepted but not processed yet: A dispenses
    # boxes 1-30 and commissions new boxes 41-50; B dispenses boxes 11-40 (later, so boxes 11-30
    # are dispensed twice) and commissions new boxes 51-55.
    user, location = given_boxes_and_pharmacy(40)
    first = [dispensing(serial, 0, location) for serial in range(1, 31)]
    first += [commissioning(serial, 60) for serial in range(41, 51)]
    second = [dispensing(serial, 30, location) for serial in range(11, 41)]
    second += [commissioning(serial, 90) for serial in range(51, 56)]
    jobs = accepted_not_processed(user, first, second)

    # When two workers process them at the same time, released together before they lock packs
    results = run_jobs_together(jobs, state._Batch, "prepare")

    # Then both succeed with all their events
    assert [(result["status"], result["captured"]) for result in results] == [
        (CaptureStatus.SUCCESS, 40),
        (CaptureStatus.SUCCESS, 35),
    ]
    assert EPCISEvent.objects.count() == 40 + 40 + 35
    assert EventIdentifier.objects.count() == 115
    assert not EventIdentifier.objects.exclude(event__in=EPCISEvent.objects.all()).exists()
    # and no job's update of a pack is lost to the other's
    assert Pack.objects.count() == 55
    dispensed = dict(Pack.objects.filter(dispensed_count__gt=0).values_list("identifier", "dispensed_count"))
    assert dispensed == {box(serial): 2 if 11 <= serial <= 30 else 1 for serial in range(1, 41)}
    assert set(Pack.objects.filter(status=PackStatus.DISPENSED).values_list("identifier", flat=True)) == {
        box(serial) for serial in range(1, 41)
    }
    assert set(Pack.objects.filter(commissioned_at__isnull=False).values_list("identifier", flat=True)) == {
        box(serial) for serial in range(1, 56)
    }
    assert not Pack.objects.filter(last_event__isnull=False).exclude(last_event__in=EPCISEvent.objects.all()).exists()
    # and each job is audited once, in an unbroken chain
    assert AuditEntry.objects.filter(action="epcis.capture").count() == 3
    assert audit.verify_chain().is_intact


def test_two_capture_jobs_storing_the_same_events_at_once_store_them_once():
    # Given two documents accepted but not processed yet that share ten events (the same hash IDs)
    user, location = given_boxes_and_pharmacy(30)
    shared = [dispensing(serial, 0, location) for serial in range(1, 11)]
    first = shared + [dispensing(serial, 0, location) for serial in range(11, 21)]
    second = [dispensing(serial, 0, location) for serial in range(21, 31)] + shared
    jobs = accepted_not_processed(user, first, second)

    # When two workers process them at the same time, released together before their duplicate check
    results = run_jobs_together(jobs, epcis, "existing_events")

    # Then both succeed, and each event is stored once: one job stored the shared ones, the other
    # (retried after the unique violation) found them duplicates
    assert [result["status"] for result in results] == [CaptureStatus.SUCCESS] * 2
    assert sum(result["captured"] for result in results) == 30
    assert EPCISEvent.objects.count() == 30 + 30
    assert EventIdentifier.objects.count() == 60
    captures = AuditEntry.objects.filter(action="epcis.capture").order_by("sequence")
    assert sorted(entry.detail["duplicates"] for entry in captures) == [0, 0, 10]
    assert dict(Pack.objects.filter(dispensed_count__gt=0).values_list("identifier", "dispensed_count")) == {
        box(serial): 1 for serial in range(1, 31)
    }
    assert audit.verify_chain().is_intact


def test_two_capture_jobs_creating_the_same_new_packs_at_once_create_each_once():
    # Given two documents accepted but not processed yet that commission boxes 1-20 and 11-30 (at
    # different times: different events), so boxes 11-20 are new to both
    user, _ = given_boxes_and_pharmacy(0)
    first = [commissioning(serial, 0) for serial in range(1, 21)]
    second = [commissioning(serial, 30) for serial in range(11, 31)]
    jobs = accepted_not_processed(user, first, second)

    # When two workers process them at the same time, released together before they lock packs
    results = run_jobs_together(jobs, state._Batch, "prepare")

    # Then both succeed (the second to insert a pack retried after the unique violation), with
    # all their events, and every box has one pack
    assert [(result["status"], result["captured"]) for result in results] == [(CaptureStatus.SUCCESS, 20)] * 2
    assert EPCISEvent.objects.count() == 40
    assert Pack.objects.count() == 30
    assert set(Pack.objects.filter(status=PackStatus.COMMISSIONED).values_list("identifier", flat=True)) == {
        box(serial) for serial in range(1, 31)
    }
    assert AuditEntry.objects.filter(action="epcis.capture").count() == 2
    assert audit.verify_chain().is_intact
