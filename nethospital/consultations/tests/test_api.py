"""The consultations JSON API: opening three ways with the declaration (R1, R2), reading (audited)
and the chat (idempotent by client id), files checked by content, the doctor's steps (R6), the
record and its corrections (R21), reviews and moderation, the ICD-10 search. Refusals are
structured 4xx bodies and change nothing; huge or malformed input is refused, never a 500."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from nethospital.consultations import actions
from nethospital.consultations.choices import VisitType
from nethospital.consultations.models import Attachment, Consultation, Message, Review, VisitRecord
from nethospital.consultations.tests import test_views as view_tests
from nethospital.consultations.tests.test_views import EXE_BYTES, FIRST_VISIT, FOLLOW_UP, PDF_BYTES, RECORD, snapshot
from nethospital.core import clock
from nethospital.core.models import AuditEntry
from nethospital.directory.models import Practitioner
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
world = view_tests.world  # the fixtures of the page tests
video_appointment = view_tests.video_appointment
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(NOON, all_threads=True):
        yield


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def post(client: Client, path: str, body: dict | None = None):
    return client.post(path, json.dumps(body or {}), content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")


def declaration(**overrides):
    body = {
        "condition": "高血压复诊",
        "first_visit": False,
        "proof_kind": "other_hospital",
        "proof_hospital": "县人民医院",
        "proof_summary": "原发性高血压",
    }
    body.update(overrides)
    return body


def active(world, declaration_=FOLLOW_UP, channel="text") -> Consultation:
    consultation = actions.join_queue(
        world["user"], world["patient"].pk, world["dept"].pk, declaration_, channel=channel
    )
    actions.pick_next(world["doctor"].user)
    return Consultation.objects.get(pk=consultation.pk)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# --- opening -------------------------------------------------------------------------------------------
def test_joining_the_queue_and_the_follow_up_gate(world, login_as):
    client = login_as(world["user"])
    base = {"patient_id": world["patient"].pk, "department_id": world["dept"].pk}
    no_proof = post(client, "/api/consultations/queue", {**base, **declaration(proof_kind="none")})
    assert no_proof.status_code == 400
    assert error_of(no_proof)["code"] == "proof_required"
    assert "proof_kind" in error_of(no_proof)["fields"]
    assert not Consultation.objects.exists()
    created = post(client, "/api/consultations/queue", {**base, **declaration(), "channel": "video"})
    assert created.status_code == 201
    body = created.json()
    assert (body["kind"], body["status"], body["channel"], body["role"]) == ("queue", "waiting", "video", "patient")
    assert body["queue"] == {"position": 1, "ahead": 0, "estimated_minutes": body["queue"]["estimated_minutes"]}
    assert body["ws_url"] == f"/ws/consultations/{body['id']}/"
    again = post(client, "/api/consultations/queue", {**base, **declaration()})
    assert again.status_code == 409
    assert error_of(again)["code"] == "already_queued"


def test_asking_a_doctor_and_opening_a_booked_appointment(world, video_appointment, login_as):
    client = login_as(world["user"])
    asked = post(
        client,
        "/api/consultations/ask",
        {
            "patient_id": world["patient"].pk,
            "practitioner_id": world["doctor"].pk,
            "question": "需要复查吗？",
            **declaration(first_visit=True, proof_kind="none"),
        },
    )
    assert asked.status_code == 201
    assert (asked.json()["status"], asked.json()["accept_deadline"]) == ("requested", "2026-11-24T04:00:00Z")
    body = {"appointment_id": video_appointment.pk, **declaration()}
    opened = post(client, "/api/consultations/from-appointment", body)
    reopened = post(client, "/api/consultations/from-appointment", body)
    assert (opened.status_code, reopened.status_code) == (201, 200)
    assert opened.json()["id"] == reopened.json()["id"]
    assert opened.json()["channel"] == "video"
    mine = client.get("/api/consultations")
    assert mine.status_code == 200
    assert {c["kind"] for c in mine.json()} == {"ask", "booked"}


def test_a_proof_document_is_checked_by_its_content(world, login_as):
    client = login_as(world["user"])
    exe = client.post(
        "/api/consultations/proof-documents",
        {"patient_id": world["patient"].pk, "file": SimpleUploadedFile("discharge.pdf", EXE_BYTES)},
    )
    assert exe.status_code == 415
    assert error_of(exe)["code"] == "file_type_forbidden"
    stranger = factories.patient_of(factories.patient_user(legal_name="孙丽"))
    refused = client.post(
        "/api/consultations/proof-documents",
        {"patient_id": stranger.pk, "file": SimpleUploadedFile("d.pdf", PDF_BYTES)},
    )
    assert refused.status_code == 403
    assert not Attachment.objects.exists()
    uploaded = client.post(
        "/api/consultations/proof-documents",
        {"patient_id": world["patient"].pk, "file": SimpleUploadedFile("d.pdf", PDF_BYTES)},
    )
    assert uploaded.status_code == 201
    document_id = uploaded.json()["id"]
    created = post(
        client,
        "/api/consultations/queue",
        {
            "patient_id": world["patient"].pk,
            "department_id": world["dept"].pk,
            **declaration(proof_kind="document", proof_attachment_id=document_id),
        },
    )
    assert created.status_code == 201
    assert Attachment.objects.get().consultation_id == created.json()["id"]


# --- reading and chatting -----------------------------------------------------------------------------
def test_detail_messages_and_read_receipts(world, login_as):
    consultation = active(world)
    client = login_as(world["user"])
    detail = client.get(f"/api/consultations/{consultation.pk}")
    assert detail.status_code == 200
    assert (detail.json()["status"], detail.json()["role"]) == ("active", "patient")
    assert AuditEntry.objects.filter(action="consultation.view", actor_id=world["user"].pk).exists()
    url = f"/api/consultations/{consultation.pk}/messages"
    first = post(client, url, {"client_id": "m-1", "body": "医生您好 <script>"})
    resend = post(client, url, {"client_id": "m-1", "body": "医生您好 <script>"})
    assert (first.status_code, resend.status_code) == (201, 200)
    assert first.json()["seq"] == resend.json()["seq"]
    assert Message.objects.filter(client_id="m-1").count() == 1
    doctor = login_as(world["doctor"].user, mfa=True)
    listed = doctor.get(url, {"after": first.json()["seq"] - 1})
    assert [m["body"] for m in listed.json()] == ["医生您好 <script>"]  # stored as text; clients escape
    read = post(doctor, f"/api/consultations/{consultation.pk}/read", {"seq": 10**12})
    assert read.json() == {"seq": consultation.last_seq + 1}
    too_long = post(client, url, {"client_id": "m-2", "body": "x" * 4001})
    assert too_long.status_code == 422
    assert error_of(too_long)["code"] == "invalid_input"
    assert Message.objects.filter(client_id="m-2").count() == 0


def test_attachments_through_the_api(world, login_as):
    consultation = active(world)
    client = login_as(world["user"])
    url = f"/api/consultations/{consultation.pk}/attachments"
    exe = client.post(url, {"client_id": "f-0", "file": SimpleUploadedFile("x.pdf", EXE_BYTES)})
    assert exe.status_code == 415
    assert not Attachment.objects.exists()
    sent = client.post(url, {"client_id": "f-1", "file": SimpleUploadedFile("化验.pdf", PDF_BYTES)})
    assert sent.status_code == 201
    assert sent.json()["attachment"]["content_type"] == "application/pdf"
    again = client.post(url, {"client_id": "f-1", "file": SimpleUploadedFile("化验.pdf", PDF_BYTES)})
    assert again.status_code == 200
    assert Attachment.objects.count() == 1
    no_file = client.post(url, {"client_id": "f-2"})
    assert no_file.status_code == 422
    assert list(error_of(no_file)["fields"]) == ["file"]


# --- the doctor ------------------------------------------------------------------------------------------
def test_the_doctor_picks_confirms_signs_corrects_and_completes(world, login_as):
    queued = actions.join_queue(world["user"], world["patient"].pk, world["dept"].pk, FOLLOW_UP)
    no_mfa = login_as(world["doctor"].user)
    before = snapshot()
    refused = post(no_mfa, "/api/consultations/pick-next")
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "mfa_required"
    assert snapshot() == before
    doctor = login_as(world["doctor"].user, mfa=True)
    picked = post(doctor, "/api/consultations/pick-next")
    assert picked.status_code == 200
    assert (picked.json()["id"], picked.json()["role"]) == (queued.pk, "doctor")
    empty = post(doctor, "/api/consultations/pick-next")
    assert (empty.status_code, error_of(empty)["code"]) == (409, "queue_empty")
    base = f"/api/consultations/{queued.pk}"
    assert post(doctor, f"{base}/complete").status_code == 409
    confirmed = post(doctor, f"{base}/visit-type", {"visit_type": "follow_up"})
    assert (confirmed.status_code, confirmed.json()["may_diagnose"]) == (200, True)
    bad_code = post(doctor, f"{base}/record", {"chief_complaint": "复诊", "diagnosis_codes": ["Q99.9"]})
    assert (bad_code.status_code, error_of(bad_code)["code"]) == (400, "unknown_icd10")
    signed = post(doctor, f"{base}/record", {"chief_complaint": "血压复诊", "diagnosis_codes": ["I10"]})
    assert signed.status_code == 201
    assert [d["code"] for d in signed.json()["diagnoses"]] == ["I10"]
    twice = post(doctor, f"{base}/record", {"chief_complaint": "血压复诊", "diagnosis_codes": ["I10"]})
    assert (twice.status_code, error_of(twice)["code"]) == (409, "record_already_signed")
    record_id = signed.json()["id"]
    no_reason = post(doctor, f"/api/consultations/records/{record_id}/correct", {"chief_complaint": "x"})
    assert no_reason.status_code == 422
    corrected = post(
        doctor,
        f"/api/consultations/records/{record_id}/correct",
        {"chief_complaint": "血压复诊", "diagnosis_codes": ["I10", "E78.5"], "reason": "补充诊断"},
    )
    assert (corrected.status_code, corrected.json()["version"], corrected.json()["replaces_id"]) == (
        201,
        2,
        record_id,
    )
    completed = post(doctor, f"{base}/complete")
    assert completed.json()["status"] == "completed"
    records = login_as(world["user"]).get(f"{base}/record").json()
    assert records["current"]["version"] == 2
    assert [r["version"] for r in records["versions"]] == [2, 1]


def test_an_advice_only_consultation_never_records_a_diagnosis(world, login_as):
    consultation = active(world, FIRST_VISIT)
    doctor = login_as(world["doctor"].user, mfa=True)
    base = f"/api/consultations/{consultation.pk}"
    follow_up = post(doctor, f"{base}/visit-type", {"visit_type": "follow_up"})
    assert (follow_up.status_code, error_of(follow_up)["code"]) == (409, "follow_up_needs_proof")
    refused = post(doctor, f"{base}/record", {"chief_complaint": "胸闷", "diagnosis_codes": ["I20.9"]})
    assert (refused.status_code, error_of(refused)["code"]) == (409, "diagnosis_not_allowed")
    assert "diagnosis_codes" in error_of(refused)["fields"]
    assert not VisitRecord.objects.exists()
    advice = post(doctor, f"{base}/record", {"chief_complaint": "胸闷", "advice": "请到医院面诊"})
    assert (advice.status_code, advice.json()["diagnoses"]) == (201, [])
    assert Consultation.objects.get(pk=consultation.pk).visit_type == VisitType.ADVICE_ONLY


def test_accept_refer_and_cancel(world, login_as):
    asked = actions.ask_doctor(world["user"], world["patient"].pk, world["doctor"].pk, FIRST_VISIT, "您好")
    patient = login_as(world["user"])
    assert post(patient, f"/api/consultations/{asked.pk}/accept").status_code == 403
    doctor = login_as(world["doctor"].user, mfa=True)
    accepted = post(doctor, f"/api/consultations/{asked.pk}/accept")
    assert accepted.json()["status"] == "active"
    assert post(patient, f"/api/consultations/{asked.pk}/cancel").status_code == 409
    assert post(doctor, f"/api/consultations/{asked.pk}/refer", {"reason": ""}).status_code == 400
    referred = post(doctor, f"/api/consultations/{asked.pk}/refer", {"reason": "需面诊"})
    assert (referred.json()["status"], referred.json()["end_reason"]) == ("referred", "需面诊")


def test_reviews_and_moderation(world, login_as):
    consultation = active(world)
    actions.confirm_visit_type(world["doctor"].user, consultation.pk, VisitType.FOLLOW_UP)
    actions.sign_visit_record(world["doctor"].user, consultation.pk, RECORD)
    actions.complete_consultation(world["doctor"].user, consultation.pk)
    client = login_as(world["user"])
    assert post(client, f"/api/consultations/{consultation.pk}/review", {"rating": 0}).status_code == 422
    created = post(client, f"/api/consultations/{consultation.pk}/review", {"rating": 5, "text": "很好"})
    assert (created.status_code, created.json()["status"]) == (201, "pending")
    again = post(client, f"/api/consultations/{consultation.pk}/review", {"rating": 4})
    assert (again.status_code, error_of(again)["code"]) == (409, "review_exists")
    review_id = created.json()["id"]
    assert post(client, f"/api/reviews/{review_id}/moderate", {"publish": True}).status_code == 403
    admin = login_as(world["admin"], mfa=True)
    published = post(admin, f"/api/reviews/{review_id}/moderate", {"publish": True})
    assert published.json()["status"] == "published"
    assert Practitioner.objects.get(pk=world["doctor"].pk).rating_count == 1
    assert Review.objects.get().status == "published"


# --- bad input, outsiders ----------------------------------------------------------------------------------
def test_outsiders_anonymous_and_malformed_input_get_structured_4xx(world, login_as):
    consultation = active(world)
    outsider = login_as(factories.patient_user(legal_name="孙丽"))
    before = snapshot()
    for response in (
        outsider.get(f"/api/consultations/{consultation.pk}"),
        outsider.get(f"/api/consultations/{consultation.pk}/messages"),
        post(outsider, f"/api/consultations/{consultation.pk}/messages", {"client_id": "x", "body": "hi"}),
        post(outsider, f"/api/consultations/{consultation.pk}/read", {"seq": 1}),
        outsider.get(f"/api/consultations/{consultation.pk}/record"),
    ):
        assert response.status_code == 404
        assert error_of(response)["code"] == "consultation_not_found"
    assert Client().get("/api/consultations").status_code == 401
    client = login_as(world["user"])
    for path, body in (
        ("/api/consultations/queue", {"patient_id": "abc"}),
        ("/api/consultations/queue", {"patient_id": 2**70, "department_id": 1, **declaration()}),
        ("/api/consultations/queue", {"patient_id": 1, "department_id": 1, **declaration(condition="x" * 5000)}),
        (f"/api/consultations/{consultation.pk}/messages", {"client_id": "", "body": "hi"}),
        (f"/api/consultations/{consultation.pk}/messages", {"client_id": "x" * 65, "body": "hi"}),
        (f"/api/consultations/{consultation.pk}/read", {"seq": -1}),
    ):
        response = post(client, path, body)
        assert response.status_code == 422, (path, body, response.content[:200])
        assert error_of(response)["code"] == "invalid_input"
    not_json = client.post("/api/consultations/queue", "{not json", content_type="application/json")
    assert not_json.status_code in (400, 422)
    huge_id = client.get(f"/api/consultations/{2**70}")
    assert huge_id.status_code == 422
    missing = client.get("/api/consultations/999999999")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "consultation_not_found")
    assert snapshot() == before


def test_icd_search(world, login_as):
    client = login_as(world["doctor"].user, mfa=True)
    found = client.get("/api/consultations/icd10", {"q": "高血压"}).json()
    assert {
        "code": "I10",
        "name_en": "Essential (primary) hypertension",
        "name_zh": "原发性高血压",
        "is_chronic": True,
    } in found
    assert client.get("/api/consultations/icd10", {"q": "x" * 51}).status_code == 422
    assert client.get("/api/consultations/icd10", {"limit": 1000}).status_code == 422
    assert Client().get("/api/consultations/icd10").status_code == 401
