"""EPCIS capture: POST /epcis/capture (jobs, rollback / proceed, limits), POST /epcis/events (201,
409), hash-ID de-duplication, error declarations, validation beyond the schema, who may capture."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.test import Client

from conftest import login
from nethospital.accounts.choices import Role
from nethospital.core.models import AuditEntry
from nethospital.testing import factories
from nethospital.traceability import epcis
from nethospital.traceability.choices import CaptureStatus, EPCRole
from nethospital.traceability.models import CaptureJob, EPCISEvent, EventIdentifier, Pack
from nethospital.traceability.tests.trace_helpers import pharmacy, staff

CONTEXT = [epcis.STANDARD_CONTEXT, {"example": "http://ns.example.com/epcis/"}]
GTIN_URN = "urn:epc:id:sgtin:0614141.107346"


def object_event(serial: str = "2017", **fields: Any) -> dict[str, Any]:
    event = {
        "type": "ObjectEvent",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "epcList": [f"{GTIN_URN}.{serial}"],
        "eventTime": "2026-11-02T09:00:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        "bizLocation": {"id": "urn:epc:id:sgln:0614141.07346.0"},
    }
    event.update(fields)
    return event


def document(*events: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {
        "@context": context if context is not None else CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-02T09:05:00.000+08:00",
        "epcisBody": {"eventList": list(events)},
    }


def post_capture(client: Client, doc: Any, on_commit: Any, *, behaviour: str | None = None, raw: bytes | None = None):
    headers = {"HTTP_GS1_CAPTURE_ERROR_BEHAVIOUR": behaviour} if behaviour else {}
    body = raw if raw is not None else json.dumps(doc)
    with on_commit(execute=True):
        return client.post("/epcis/capture", data=body, content_type="application/ld+json", **headers)


def job_of(client: Client, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.content
    status = client.get(response["Location"])
    assert status.status_code == 200
    return status.json()


def post_event(client: Client, event: dict[str, Any]):
    return client.post("/epcis/events", data=json.dumps(event), content_type="application/json")


@pytest.fixture
def capturer(db: Any) -> Any:
    return staff(Role.PHARMACY_STAFF, pharmacy())


@pytest.fixture
def epcis_client(capturer: Any) -> Client:
    return login(Client(), capturer)


# --- Capture jobs -------------------------------------------------------------------------------------


def test_capture_answers_202_with_the_job_location_and_the_job_in_the_openapi_shape(
    epcis_client, capturer, django_capture_on_commit_callbacks
):
    response = post_capture(
        epcis_client, document(object_event("1"), object_event("2")), django_capture_on_commit_callbacks
    )

    assert response.status_code == 202
    assert response["Location"].startswith("/epcis/capture/")
    job = job_of(epcis_client, response)
    assert set(job) >= {"captureID", "createdAt", "finishedAt", "running", "success", "captureErrorBehaviour", "errors"}
    assert (job["running"], job["success"], job["captureErrorBehaviour"], job["errors"]) == (
        False,
        True,
        "rollback",
        [],
    )
    assert job["capturedCount"] == 2
    assert EPCISEvent.objects.count() == 2
    row = EPCISEvent.objects.get(event_id=epcis.event_hash_id(object_event("1")))
    assert row.biz_step == "https://ref.gs1.org/cbv/BizStep-commissioning"
    assert row.disposition == "https://ref.gs1.org/cbv/Disp-active"
    assert (row.event_timezone_offset, row.action, row.product_code) == ("+08:00", "ADD", "10614141073464")
    assert row.read_point == "urn:epc:id:sgln:0614141.07346.1234"
    assert row.biz_location == "urn:epc:id:sgln:0614141.07346.0"
    assert row.event_time.isoformat() == "2026-11-02T01:00:00+00:00"
    assert CaptureJob.objects.get().document is None  # processed: kept only until then
    entry = AuditEntry.objects.filter(action="epcis.capture").get()
    assert entry.actor_id == capturer.pk and entry.detail["stored"] == 2


def test_capture_derives_pack_state_in_the_same_transaction(epcis_client, django_capture_on_commit_callbacks):
    event = object_event("77", ilmd={"cbvmda:lotNumber": "LOT7", "cbvmda:itemExpirationDate": "2028-06-30"})

    job_of(epcis_client, post_capture(epcis_client, document(event), django_capture_on_commit_callbacks))

    pack = Pack.objects.get(identifier=f"{GTIN_URN}.77")
    assert (pack.status, pack.batch, str(pack.expiry), pack.gtin) == (
        "commissioned",
        "LOT7",
        "2028-06-30",
        "10614141073464",
    )


def test_rollback_with_one_bad_event_stores_nothing_and_reports_that_event(
    epcis_client, django_capture_on_commit_callbacks
):
    bad = object_event("3", bizStep="receivng")  # a typo: neither a CBV word nor a URI

    job = job_of(
        epcis_client,
        post_capture(
            epcis_client, document(object_event("1"), bad, object_event("2")), django_capture_on_commit_callbacks
        ),
    )

    assert (job["running"], job["success"], job["capturedCount"]) == (False, False, 0)
    assert len(job["errors"]) == 1
    error = job["errors"][0]
    assert error["type"] == "epcisException:ValidationException" and error["status"] == 400
    assert error["instance"] == "#/epcisBody/eventList/1" and "receivng" in error["detail"]
    assert EPCISEvent.objects.count() == 0 and EventIdentifier.objects.count() == 0 and Pack.objects.count() == 0


def test_proceed_with_one_bad_event_stores_the_good_ones_and_reports_the_bad(
    epcis_client, django_capture_on_commit_callbacks
):
    bad = object_event("3", bizStep="receivng")

    job = job_of(
        epcis_client,
        post_capture(
            epcis_client,
            document(object_event("1"), bad, object_event("2")),
            django_capture_on_commit_callbacks,
            behaviour="proceed",
        ),
    )

    assert (job["running"], job["success"], job["captureErrorBehaviour"], job["capturedCount"]) == (
        False,
        False,
        "proceed",
        2,
    )
    assert [e["instance"] for e in job["errors"]] == ["#/epcisBody/eventList/1"]
    assert sorted(EventIdentifier.objects.values_list("identifier", flat=True)) == [f"{GTIN_URN}.1", f"{GTIN_URN}.2"]
    assert CaptureJob.objects.get().status == CaptureStatus.PARTIAL


def test_an_unknown_error_behaviour_is_refused(epcis_client, django_capture_on_commit_callbacks):
    response = post_capture(
        epcis_client, document(object_event()), django_capture_on_commit_callbacks, behaviour="maybe"
    )

    assert response.status_code == 400
    assert response.json()["type"] == "epcisException:ValidationException"
    assert CaptureJob.objects.count() == 0


def test_the_same_event_without_an_event_id_sent_twice_is_stored_once(epcis_client, django_capture_on_commit_callbacks):
    event = object_event("5")
    assert "eventID" not in event

    first = job_of(epcis_client, post_capture(epcis_client, document(event), django_capture_on_commit_callbacks))
    reordered = dict(reversed(list(copy.deepcopy(event).items())))  # same event, members in another order
    second = job_of(epcis_client, post_capture(epcis_client, document(reordered), django_capture_on_commit_callbacks))

    assert (first["success"], first["capturedCount"]) == (True, 1)
    assert (second["success"], second["capturedCount"], second["errors"]) == (True, 0, [])
    row = EPCISEvent.objects.get()
    assert row.event_id == epcis.event_hash_id(event)
    assert row.event_id.startswith("ni:///sha-256;") and row.event_id.endswith("?ver=CBV2.0")


def test_bad_json_is_refused_at_once_and_nothing_is_stored(epcis_client, django_capture_on_commit_callbacks):
    response = post_capture(epcis_client, None, django_capture_on_commit_callbacks, raw=b'{"type": "EPCISDocument",')

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "epcisException:ValidationException" and body["title"] and body["status"] == 400
    assert CaptureJob.objects.count() == 0 and EPCISEvent.objects.count() == 0


def test_something_that_is_not_an_epcis_document_is_refused(epcis_client, django_capture_on_commit_callbacks):
    response = post_capture(epcis_client, object_event(), django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert "EPCISDocument" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "detail_fragment"),
    [
        ({"type": "TeleportationEvent"}, "TeleportationEvent"),
        ({"epcList": ["urn:epc:id:sgtin:0614141.10734.2017"]}, "13 digits"),
        ({"epcList": ["https://id.gs1.org/01/10614141073465/21/2017"]}, "check digit"),
        ({"eventTime": "2026-02-30T09:00:00+08:00"}, "eventTime"),
        ({"eventTime": "2026-11-02T09:00:00"}, "eventTime"),
        ({"ilmd": {"cbvmda:itemExpirationDate": "2026-13-01"}}, "itemExpirationDate"),
        ({"disposition": "sellable"}, "sellable"),
        # The value, not the words: the test runs in the default language (zh-hans), and the
        # message has had a Chinese translation since the zh-Hans catalogue was completed.
        (
            {"bizStep": "https://ref.gs1.org/cbv/BizStep-teleporting"},
            "bizStep https://ref.gs1.org/cbv/BizStep-teleporting",
        ),
        ({"bizStep": "acme:teleporting"}, "acme:teleporting"),
        ({"myField": "no namespace"}, "myField"),
        ({"undeclared:myField": "prefix not in @context"}, "undeclared:myField"),
        ({"ilmd": {"lotNumber": "L1"}}, "ilmd/lotNumber"),
        ({"readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234", "floor": 3}}, "readPoint/floor"),
        ({"action": "TELEPORT"}, "/action"),
    ],
)
def test_invalid_events_are_refused_in_the_exception_format_and_nothing_is_stored(
    epcis_client, django_capture_on_commit_callbacks, change, detail_fragment
):
    job = job_of(
        epcis_client,
        post_capture(
            epcis_client, document(object_event("1"), object_event("9", **change)), django_capture_on_commit_callbacks
        ),
    )

    assert job["success"] is False and job["capturedCount"] == 0
    (error,) = job["errors"]
    assert error["type"] == "epcisException:ValidationException"
    assert error["instance"] == "#/epcisBody/eventList/1"
    assert detail_fragment in error["detail"]
    assert EPCISEvent.objects.count() == 0


def test_namespaced_extensions_cbv_uris_and_declared_curies_are_accepted(
    epcis_client, django_capture_on_commit_callbacks
):
    event = object_event(
        "8",
        bizStep="https://ref.gs1.org/cbv/BizStep-commissioning",
        disposition="example:custom_disposition",
        **{"example:myField": {"example:inner": "x"}, "https://example.org/ext": 1},
        ilmd={"cbvmda:lotNumber": "L8", "example:grade": "A"},
    )

    job = job_of(epcis_client, post_capture(epcis_client, document(event), django_capture_on_commit_callbacks))

    assert job["success"] is True, job["errors"]
    row = EPCISEvent.objects.get()
    assert row.disposition == "http://ns.example.com/epcis/custom_disposition"
    # Stored as received, with the document's @context attached so that its CURIEs keep their meaning.
    assert row.document == {"@context": CONTEXT, **event}


def test_limits_are_advertised_by_options(epcis_client, settings):
    settings.NETHOSPITAL_EPCIS_CAPTURE_LIMIT = 3
    settings.NETHOSPITAL_EPCIS_CAPTURE_FILE_SIZE_LIMIT = 4096

    response = epcis_client.options("/epcis/capture")

    assert response.status_code == 204
    assert response["GS1-EPCIS-Capture-Limit"] == "3"
    assert response["GS1-EPCIS-Capture-File-Size-Limit"] == "4096"
    assert response["GS1-Capture-Error-Behaviour"] == "all"
    assert "POST" in response["Allow"]


def test_more_events_than_the_limit_is_413_and_nothing_is_stored(
    epcis_client, settings, django_capture_on_commit_callbacks
):
    settings.NETHOSPITAL_EPCIS_CAPTURE_LIMIT = 3

    response = post_capture(
        epcis_client, document(*(object_event(str(i)) for i in range(4))), django_capture_on_commit_callbacks
    )

    assert response.status_code == 413
    body = response.json()
    assert (body["type"], body["status"]) == ("epcisException:CaptureLimitExceededException", 413)
    assert response["GS1-EPCIS-Capture-Limit"] == "3"
    assert CaptureJob.objects.count() == 0 and EPCISEvent.objects.count() == 0


def test_a_document_over_the_file_size_limit_is_413(epcis_client, settings, django_capture_on_commit_callbacks):
    settings.NETHOSPITAL_EPCIS_CAPTURE_FILE_SIZE_LIMIT = 1000
    doc = document(*(object_event(str(i)) for i in range(5)))
    assert len(json.dumps(doc)) > 1000

    response = post_capture(epcis_client, doc, django_capture_on_commit_callbacks)

    assert response.status_code == 413
    assert response.json()["type"] == "epcisException:CaptureLimitExceededException"
    assert response["GS1-EPCIS-Capture-File-Size-Limit"] == "1000"
    assert CaptureJob.objects.count() == 0


def test_a_body_that_is_not_json_is_415(epcis_client):
    response = epcis_client.post("/epcis/capture", data={"a": "b"})  # a form, as a cross-site page could send

    assert response.status_code == 415
    assert CaptureJob.objects.count() == 0


# --- One event ----------------------------------------------------------------------------------------


def test_post_event_answers_201_with_location_and_409_for_an_existing_event_id(epcis_client):
    event = {"@context": CONTEXT, "eventID": "urn:uuid:6a7e0c1e-6f1d-4a59-9d55-3b1c2e9b7c10", **object_event("11")}

    created = post_event(epcis_client, event)
    again = post_event(epcis_client, event)

    assert created.status_code == 201
    assert created["Location"] == "/epcis/events/urn%3Auuid%3A6a7e0c1e-6f1d-4a59-9d55-3b1c2e9b7c10"
    assert created.json()["eventID"] == event["eventID"]
    assert again.status_code == 409
    assert again.json()["type"] == "epcisException:ResourceAlreadyExistsException"
    assert EPCISEvent.objects.count() == 1
    assert (
        epcis_client.get(created["Location"]).json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0][
            "eventID"
        ]
        == event["eventID"]
    )


def test_post_event_without_id_twice_is_409_the_second_time(epcis_client):
    event = {"@context": CONTEXT, **object_event("12")}

    assert post_event(epcis_client, event).status_code == 201
    response = post_event(epcis_client, event)

    assert response.status_code == 409
    assert EPCISEvent.objects.get().event_id == epcis.event_hash_id(event)


def test_post_event_with_a_bad_gtin_is_400_and_stores_nothing(epcis_client):
    event = {"@context": CONTEXT, **object_event(epcList=["https://id.gs1.org/01/10614141073465/21/1"])}

    response = post_event(epcis_client, event)

    assert response.status_code == 400
    assert response.json()["type"] == "epcisException:ValidationException"
    assert EPCISEvent.objects.count() == 0


def test_post_event_without_context_is_refused_by_the_schema(epcis_client):
    response = post_event(epcis_client, object_event("13"))

    assert response.status_code == 400
    assert "@context" in response.json()["detail"]


# --- Error declarations -------------------------------------------------------------------------------


def test_an_error_declaration_marks_the_original_kept_and_links_the_corrective_event(
    epcis_client, django_capture_on_commit_callbacks
):
    original = object_event("21", action="OBSERVE", bizStep="shipping", disposition="in_transit")
    job_of(epcis_client, post_capture(epcis_client, document(original), django_capture_on_commit_callbacks))
    original_id = epcis.event_hash_id(original)
    corrective = object_event("21", action="OBSERVE", bizStep="receiving", disposition="in_progress")
    declaration = {
        **original,
        "errorDeclaration": {
            "declarationTime": "2026-11-03T10:00:00+08:00",
            "reason": "incorrect_data",
            "correctiveEventIDs": [epcis.event_hash_id(corrective)],
        },
    }

    job = job_of(
        epcis_client, post_capture(epcis_client, document(declaration, corrective), django_capture_on_commit_callbacks)
    )

    assert job["success"] is True, job["errors"]
    row = EPCISEvent.objects.get(event_id=original_id)  # the declaration carries the original's hash ID
    assert row.declared_erroneous_at is not None
    assert row.declaration_reason == "https://ref.gs1.org/cbv/ER-incorrect_data"
    assert row.corrective_event_ids == [epcis.event_hash_id(corrective)]
    assert row.document == {"@context": CONTEXT, **original}  # kept as received
    assert EPCISEvent.objects.count() == 2  # the original and the corrective event, no third row


# --- Who may capture ------------------------------------------------------------------------------------


def test_anonymous_capture_is_401(client, db):
    response = client.post("/epcis/capture", data=json.dumps(document(object_event())), content_type="application/json")

    assert response.status_code == 401
    assert response.json()["type"] == "epcisException:SecurityException"


@pytest.mark.parametrize("role", [Role.PATIENT, Role.REGULATOR])
def test_roles_outside_the_supply_chain_cannot_capture(db, role, django_capture_on_commit_callbacks):
    user = factories.patient_user() if role == Role.PATIENT else staff(role)
    client = login(Client(), user, mfa=True)

    response = post_capture(client, document(object_event()), django_capture_on_commit_callbacks)

    assert response.status_code == 403
    assert response.json()["type"] == "epcisException:SecurityException"
    assert CaptureJob.objects.count() == 0


def test_a_pharmacist_without_a_second_factor_in_the_session_is_refused(db, django_capture_on_commit_callbacks):
    pharmacist = staff(Role.PHARMACIST, pharmacy())
    without = login(Client(), pharmacist)
    with_mfa = login(Client(), pharmacist, mfa=True)

    refused = post_capture(without, document(object_event("31")), django_capture_on_commit_callbacks)
    accepted = post_capture(with_mfa, document(object_event("31")), django_capture_on_commit_callbacks)

    assert refused.status_code == 403
    assert accepted.status_code == 202


def test_identifiers_are_indexed_with_roles_and_digital_links_as_urns(epcis_client, django_capture_on_commit_callbacks):
    aggregation = {
        "type": "AggregationEvent",
        "action": "ADD",
        "bizStep": "packing",
        "disposition": "container_closed",
        "eventTime": "2026-11-02T10:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "parentID": "https://id.gs1.org/00/106141412345678908",
        "childEPCs": ["https://example.com/anything/01/10614141073464/21/41", f"{GTIN_URN}.42"],
        "childQuantityList": [{"epcClass": "urn:epc:class:lgtin:0614141.107346.LOT1", "quantity": 2}],
    }

    job_of(epcis_client, post_capture(epcis_client, document(aggregation), django_capture_on_commit_callbacks))

    rows = sorted(EventIdentifier.objects.values_list("role", "identifier", "gtin"))
    assert rows == [
        (EPCRole.CHILD, f"{GTIN_URN}.41", "10614141073464"),
        (EPCRole.CHILD, f"{GTIN_URN}.42", "10614141073464"),
        (EPCRole.PARENT, "urn:epc:id:sscc:0614141.1234567890", ""),
        (EPCRole.QUANTITY, "urn:epc:class:lgtin:0614141.107346.LOT1", "10614141073464"),
    ]
    assert EPCISEvent.objects.get().product_code == "10614141073464"


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_copied_event_id_stored_twice_is_an_integrity_error_as_with_an_insert():
    """On PostgreSQL events, identifiers and packs are written with COPY; a unique violation there
    must still be Django's IntegrityError, which the capture job retries on (its events are then
    duplicates) and ``POST /epcis/events`` answers with 409."""
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    prepared = epcis.prepare_event(object_event("77"), 0, epcis.Namespaces.of(None))
    epcis.store_events([prepared])
    with pytest.raises(IntegrityError), transaction.atomic():
        epcis._copy_rows([(epcis._row(prepared, timezone.now(), None), prepared)])
    assert EPCISEvent.objects.filter(event_id=prepared.event_id).count() == 1
    assert Pack.objects.filter(identifier=f"{GTIN_URN}.77").count() == 1


def test_the_garbage_collector_paused_for_a_document_is_enabled_again_even_on_error():
    import gc

    assert gc.isenabled()
    with pytest.raises(RuntimeError), epcis.cyclic_gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("the job failed")
    assert gc.isenabled()
    gc.disable()  # paused by someone else (another thread's job): left as it was
    try:
        with epcis.cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
