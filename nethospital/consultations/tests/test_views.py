"""Consultation pages through Django's test client: each page for each role (anonymous included),
starting a consultation three ways with the declaration of the follow-up gate (R1, R2, R3), the
waiting page and the room's DOM contract for the scripts, the doctor's decisions and the visit
record form (errors per field, no diagnosis in an advice-only consultation), files (outsiders
refused, served as downloads with nosniff, an executable renamed .pdf refused), the workbench
(R6), reviews and their moderation. Every refusal changes nothing."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Role, Sex
from nethospital.accounts.identity import make_number
from nethospital.accounts.models import FamilyLink, User
from nethospital.consultations import actions, attachments, errors
from nethospital.consultations.actions import Declaration, RecordInput
from nethospital.consultations.choices import ConsultationStatus, ProofKind, ReviewStatus, VisitType
from nethospital.consultations.models import (
    Attachment,
    Consultation,
    Message,
    Participant,
    Review,
    VisitRecord,
)
from nethospital.core import clock
from nethospital.core.models import AuditEntry
from nethospital.directory.models import Practitioner
from nethospital.scheduling import actions as scheduling_actions
from nethospital.scheduling.models import Slot
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)  # a Monday
PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200

FIRST_VISIT = Declaration(condition="胸闷 chest tightness", first_visit=True)
FOLLOW_UP = Declaration(
    condition="高血压复诊 hypertension follow-up",
    first_visit=False,
    proof_kind=ProofKind.OTHER_HOSPITAL,
    proof_hospital="县人民医院",
    proof_summary="2025-03 诊断原发性高血压 I10",
)
RECORD = RecordInput(
    chief_complaint="血压控制复诊",
    present_illness="服药后血压 130/85",
    advice="继续服药",
    diagnosis_codes=["I10"],
)


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(NOON, all_threads=True):
        yield


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def world(city_hospital, internet_hospital):
    admin = factories.hospital_admin(city_hospital)
    doctor = factories.doctor(city_hospital, admin=admin, legal_name="王心")
    doctor.user.is_mfa_verified = True  # for the actions the tests call directly
    patient_user = factories.patient_user()
    patient = factories.patient_of(patient_user)
    return {
        "hospital": city_hospital,
        "admin": admin,
        "doctor": doctor,
        "user": patient_user,
        "patient": patient,
        "dept": doctor.department,
    }


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def in_english(message) -> str:
    with translation.override("en"):
        return str(message)


def active_consultation(world, declaration=FOLLOW_UP, channel="text") -> Consultation:
    consultation = actions.join_queue(
        world["user"], world["patient"].pk, world["dept"].pk, declaration, channel=channel
    )
    picked = actions.pick_next(world["doctor"].user)
    assert picked.pk == consultation.pk
    return Consultation.objects.get(pk=consultation.pk)


def completed_consultation(world) -> Consultation:
    consultation = active_consultation(world)
    doctor_user = world["doctor"].user
    actions.confirm_visit_type(doctor_user, consultation.pk, VisitType.FOLLOW_UP)
    actions.sign_visit_record(doctor_user, consultation.pk, RECORD)
    actions.complete_consultation(doctor_user, consultation.pk)
    return Consultation.objects.get(pk=consultation.pk)


def snapshot() -> list:
    """Everything a request could change, except the audit trail (reads and refusals are audited)."""
    return [
        list(Consultation.objects.order_by("pk").values_list("pk", "status", "visit_type", "practitioner_id")),
        list(Message.objects.order_by("pk").values_list("pk", "seq")),
        list(VisitRecord.objects.order_by("pk").values_list("pk", "is_current")),
        list(Attachment.objects.order_by("pk").values_list("pk")),
        list(Participant.objects.order_by("pk").values_list("pk", "last_read_seq")),
        list(Review.objects.order_by("pk").values_list("pk", "status")),
    ]


# --- every page, every role --------------------------------------------------------------------------
ROLES = ("anonymous", "patient", "doctor", "doctor_no_mfa", "other_patient", "admin")
EXPECTED = {
    # page: statuses for ROLES
    "mine": (302, 200, 200, 200, 200, 200),
    "queue": (302, 200, 200, 200, 200, 200),
    "ask": (302, 200, 200, 200, 200, 200),
    "room": (302, 200, 200, 403, 404, 404),
    "waiting": (302, 200, 302, 403, 404, 404),  # picked up: the patient sees a link, the doctor goes to the room
    "record": (302, 200, 200, 403, 404, 404),
    "record_pdf": (302, 200, 200, 403, 404, 404),
    "file": (302, 200, 200, 403, 404, 404),
    "workbench": (302, 403, 200, 403, 403, 403),
    "workbench_panel": (401, 403, 200, 403, 403, 403),
    "reviews": (302, 403, 403, 403, 403, 200),
    "icd": (302, 200, 200, 200, 200, 200),
}


@pytest.fixture
def pages(world):
    consultation = active_consultation(world)
    pdf = attachments.upload_attachment(
        world["user"], io.BytesIO(PDF_BYTES), "report.pdf", consultation_id=consultation.pk
    )
    actions.post_message(world["user"], consultation.pk, "with-file", "", attachment_id=pdf.pk)
    actions.confirm_visit_type(world["doctor"].user, consultation.pk, VisitType.FOLLOW_UP)
    actions.sign_visit_record(world["doctor"].user, consultation.pk, RECORD)
    return {
        "mine": "/consultations/",
        "queue": "/consultations/queue/",
        "ask": f"/consultations/ask/{world['doctor'].pk}/",
        "room": f"/consultations/{consultation.pk}/",
        "waiting": f"/consultations/{consultation.pk}/waiting/",
        "record": f"/consultations/{consultation.pk}/record/",
        "record_pdf": f"/consultations/{consultation.pk}/record.pdf",
        "file": f"/consultations/{consultation.pk}/files/{pdf.pk}/",
        "workbench": "/doctor/workbench/",
        "workbench_panel": "/doctor/workbench/panel/",
        "reviews": "/hospital-admin/reviews/",
        "icd": "/consultations/icd10/?q=I1",
    }


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_every_page_answers_each_role_with_the_expected_status(page, world, pages, login_as):
    clients = {
        "anonymous": Client(),
        "patient": login_as(world["user"]),
        "doctor": login_as(world["doctor"].user, mfa=True),
        "doctor_no_mfa": login_as(world["doctor"].user),
        "other_patient": login_as(factories.patient_user(legal_name="孙丽")),
        "admin": login_as(world["admin"], mfa=True),
    }
    before = snapshot()
    statuses = tuple(clients[role].get(pages[page]).status_code for role in ROLES)
    assert statuses == EXPECTED[page]
    assert snapshot() == before
    anonymous = Client().get(pages[page])
    if anonymous.status_code == 302:
        assert anonymous["Location"].startswith("/accounts/login/?next=")


def test_a_doctor_without_mfa_gets_the_mfa_page_and_no_patient_data(world, login_as):
    consultation = active_consultation(world)
    client = english(login_as(world["doctor"].user))
    for path in (f"/consultations/{consultation.pk}/", "/doctor/workbench/"):
        response = client.get(path)
        assert response.status_code == 403
        page = response.content.decode()
        assert 'data-code="mfa_required"' in page
        assert world["patient"].legal_name not in page
        assert "hypertension" not in page
    assert AuditEntry.objects.filter(action="consultation.view", outcome="denied").exists()


def test_reading_the_room_is_audited(world, login_as):
    consultation = active_consultation(world)
    login_as(world["user"]).get(f"/consultations/{consultation.pk}/")
    entry = AuditEntry.objects.filter(action="consultation.view", object_id=str(consultation.pk)).last()
    assert entry is not None
    assert (entry.actor_id, entry.patient_id, entry.outcome) == (world["user"].pk, world["patient"].pk, "success")


# --- starting: the department queue ------------------------------------------------------------------
def queue_post(world, **overrides):
    data = {
        "patient": world["patient"].pk,
        "department": world["dept"].pk,
        "channel": "text",
        "condition": "胸闷 chest tightness",
        "first_visit": "yes",
    }
    data.update(overrides)
    return data


def test_joining_the_queue_leads_to_the_waiting_page_with_the_live_position(world, login_as):
    client = english(login_as(world["user"]))
    form = client.get("/consultations/queue/")
    assert form.status_code == 200
    page = text_of(form)
    assert f'<option value="{world["dept"].pk}"' in page
    assert "A first visit gets advice only: no diagnosis and no prescription online (R1, R2)." in page
    response = client.post("/consultations/queue/", queue_post(world))
    consultation = Consultation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/consultations/{consultation.pk}/waiting/"
    assert (consultation.kind, consultation.status, consultation.declared_first_visit) == ("queue", "waiting", True)
    waiting = client.get(response["Location"])
    body = waiting.content.decode()
    assert waiting.status_code == 200
    assert f'data-ws-url="/ws/queue/{consultation.pk}/"' in body
    assert f'data-room-url="/consultations/{consultation.pk}/"' in body
    assert re.search(r'<span id="queue-position"[^>]*>1</span>', body)
    assert re.search(r'<span id="queue-wait">about \d+ minutes</span>', body)
    assert "nethospital/js/queue.js" in body


def test_a_follow_up_without_proof_is_refused_at_the_proof_field(world, login_as):
    client = english(login_as(world["user"]))
    response = client.post("/consultations/queue/", queue_post(world, first_visit="no"))
    assert response.status_code == 400
    assert in_english(errors.PROOF_REQUIRED.message) in text_of(response)
    assert 'id="id_proof_kind_errors"' in response.content.decode()
    half = client.post(
        "/consultations/queue/", queue_post(world, first_visit="no", proof_kind=ProofKind.OTHER_HOSPITAL)
    )
    assert half.status_code == 400
    assert in_english(errors.PROOF_HOSPITAL_REQUIRED.message) in text_of(half)
    assert 'id="id_proof_hospital_errors"' in half.content.decode()
    assert not Consultation.objects.exists()


def test_a_follow_up_with_another_hospitals_diagnosis_is_accepted(world, login_as):
    client = login_as(world["user"])
    response = client.post(
        "/consultations/queue/",
        queue_post(
            world,
            first_visit="no",
            proof_kind=ProofKind.OTHER_HOSPITAL,
            proof_hospital="县人民医院",
            proof_summary="原发性高血压",
            channel="video",
        ),
    )
    assert response.status_code == 302
    consultation = Consultation.objects.get()
    assert (consultation.proof_kind, consultation.proof_hospital, consultation.channel) == (
        "other_hospital",
        "县人民医院",
        "video",
    )


def test_a_proof_document_is_uploaded_and_an_executable_renamed_pdf_is_refused(world, login_as):
    client = english(login_as(world["user"]))
    exe = SimpleUploadedFile("discharge.pdf", EXE_BYTES, content_type="application/pdf")
    refused = client.post(
        "/consultations/queue/",
        {**queue_post(world, first_visit="no", proof_kind=ProofKind.DOCUMENT), "proof_file": exe},
    )
    assert refused.status_code == 415
    assert in_english(errors.FILE_TYPE_FORBIDDEN.message) in text_of(refused)
    assert 'id="id_proof_file_errors"' in refused.content.decode()
    assert not Consultation.objects.exists()
    assert not Attachment.objects.exists()
    missing = client.post("/consultations/queue/", queue_post(world, first_visit="no", proof_kind=ProofKind.DOCUMENT))
    assert missing.status_code == 422
    assert "Choose the document to upload." in text_of(missing)
    pdf = SimpleUploadedFile("discharge.pdf", PDF_BYTES, content_type="application/pdf")
    accepted = client.post(
        "/consultations/queue/",
        {**queue_post(world, first_visit="no", proof_kind=ProofKind.DOCUMENT), "proof_file": pdf},
    )
    assert accepted.status_code == 302
    consultation = Consultation.objects.get()
    attachment = Attachment.objects.get()
    assert (consultation.proof_attachment_id, attachment.consultation_id) == (attachment.pk, consultation.pk)
    assert attachment.content_type == "application/pdf"


def test_the_proof_may_be_an_earlier_visit_record_of_the_patient(world, login_as):
    earlier = completed_consultation(world)
    record = VisitRecord.objects.get(consultation=earlier)
    client = login_as(world["user"])
    form = client.get("/consultations/queue/").content.decode()
    assert f'<option value="{record.pk}"' in form
    response = client.post(
        "/consultations/queue/",
        queue_post(world, first_visit="no", proof_kind=ProofKind.RECORD_IN_SYSTEM, proof_record=record.pk),
    )
    assert response.status_code == 302
    assert Consultation.objects.exclude(pk=earlier.pk).get().proof_record_id == record.pk


@pytest.fixture
def child(world):
    birth = dt.date(2023, 5, 1)
    link = account_actions.add_family_member(
        world["user"],
        legal_name="张小宝",
        id_number=make_number("110101", birth, 8, Sex.FEMALE),
        birth_date=birth,
        sex=Sex.FEMALE,
        relationship=Relationship.CHILD,
    )
    return link.patient


def test_a_family_member_is_chosen_and_a_young_child_needs_the_guardian(world, child, login_as):
    client = english(login_as(world["user"]))
    page = text_of(client.get("/consultations/queue/"))
    assert f'<option value="{child.pk}">张小宝</option>' in page
    assert "A child under 6 is seen online only with a guardian present" in page
    FamilyLink.objects.filter(patient=child).update(is_guardian=False)
    refused = client.post("/consultations/queue/", queue_post(world, patient=child.pk))
    assert refused.status_code == 409
    assert in_english(errors.GUARDIAN_REQUIRED.message) in text_of(refused)
    assert not Consultation.objects.exists()
    FamilyLink.objects.filter(patient=child).update(is_guardian=True)
    accepted = client.post("/consultations/queue/", queue_post(world, patient=child.pk))
    assert accepted.status_code == 302
    consultation = Consultation.objects.get()
    assert (consultation.patient_id, consultation.guardian_present) == (child.pk, True)


def test_nobody_starts_a_consultation_for_a_stranger(world, login_as):
    stranger = factories.patient_of(factories.patient_user(legal_name="孙丽"))
    response = english(login_as(world["user"])).post("/consultations/queue/", queue_post(world, patient=stranger.pk))
    assert response.status_code == 422  # not one of the choices of the form
    assert not Consultation.objects.exists()


# --- starting: ask a doctor -----------------------------------------------------------------------------
def test_asking_a_doctor_opens_a_request_once_even_when_posted_twice(world, login_as):
    client = english(login_as(world["user"]))
    form = client.get(f"/consultations/ask/{world['doctor'].pk}/")
    assert form.status_code == 200
    client_id = re.search(r'name="client_id" value="([0-9a-f]{32})"', form.content.decode()).group(1)
    data = {
        "patient": world["patient"].pk,
        "condition": "胸闷",
        "first_visit": "yes",
        "question": "我最近胸闷 <b>需要</b> 检查吗？",
        "client_id": client_id,
    }
    first = client.post(f"/consultations/ask/{world['doctor'].pk}/", data)
    second = client.post(f"/consultations/ask/{world['doctor'].pk}/", data)
    consultation = Consultation.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/consultations/{consultation.pk}/"
    assert (consultation.kind, consultation.status, consultation.practitioner_id) == (
        "ask",
        "requested",
        world["doctor"].pk,
    )
    room = client.get(first["Location"]).content.decode()
    assert "我最近胸闷 &lt;b&gt;需要&lt;/b&gt; 检查吗？" in room  # escaped, never HTML
    assert "<b>需要</b>" not in room
    assert 'id="cancel-consultation"' in room


def test_an_unknown_or_suspended_doctor_cannot_be_asked(world, login_as):
    client = login_as(world["user"])
    assert client.get("/consultations/ask/999999/").status_code == 404
    pending = factories.doctor(world["hospital"], status="pending", legal_name="待审核")
    assert client.get(f"/consultations/ask/{pending.pk}/").status_code == 404


# --- starting: a booked video appointment -------------------------------------------------------------
@pytest.fixture
def video_appointment(world):
    scheduling_actions.create_session(
        world["admin"],
        world["doctor"].pk,
        on_date=dt.date(2026, 11, 25),
        period="morning",
        start_time=dt.time(9, 0),
        end_time=dt.time(9, 30),
        slot_minutes=15,
        capacity=1,
        modality="video",
        fee=100,
    )
    slot = Slot.objects.filter(practitioner=world["doctor"], modality="video").order_by("starts_at").first()
    booking = scheduling_actions.book_appointment(
        world["user"], slot.pk, patient_id=world["patient"].pk, idempotency_key="video-appointment-1"
    )
    return booking.appointment


def test_a_booked_video_appointment_becomes_a_consultation(world, video_appointment, login_as):
    client = english(login_as(world["user"]))
    mine = client.get("/consultations/").content.decode()
    assert f'href="/consultations/from-appointment/{video_appointment.pk}/"' in mine
    form = client.get(f"/consultations/from-appointment/{video_appointment.pk}/")
    assert form.status_code == 200
    response = client.post(
        f"/consultations/from-appointment/{video_appointment.pk}/",
        {"patient": world["patient"].pk, "condition": "高血压复诊", "first_visit": "yes"},
    )
    consultation = Consultation.objects.get()
    assert response["Location"] == f"/consultations/{consultation.pk}/"
    assert (consultation.kind, consultation.channel, consultation.appointment_id) == (
        "booked",
        "video",
        video_appointment.pk,
    )
    # Opening again goes to the same consultation, and the list no longer offers it.
    again = client.get(f"/consultations/from-appointment/{video_appointment.pk}/")
    assert again["Location"] == f"/consultations/{consultation.pk}/"
    assert "from-appointment" not in client.get("/consultations/").content.decode()
    # Another patient cannot open it.
    other = login_as(factories.patient_user(legal_name="孙丽"))
    assert other.get(f"/consultations/from-appointment/{video_appointment.pk}/").status_code == 404


# --- the room -------------------------------------------------------------------------------------------
def test_the_room_follows_the_dom_contract_for_the_chat_and_video_scripts(world, login_as, settings):
    settings.NETHOSPITAL_ICE_SERVERS = [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p'x"}]
    consultation = active_consultation(world, channel="video")
    actions.post_message(world["user"], consultation.pk, "c-1", "<script>alert(1)</script> 血压高")
    client = english(login_as(world["user"]))
    page = client.get(f"/consultations/{consultation.pk}/").content.decode()
    room = re.search(r'<div id="consultation-room"[^>]*>', page, re.S).group(0)
    for attribute in (
        f'data-consultation-id="{consultation.pk}"',
        f'data-user-id="{world["user"].pk}"',
        'data-role="patient"',
        'data-channel="video"',
        f'data-ws-url="/ws/consultations/{consultation.pk}/"',
        f'data-upload-url="/consultations/{consultation.pk}/upload/"',
        'data-text-connecting="Connecting…"',
        'data-text-you="You"',
        'data-text-doctor="Doctor"',
        'data-text-patient="Patient"',
        "data-text-offline=",
        "data-text-connected=",
    ):
        assert attribute in room
    ice = re.search(r"data-ice-servers='([^']*)'", room).group(1)
    assert html.unescape(ice) == '[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p\'x"}]'
    for element in (
        '<div id="connection-state"',
        '<ol id="messages"',
        '<form id="chat-form"',
        '<textarea name="body"',
        '<input type="file" id="chat-file"',
        '<button type="button" id="call-start"',
        '<button type="button" id="call-end"',
        '<span id="call-state"',
        '<video id="local-video" autoplay muted playsinline>',
        '<video id="remote-video" autoplay playsinline>',
        "nethospital/js/consultation.js",
    ):
        assert element in page
    message = re.search(r'<li class="msg patient mine" data-seq="(\d+)" data-client-id="c-1"[^>]*>.*?</li>', page, re.S)
    assert message is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 血压高" in message.group(0)
    assert "<script>alert(1)" not in page
    assert 'data-kind="system"' in page  # "the doctor has joined", server-rendered too


def test_a_text_consultation_has_no_video_controls(world, login_as):
    consultation = active_consultation(world)
    page = login_as(world["user"]).get(f"/consultations/{consultation.pk}/").content.decode()
    assert 'data-channel="text"' in page
    assert 'id="call-start"' not in page
    assert 'id="chat-form"' in page


def test_the_chat_form_works_without_javascript_and_a_double_submit_lands_once(world, login_as):
    consultation = active_consultation(world)
    client = english(login_as(world["user"]))
    for _ in range(2):
        response = client.post(f"/consultations/{consultation.pk}/send/", {"client_id": "form-1", "body": "医生好"})
        assert response.status_code == 302
    assert Message.objects.filter(consultation=consultation, body="医生好").count() == 1
    too_long = client.post(f"/consultations/{consultation.pk}/send/", {"client_id": "form-2", "body": "x" * 4001})
    assert too_long.status_code == 400
    assert "A message may have at most 4000 characters." in text_of(too_long)
    outsider = login_as(factories.patient_user(legal_name="孙丽"))
    before = snapshot()
    assert outsider.post(f"/consultations/{consultation.pk}/send/", {"client_id": "x", "body": "hi"}).status_code == 404
    assert snapshot() == before


def test_the_patient_cancels_while_waiting_and_the_doctor_cannot(world, login_as):
    consultation = actions.ask_doctor(world["user"], world["patient"].pk, world["doctor"].pk, FIRST_VISIT, "您好")
    before = snapshot()
    refused = login_as(world["doctor"].user, mfa=True).post(f"/consultations/{consultation.pk}/cancel/")
    assert refused.status_code == 403
    assert snapshot() == before
    response = login_as(world["user"]).post(f"/consultations/{consultation.pk}/cancel/")
    assert response.status_code == 302
    consultation.refresh_from_db()
    assert consultation.status == ConsultationStatus.CANCELLED


def test_inviting_a_station_operator_and_refusing_a_stranger(world, login_as):
    consultation = active_consultation(world)
    station = factories.directory_actions.create_organization(
        None, kind="service_station", name_zh="青山村服务站", name_en="Qingshan", province="浙江省", city="杭州"
    )
    operator = factories.staff_user(email="operator@example.org")
    platform = User.objects.filter(is_superuser=True).first()
    platform.is_mfa_verified = True
    factories.account_actions.grant_role(platform, operator, Role.STATION_OPERATOR, organization_id=station.pk)
    client = english(login_as(world["user"]))
    stranger = client.post(f"/consultations/{consultation.pk}/invite/", {"email": "nobody@example.org"})
    assert stranger.status_code == 404
    assert "No active account has this e-mail address." in text_of(stranger)
    other = factories.patient_user(email="other@example.org")
    refused = client.post(f"/consultations/{consultation.pk}/invite/", {"email": other.email})
    assert refused.status_code == 403
    assert "neither a registered guardian of the patient nor a village station operator" in text_of(refused)
    assert not Participant.objects.filter(user=other).exists()
    accepted = client.post(f"/consultations/{consultation.pk}/invite/", {"email": "operator@example.org"})
    assert accepted.status_code == 302
    assert Participant.objects.get(consultation=consultation, user=operator).role == "station_operator"
    assert login_as(operator).get(f"/consultations/{consultation.pk}/").status_code == 200


# --- the doctor's decisions and the visit record -------------------------------------------------------
def doctor_client(world, login_as) -> Client:
    return english(login_as(world["doctor"].user, mfa=True))


def record_post(**overrides):
    data = {"chief_complaint": "血压控制复诊", "advice": "继续服药", "diagnosis_codes": "I10"}
    data.update(overrides)
    return data


def test_the_record_form_shows_each_error_next_to_its_field(world, login_as):
    consultation = active_consultation(world)
    actions.confirm_visit_type(world["doctor"].user, consultation.pk, VisitType.FOLLOW_UP)
    client = doctor_client(world, login_as)
    url = f"/consultations/{consultation.pk}/record/sign/"
    empty = client.post(url, record_post(chief_complaint=""))
    assert empty.status_code == 422
    assert 'id="id_chief_complaint_errors"' in empty.content.decode()
    long = client.post(url, record_post(allergies="青霉素," * 300))
    assert long.status_code == 422
    assert 'id="id_allergies_errors"' in long.content.decode()
    unknown = client.post(url, record_post(diagnosis_codes="Q99.9"))
    assert unknown.status_code == 400
    assert "Unknown diagnosis code: Q99.9." in text_of(unknown)
    assert 'id="id_signdiagnosis_codes_errors"' in unknown.content.decode()
    missing = client.post(url, record_post(diagnosis_codes=""))
    assert missing.status_code == 400
    assert in_english(errors.DIAGNOSIS_REQUIRED.message) in text_of(missing)
    assert not VisitRecord.objects.exists()
    signed = client.post(url, record_post(diagnosis_codes="i10, E78.5"))
    assert signed.status_code == 302
    record = VisitRecord.objects.get()
    assert [c.code for c in record.diagnoses.order_by("code")] == ["E78.5", "I10"]
    twice = client.post(url, record_post())
    assert twice.status_code == 409
    assert VisitRecord.objects.count() == 1


def test_an_advice_only_consultation_refuses_a_diagnosis(world, login_as):
    consultation = active_consultation(world, FIRST_VISIT)
    client = doctor_client(world, login_as)
    room = client.get(f"/consultations/{consultation.pk}/").content.decode()
    # The diagnoses field is disabled and explained before the doctor confirms a follow-up (R1).
    assert re.search(r'<input type="text" name="diagnosis_codes"[^>]*disabled', room)
    follow_up = client.post(f"/consultations/{consultation.pk}/visit-type/", {"visit_type": "follow_up"})
    assert follow_up.status_code == 409
    assert in_english(errors.FOLLOW_UP_NEEDS_PROOF.message) in text_of(follow_up)
    assert (
        client.post(f"/consultations/{consultation.pk}/visit-type/", {"visit_type": "advice_only"}).status_code == 302
    )
    page = client.get(f"/consultations/{consultation.pk}/")
    assert "This is an advice-only consultation" in text_of(page)
    before = snapshot()
    refused = client.post(f"/consultations/{consultation.pk}/record/sign/", record_post())
    assert refused.status_code == 409
    assert in_english(errors.DIAGNOSIS_NOT_ALLOWED.message) in text_of(refused)
    assert 'id="id_signdiagnosis_codes_errors"' in refused.content.decode()
    assert snapshot() == before
    advice = client.post(f"/consultations/{consultation.pk}/record/sign/", record_post(diagnosis_codes=""))
    assert advice.status_code == 302
    assert list(VisitRecord.objects.get().diagnoses.all()) == []
    # No prescription can follow an advice-only visit (R1), so the record offers none.
    record_page = client.get(f"/consultations/{consultation.pk}/record/")
    assert record_page.status_code == 200
    assert 'id="correction-form"' in record_page.content.decode()
    assert 'id="write-prescription"' not in record_page.content.decode()


def test_the_doctor_signs_completes_and_corrects_and_the_patient_reads_every_version(world, login_as):
    consultation = active_consultation(world)
    client = doctor_client(world, login_as)
    url = f"/consultations/{consultation.pk}"
    assert client.post(f"{url}/complete/").status_code == 409  # no record yet
    assert client.post(f"{url}/visit-type/", {"visit_type": "follow_up", "reason": "县医院诊断"}).status_code == 302
    assert client.post(f"{url}/record/sign/", record_post()).status_code == 302
    assert client.post(f"{url}/complete/").status_code == 302
    consultation.refresh_from_db()
    assert consultation.status == ConsultationStatus.COMPLETED
    record = VisitRecord.objects.get()
    no_reason = client.post(
        f"{url}/record/correct/", {**record_post(diagnosis_codes="I10, E78.5"), "record": record.pk, "reason": ""}
    )
    assert no_reason.status_code == 422
    assert 'id="id_reason_errors"' in no_reason.content.decode()
    corrected = client.post(
        f"{url}/record/correct/",
        {**record_post(diagnosis_codes="I10, E78.5"), "record": record.pk, "reason": "补充高脂血症"},
    )
    assert corrected.status_code == 302
    stale = client.post(f"{url}/record/correct/", {**record_post(), "record": record.pk, "reason": "again"})
    assert stale.status_code == 409
    assert VisitRecord.objects.count() == 2
    page = text_of(english(login_as(world["user"])).get(f"{url}/record/"))
    assert "Version 2, signed" in page and "Version 1, signed" in page
    assert "补充高脂血症" in page
    assert VisitRecord.objects.get(version=2).content_hash in page
    assert 'id="correction-form"' not in page  # only the doctor corrects
    assert 'id="write-prescription"' not in page
    # The doctor goes from the signed record of a follow-up to a new prescription.
    doctors_page = client.get(f"{url}/record/").content.decode()
    assert f'id="write-prescription" href="/consultations/{consultation.pk}/prescriptions/new/"' in doctors_page


def test_refer_in_person_needs_a_reason(world, login_as):
    consultation = active_consultation(world, FIRST_VISIT)
    client = doctor_client(world, login_as)
    empty = client.post(f"/consultations/{consultation.pk}/refer/", {"reason": ""})
    assert empty.status_code == 422
    assert client.post(f"/consultations/{consultation.pk}/refer/", {"reason": "胸痛需心电图"}).status_code == 302
    consultation.refresh_from_db()
    assert (consultation.status, consultation.end_reason) == ("referred", "胸痛需心电图")
    assert "胸痛需心电图" in text_of(login_as(world["user"]).get(f"/consultations/{consultation.pk}/"))


def test_doctor_steps_are_refused_to_everyone_else_and_change_nothing(world, login_as):
    consultation = active_consultation(world)
    other_doctor = factories.doctor(factories.hospital(name_zh="别的医院", name_en="Other"), legal_name="赵别")
    clients = [
        Client(),
        login_as(world["user"]),
        login_as(world["doctor"].user),  # no second factor (R6)
        login_as(other_doctor.user, mfa=True),
    ]
    base = f"/consultations/{consultation.pk}"
    posts = [
        (f"{base}/visit-type/", {"visit_type": "follow_up"}),
        (f"{base}/record/sign/", record_post()),
        (f"{base}/refer/", {"reason": "x"}),
        (f"{base}/complete/", {}),
        (f"{base}/accept/", {}),
    ]
    before = snapshot()
    for client in clients:
        for path, data in posts:
            assert client.post(path, data).status_code in (302, 403, 404)
    assert snapshot() == before


# --- files ----------------------------------------------------------------------------------------------
def test_upload_endpoint_stores_a_pdf_once_and_refuses_an_executable(world, login_as):
    consultation = active_consultation(world)
    client = login_as(world["user"])
    url = f"/consultations/{consultation.pk}/upload/"
    exe = client.post(url, {"file": SimpleUploadedFile("scan.pdf", EXE_BYTES), "client_id": "u-0"})
    assert exe.status_code == 415
    assert exe.json()["error"]["code"] == "file_type_forbidden"
    assert "file" in exe.json()["error"]["fields"]
    assert not Attachment.objects.exists()
    first = client.post(url, {"file": SimpleUploadedFile("检查.pdf", PDF_BYTES), "client_id": "u-1", "body": "化验单"})
    assert first.status_code == 201
    message = first.json()["message"]
    attachment = Attachment.objects.get()
    assert message["attachment"]["url"] == f"/consultations/{consultation.pk}/files/{attachment.pk}/"
    assert (message["kind"], message["body"], message["client_id"]) == ("attachment", "化验单", "u-1")
    again = client.post(url, {"file": SimpleUploadedFile("检查.pdf", PDF_BYTES), "client_id": "u-1"})
    assert again.status_code == 200
    assert again.json()["message"]["seq"] == message["seq"]
    assert Attachment.objects.count() == 1
    assert Client().post(url, {"client_id": "u-2"}).status_code == 401
    outsider = login_as(factories.patient_user(legal_name="孙丽"))
    assert outsider.post(url, {"file": SimpleUploadedFile("a.pdf", PDF_BYTES), "client_id": "o-1"}).status_code == 404
    assert Attachment.objects.count() == 1


def test_the_file_view_serves_participants_as_a_download_and_refuses_outsiders(world, login_as):
    consultation = active_consultation(world)
    attachment = attachments.upload_attachment(
        world["user"], io.BytesIO(PDF_BYTES), "检查 report.pdf", consultation_id=consultation.pk
    )
    url = f"/consultations/{consultation.pk}/files/{attachment.pk}/"
    for user, mfa in ((world["user"], False), (world["doctor"].user, True)):
        response = login_as(user, mfa=mfa).get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PDF_BYTES
        assert response["Content-Type"] == "application/pdf"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("attachment;")
    outsider = login_as(factories.patient_user(legal_name="孙丽"))
    assert outsider.get(url).status_code == 404
    # An attachment id of another consultation is not served through this one.
    assert login_as(world["user"]).get(f"/consultations/{consultation.pk}/files/999999/").status_code == 404
    assert AuditEntry.objects.filter(action="consultation.attachment.read", outcome="denied").exists()


# --- the workbench ---------------------------------------------------------------------------------------
def test_the_workbench_shows_the_queue_without_names_and_picks_the_next_patient(world, login_as):
    consultation = actions.join_queue(world["user"], world["patient"].pk, world["dept"].pk, FOLLOW_UP)
    client = doctor_client(world, login_as)
    page = client.get("/doctor/workbench/")
    body = page.content.decode()
    assert page.status_code == 200
    assert '<div id="workbench" data-ws-url="/ws/workbench/"' in body
    assert 'hx-trigger="load, workbench-refresh from:body, every 30s"' in body
    assert "nethospital/js/workbench.js" in body
    panel = client.get("/doctor/workbench/panel/").content.decode()
    assert 'id="queue-total">1<' in panel
    assert world["patient"].legal_name not in panel  # no names before the doctor takes the patient
    picked = client.post("/doctor/workbench/pick/", {})
    assert picked.status_code == 302
    assert picked["Location"] == f"/consultations/{consultation.pk}/"
    consultation.refresh_from_db()
    assert (consultation.status, consultation.practitioner_id) == ("active", world["doctor"].pk)
    empty = client.post("/doctor/workbench/pick/", {})
    assert empty.status_code == 409
    assert in_english(errors.QUEUE_EMPTY.message) in text_of(empty)
    actions.post_message(world["user"], consultation.pk, "p-1", "医生您好")
    panel = client.get("/doctor/workbench/panel/").content.decode()
    assert re.search(rf'id="active-{consultation.pk}" data-unread="2"', panel)  # "the doctor joined" and the message
    assert world["patient"].legal_name in panel


def test_the_workbench_lists_requests_to_accept_and_the_doctor_accepts(world, login_as):
    consultation = actions.ask_doctor(world["user"], world["patient"].pk, world["doctor"].pk, FIRST_VISIT, "您好")
    client = doctor_client(world, login_as)
    panel = text_of(client.get("/doctor/workbench/panel/"))
    assert f'id="request-{consultation.pk}"' in panel
    assert "accept by 2026-11-24 12:00" in panel
    assert client.post(f"/consultations/{consultation.pk}/accept/").status_code == 302
    consultation.refresh_from_db()
    assert consultation.status == ConsultationStatus.ACTIVE


def test_the_workbench_panel_refuses_without_a_second_factor(world, login_as):
    response = login_as(world["doctor"].user).get("/doctor/workbench/panel/")
    assert response.status_code == 403
    assert 'data-code="mfa_required"' in response.content.decode()
    assert Client().get("/doctor/workbench/panel/").status_code == 401


# --- reviews --------------------------------------------------------------------------------------------
def test_the_patient_reviews_once_and_the_admin_moderates(world, login_as):
    consultation = completed_consultation(world)
    client = english(login_as(world["user"]))
    room = client.get(f"/consultations/{consultation.pk}/").content.decode()
    assert 'id="review-form"' in room
    bad = client.post(f"/consultations/{consultation.pk}/review/", {"rating": "6"})
    assert bad.status_code == 422
    assert client.post(f"/consultations/{consultation.pk}/review/", {"rating": "4", "text": "耐心"}).status_code == 302
    twice = client.post(f"/consultations/{consultation.pk}/review/", {"rating": "5"})
    assert twice.status_code == 409
    review = Review.objects.get()
    assert (review.rating, review.status) == (4, ReviewStatus.PENDING)
    admin = english(login_as(world["admin"], mfa=True))
    queue = text_of(admin.get("/hospital-admin/reviews/"))
    assert f'id="review-{review.pk}"' in queue and "耐心" in queue
    no_reason = admin.post(f"/hospital-admin/reviews/{review.pk}/", {"decision": "hide", "reason": ""})
    assert no_reason.status_code == 400
    assert in_english(errors.REASON_REQUIRED.message) in text_of(no_reason)
    assert admin.post(f"/hospital-admin/reviews/{review.pk}/", {"decision": "publish"}).status_code == 302
    doctor = Practitioner.objects.get(pk=world["doctor"].pk)
    assert (doctor.rating_count, float(doctor.rating_average)) == (1, 4.0)
    # The directory shows the published rating, on the doctor's page and in the API.
    profile = text_of(english(Client()).get(f"/doctors/{doctor.pk}/"))
    assert re.search(r'id="rating">★ 4\.0 <span class="muted">\(1 review\)', profile)
    assert f'href="/consultations/ask/{doctor.pk}/"' in profile
    assert Client().get(f"/api/doctors/{doctor.pk}").json()["rating"] == 4.0
    outsider_admin = factories.hospital_admin(factories.hospital(name_zh="他院", name_en="Else"))
    before = snapshot()
    refused = login_as(outsider_admin, mfa=True).post(
        f"/hospital-admin/reviews/{review.pk}/", {"decision": "hide", "reason": "x"}
    )
    assert refused.status_code == 403
    assert snapshot() == before
    assert (
        f'id="review-{review.pk}"'
        not in login_as(outsider_admin, mfa=True).get("/hospital-admin/reviews/").content.decode()
    )


def test_icd_search_completes_the_last_code(world, login_as):
    client = login_as(world["doctor"].user, mfa=True)
    options = client.get("/consultations/icd10/", {"diagnosis_codes": "I10, 高血"}).content.decode()
    assert '<option value="I10, I10">I10 原发性高血压 / Essential (primary) hypertension</option>' in options
    by_code = client.get("/consultations/icd10/", {"q": "E11"}).content.decode()
    assert 'value="E11.9"' in by_code
    assert client.get("/consultations/icd10/", {"q": "x" * 500}).status_code == 200


# --- time-driven work ------------------------------------------------------------------------------------
def test_the_tick_lapses_unaccepted_questions_with_the_other_sweeps(world, django_capture_on_commit_callbacks):
    consultation = actions.ask_doctor(world["user"], world["patient"].pk, world["doctor"].pk, FIRST_VISIT, "您好")
    out = io.StringIO()
    call_command("tick", stdout=out)
    assert "requests_lapsed=0" in out.getvalue()
    assert "slots_created=" in out.getvalue()  # the scheduling sweep runs in the same tick
    with clock.frozen(NOON + dt.timedelta(hours=24, minutes=1), all_threads=True):
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("tick", stdout=out)
    assert "requests_lapsed=1" in out.getvalue()
    consultation.refresh_from_db()
    assert consultation.status == ConsultationStatus.LAPSED
    assert world["user"].notifications.filter(kind="consultation_lapsed").exists()


def test_the_lapse_task_is_a_django_task(world):
    from nethospital.consultations.tasks import lapse_requests

    actions.ask_doctor(world["user"], world["patient"].pk, world["doctor"].pk, FIRST_VISIT, "您好")
    with clock.frozen(NOON + dt.timedelta(days=2), all_threads=True):
        result = lapse_requests.enqueue()
    assert result.return_value == 1
    assert Consultation.objects.get().status == ConsultationStatus.LAPSED
