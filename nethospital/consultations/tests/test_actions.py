"""Consultation rules at the action level (R1, R2, R3, R5, R6, R21), with an injectable clock."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Sex
from nethospital.accounts.identity import make_number
from nethospital.consultations import actions, attachments
from nethospital.consultations.actions import Declaration, RecordInput
from nethospital.consultations.choices import (
    CallOutcome,
    ConsultationStatus,
    PaymentStatus,
    ProofKind,
    ReviewStatus,
    VisitType,
)
from nethospital.consultations.models import Attachment, Consultation, Message, VisitRecord
from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry
from nethospital.directory import actions as directory_actions
from nethospital.directory.choices import VerificationStatus
from nethospital.records.models import Allergy
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)

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
    allergies="青霉素, 磺胺",
    advice="继续服药",
    diagnosis_codes=["I10"],
)


def code_of(call) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value.code


@pytest.fixture
def world(city_hospital, internet_hospital):
    with clock.frozen(NOON):
        admin = factories.hospital_admin(city_hospital)
        doctor = factories.doctor(city_hospital, admin=admin)
        doctor.user.is_mfa_verified = True
        patient_user = factories.patient_user()
        patient = factories.patient_of(patient_user)
        dept = doctor.department
    return {"admin": admin, "doctor": doctor, "user": patient_user, "patient": patient, "dept": dept}


def queue_and_pick(world, declaration=FOLLOW_UP):
    consultation = actions.join_queue(world["user"], world["patient"].pk, world["dept"].pk, declaration)
    picked = actions.pick_next(world["doctor"].user)
    assert picked.pk == consultation.pk
    return picked


# --- R1 / R2: the follow-up gate ----------------------------------------------------------------
def test_first_visit_never_gets_a_diagnosis(world):
    with clock.frozen(NOON):
        consultation = queue_and_pick(world, FIRST_VISIT)
        doctor_user = world["doctor"].user
        assert code_of(lambda: actions.confirm_visit_type(doctor_user, consultation.pk, VisitType.FOLLOW_UP)) == (
            "follow_up_needs_proof"
        )
        assert code_of(lambda: actions.sign_visit_record(doctor_user, consultation.pk, RECORD)) == (
            "diagnosis_not_allowed"
        )
        assert not VisitRecord.objects.exists()
        advice = RecordInput(chief_complaint="胸闷", advice="请到医院面诊")
        record = actions.sign_visit_record(doctor_user, consultation.pk, advice)
        consultation.refresh_from_db()
        assert consultation.visit_type == VisitType.ADVICE_ONLY
        assert not consultation.may_diagnose
        assert list(record.diagnoses.all()) == []
        # A correction cannot sneak a diagnosis in either.
        assert code_of(lambda: actions.correct_visit_record(doctor_user, record.pk, RECORD, "补充诊断")) == (
            "diagnosis_not_allowed"
        )
    # And the database itself refuses a first visit marked as a follow-up.
    with pytest.raises(IntegrityError), transaction.atomic():
        Consultation.objects.filter(pk=consultation.pk).update(visit_type=VisitType.FOLLOW_UP)


def test_follow_up_needs_proof_and_then_records_diagnoses(world):
    with clock.frozen(NOON):
        no_proof = Declaration(condition="高血压", first_visit=False)
        assert code_of(lambda: actions.join_queue(world["user"], world["patient"].pk, world["dept"].pk, no_proof)) == (
            "proof_required"
        )
        half = Declaration(condition="高血压", first_visit=False, proof_kind=ProofKind.OTHER_HOSPITAL)
        assert code_of(lambda: actions.join_queue(world["user"], world["patient"].pk, world["dept"].pk, half)) == (
            "proof_hospital_required"
        )
        assert not Consultation.objects.exists()
        consultation = queue_and_pick(world)
        doctor_user = world["doctor"].user
        assert code_of(lambda: actions.complete_consultation(doctor_user, consultation.pk)) == "record_required"
        actions.confirm_visit_type(doctor_user, consultation.pk, VisitType.FOLLOW_UP)
        missing = RecordInput(chief_complaint="复诊")
        assert code_of(lambda: actions.sign_visit_record(doctor_user, consultation.pk, missing)) == (
            "diagnosis_required"
        )
        unknown = RecordInput(chief_complaint="复诊", diagnosis_codes=["Q99.9"])
        assert code_of(lambda: actions.sign_visit_record(doctor_user, consultation.pk, unknown)) == "unknown_icd10"
        record = actions.sign_visit_record(doctor_user, consultation.pk, RECORD)
        assert [c.code for c in record.diagnoses.all()] == ["I10"]
        assert set(Allergy.objects.filter(patient=world["patient"]).values_list("substance", flat=True)) == {
            "青霉素",
            "磺胺",
        }
        assert code_of(lambda: actions.sign_visit_record(doctor_user, consultation.pk, RECORD)) == (
            "record_already_signed"
        )
        completed = actions.complete_consultation(doctor_user, consultation.pk)
        assert completed.status == ConsultationStatus.COMPLETED
        assert completed.may_diagnose


def test_proof_by_earlier_record_must_be_the_patients_own(world):
    with clock.frozen(NOON):
        first = queue_and_pick(world)
        actions.confirm_visit_type(world["doctor"].user, first.pk, VisitType.FOLLOW_UP)
        record = actions.sign_visit_record(world["doctor"].user, first.pk, RECORD)
        actions.complete_consultation(world["doctor"].user, first.pk)
        stranger = factories.patient_user()
        stolen = Declaration(
            condition="高血压", first_visit=False, proof_kind=ProofKind.RECORD_IN_SYSTEM, proof_record_id=record.pk
        )
        stranger_patient = factories.patient_of(stranger)
        assert code_of(lambda: actions.join_queue(stranger, stranger_patient.pk, world["dept"].pk, stolen)) == (
            "proof_record_invalid"
        )
        own = actions.join_queue(world["user"], world["patient"].pk, world["dept"].pk, stolen)
        assert own.proof_record_id == record.pk


def test_correction_is_a_new_version_and_the_old_one_stays(world):
    with clock.frozen(NOON):
        consultation = queue_and_pick(world)
        doctor_user = world["doctor"].user
        actions.confirm_visit_type(doctor_user, consultation.pk, VisitType.FOLLOW_UP)
        first = actions.sign_visit_record(doctor_user, consultation.pk, RECORD)
        assert code_of(lambda: actions.correct_visit_record(doctor_user, first.pk, RECORD, "")) == (
            "correction_reason_required"
        )
        corrected = RecordInput(chief_complaint="血压控制复诊", diagnosis_codes=["I10", "E78.5"])
        second = actions.correct_visit_record(doctor_user, first.pk, corrected, "补充高脂血症诊断")
        first.refresh_from_db()
        assert (first.is_current, second.is_current, second.version, second.replaces_id) == (False, True, 2, first.pk)
        assert first.content_hash != second.content_hash
        assert code_of(lambda: actions.correct_visit_record(doctor_user, first.pk, corrected, "again")) == (
            "record_not_current"
        )
        assert VisitRecord.objects.filter(consultation=consultation).count() == 2
        assert first.retain_until >= dt.date(2041, 11, 23)  # R21: at least 15 years


# --- R5 / R6: who may see a patient -------------------------------------------------------------------
def test_doctor_needs_mfa_and_must_be_allowed_to_practise(world):
    with clock.frozen(NOON):
        actions.join_queue(world["user"], world["patient"].pk, world["dept"].pk, FOLLOW_UP)
        doctor = world["doctor"]
        doctor.user.is_mfa_verified = False
        assert code_of(lambda: actions.pick_next(doctor.user)) == "mfa_required"
        doctor.user.is_mfa_verified = True
        directory_actions.change_verification(world["admin"], doctor.pk, VerificationStatus.SUSPENDED, reason="停诊")
        assert code_of(lambda: actions.pick_next(doctor.user)) == "practitioner_suspended"
        assert Consultation.objects.get().status == ConsultationStatus.WAITING


def test_outsiders_cannot_read_or_write(world):
    with clock.frozen(NOON):
        consultation = queue_and_pick(world)
        outsider = factories.patient_user()
        other_doctor = factories.doctor(factories.hospital(name_zh="别的医院", name_en="Other"))
        other_doctor.user.is_mfa_verified = True
        for user in (outsider, other_doctor.user):
            assert code_of(lambda user=user: actions.post_message(user, consultation.pk, "c1", "hi")) == (
                "consultation_not_found"
            )
            assert code_of(lambda user=user: actions.messages_after(user, consultation.pk)) == "consultation_not_found"
        assert not Message.objects.filter(sender__in=[outsider, other_doctor.user]).exists()
        assert AuditEntry.objects.filter(action="consultation.messages.read", outcome="denied").count() == 2


# --- R3: young children ---------------------------------------------------------------------------
@pytest.fixture
def child(world):
    with clock.frozen(NOON):
        birth = dt.date(2023, 5, 1)
        link = account_actions.add_family_member(
            world["user"],
            legal_name="张小宝",
            id_number=make_number("110101", birth, 8, Sex.FEMALE),
            birth_date=birth,
            sex=Sex.FEMALE,
            relationship=Relationship.CHILD,
        )
    assert link.is_guardian
    return link.patient


def test_young_child_needs_guardian_and_paediatric_doctor(world, child, city_hospital):
    with clock.frozen(NOON):
        consultation = actions.join_queue(world["user"], child.pk, world["dept"].pk, FOLLOW_UP)
        assert consultation.guardian_present
        # A cardiologist who is not paediatric leaves the child in the queue for a paediatrician.
        assert code_of(lambda: actions.pick_next(world["doctor"].user)) == "queue_empty"
        paed_spec = factories.specialty("paediatric-cardiology", "小儿心血管", "Paediatric cardiology", paediatric=True)
        paediatrician = factories.doctor(city_hospital, legal_name="王儿科", admin=world["admin"])
        paediatrician.specialties.add(paed_spec)
        paediatrician.user.is_mfa_verified = True
        picked = actions.pick_next(paediatrician.user)
        assert picked.pk == consultation.pk


def test_young_child_without_guardian_is_refused(world, child):
    with clock.frozen(NOON):
        from nethospital.accounts.models import FamilyLink

        FamilyLink.objects.filter(patient=child).update(is_guardian=False)
        assert code_of(lambda: actions.join_queue(world["user"], child.pk, world["dept"].pk, FOLLOW_UP)) == (
            "guardian_required"
        )
        assert not Consultation.objects.exists()


def test_nobody_may_open_a_consultation_for_a_stranger(world):
    with clock.frozen(NOON):
        stranger = factories.patient_of(factories.patient_user())
        assert code_of(lambda: actions.join_queue(world["user"], stranger.pk, world["dept"].pk, FOLLOW_UP)) == (
            "permission_denied"
        )


# --- queue --------------------------------------------------------------------------------------------
def test_queue_positions_and_estimated_wait(world, settings):
    settings.NETHOSPITAL_QUEUE_MINUTES_PER_PATIENT = 10
    with clock.frozen(NOON):
        people = [world["user"]] + [factories.patient_user() for _ in range(2)]
        queued = []
        for i, user in enumerate(people):
            clock.advance(dt.timedelta(seconds=i + 1))
            queued.append(actions.join_queue(user, factories.patient_of(user).pk, world["dept"].pk, FIRST_VISIT))
        assert [actions.queue_position(c).position for c in queued] == [1, 2, 3]
        assert actions.queue_position(queued[2]).estimated_minutes == 30
        assert code_of(lambda: actions.join_queue(people[0], world["patient"].pk, world["dept"].pk, FIRST_VISIT)) == (
            "already_queued"
        )
        actions.pick_next(world["doctor"].user)
        for c in queued:
            c.refresh_from_db()
        assert [actions.queue_position(c).position for c in queued] == [0, 1, 2]


# --- chat --------------------------------------------------------------------------------------------
def test_messages_are_sequenced_and_a_resend_lands_once(world):
    with clock.frozen(NOON):
        consultation = queue_and_pick(world)
        first = actions.post_message(world["user"], consultation.pk, "m-1", "医生您好")
        again = actions.post_message(world["user"], consultation.pk, "m-1", "医生您好")
        reply = actions.post_message(world["doctor"].user, consultation.pk, "d-1", "您好，请讲")
        assert (first.created, again.created, again.message.pk) == (True, False, first.message.pk)
        assert reply.message.seq == first.message.seq + 1
        after = actions.messages_after(world["user"], consultation.pk, first.message.seq - 1)
        assert [m.seq for m in after] == [first.message.seq, reply.message.seq]
        assert code_of(lambda: actions.post_message(world["user"], consultation.pk, "m-2", "x" * 4001)) == (
            "message_too_long"
        )
        assert code_of(lambda: actions.post_message(world["user"], consultation.pk, "m-3", "   ")) == "message_empty"
        consultation.refresh_from_db()
        assert actions.mark_read(world["doctor"].user, consultation.pk, 10**6) == consultation.last_seq
        assert actions.unread_count(world["doctor"].user, consultation) == 0
        assert actions.unread_count(world["user"], consultation) == 2  # "doctor joined" and the reply


def test_free_follow_up_questions_are_limited_in_number_and_time(world, settings):
    settings.NETHOSPITAL_FOLLOWUP_QUESTIONS = 2
    with clock.frozen(NOON):
        consultation = queue_and_pick(world)
        doctor_user = world["doctor"].user
        actions.confirm_visit_type(doctor_user, consultation.pk, VisitType.FOLLOW_UP)
        actions.sign_visit_record(doctor_user, consultation.pk, RECORD)
        actions.complete_consultation(doctor_user, consultation.pk)
        clock.advance(dt.timedelta(days=2))
        assert actions.post_message(world["user"], consultation.pk, "q1", "还需要复查吗？").message.is_followup_question
        actions.post_message(doctor_user, consultation.pk, "a1", "一个月后复查")
        actions.post_message(world["user"], consultation.pk, "q2", "好的")
        assert code_of(lambda: actions.post_message(world["user"], consultation.pk, "q3", "再问一个")) == (
            "followup_over"
        )
        clock.advance(dt.timedelta(days=6))
        assert code_of(lambda: actions.post_message(doctor_user, consultation.pk, "a2", "late")) == "followup_over"


def test_ask_a_doctor_lapses_after_the_accept_window_and_is_refunded(world, django_capture_on_commit_callbacks):
    with clock.frozen(NOON):
        consultation = actions.ask_doctor(
            world["user"], world["patient"].pk, world["doctor"].pk, FIRST_VISIT, "我最近胸闷，需要检查吗？"
        )
        Consultation.objects.filter(pk=consultation.pk).update(payment_status=PaymentStatus.PAID)
        assert consultation.status == ConsultationStatus.REQUESTED
        clock.advance(dt.timedelta(hours=23, minutes=59))
        assert actions.lapse_unaccepted_requests() == 0
        clock.advance(dt.timedelta(minutes=1))
        assert code_of(lambda: actions.accept_request(world["doctor"].user, consultation.pk)) == "accept_expired"
        with django_capture_on_commit_callbacks(execute=True):
            assert actions.lapse_unaccepted_requests() == 1
        consultation.refresh_from_db()
        assert (consultation.status, consultation.payment_status) == (
            ConsultationStatus.LAPSED,
            PaymentStatus.REFUNDED,
        )
        assert world["user"].notifications.filter(kind="consultation_lapsed").exists()


def test_ask_accepted_in_time_starts_the_chat(world):
    with clock.frozen(NOON):
        consultation = actions.ask_doctor(world["user"], world["patient"].pk, world["doctor"].pk, FIRST_VISIT, "您好")
        clock.advance(dt.timedelta(hours=3))
        started = actions.accept_request(world["doctor"].user, consultation.pk)
        assert started.status == ConsultationStatus.ACTIVE
        assert [m.kind for m in actions.messages_after(world["user"], consultation.pk)] == ["text", "system"]


def test_refer_in_person_ends_with_a_reason(world):
    with clock.frozen(NOON):
        consultation = queue_and_pick(world, FIRST_VISIT)
        assert code_of(lambda: actions.refer_in_person(world["doctor"].user, consultation.pk, "")) == (
            "reason_required"
        )
        ended = actions.refer_in_person(world["doctor"].user, consultation.pk, "胸痛需心电图检查")
        assert (ended.status, ended.end_reason) == (ConsultationStatus.REFERRED_IN_PERSON, "胸痛需心电图检查")
        assert code_of(lambda: actions.post_message(world["user"], consultation.pk, "late", "?")) == (
            "consultation_closed"
        )


# --- attachments -------------------------------------------------------------------------------------
def test_attachment_type_comes_from_the_content(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.NETHOSPITAL_ATTACHMENT_MAX_BYTES = 1024
    with clock.frozen(NOON):
        consultation = queue_and_pick(world)
        exe = io.BytesIO(b"MZ\x90\x00" + b"\x00" * 100)
        assert code_of(
            lambda: attachments.upload_attachment(world["user"], exe, "report.pdf", consultation_id=consultation.pk)
        ) == ("file_type_forbidden")
        big = io.BytesIO(b"%PDF-1.4\n" + b"0" * 2000)
        assert code_of(
            lambda: attachments.upload_attachment(world["user"], big, "big.pdf", consultation_id=consultation.pk)
        ) == ("file_too_large")
        assert not Attachment.objects.exists()
        pdf = attachments.upload_attachment(
            world["user"], io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "../../etc/passwd.pdf", consultation_id=consultation.pk
        )
        assert pdf.content_type == "application/pdf"
        assert pdf.original_name == "passwd.pdf"
        stored = attachments.path_of(pdf)
        assert stored.is_file() and stored.is_relative_to(tmp_path) and stored.suffix == ""
        outsider = factories.patient_user()
        assert code_of(lambda: attachments.access_attachment(outsider, consultation.pk, pdf.pk)) == (
            "consultation_not_found"
        )
        assert attachments.access_attachment(world["doctor"].user, consultation.pk, pdf.pk) == pdf


# --- calls and reviews ------------------------------------------------------------------------------
def test_call_start_connect_end_is_recorded(world):
    with clock.frozen(NOON):
        consultation = actions.join_queue(
            world["user"], world["patient"].pk, world["dept"].pk, FOLLOW_UP, channel="video"
        )
        actions.pick_next(world["doctor"].user)
        call = actions.start_call(world["doctor"].user, consultation.pk)
        actions.update_call(world["user"], call.call_id, "joined")
        clock.advance(dt.timedelta(seconds=5))
        actions.update_call(world["user"], call.call_id, "connected")
        clock.advance(dt.timedelta(minutes=7))
        ended = actions.update_call(world["doctor"].user, call.call_id, "ended")
        assert ended.outcome == CallOutcome.ENDED
        assert ended.duration_seconds == 420
        assert sorted(ended.participant_ids) == sorted([world["doctor"].user.pk, world["user"].pk])


def test_text_consultation_has_no_video_call(world):
    with clock.frozen(NOON):
        consultation = queue_and_pick(world)
        assert code_of(lambda: actions.start_call(world["user"], consultation.pk)) == "call_needs_video"


def test_review_once_and_moderated_rating_feeds_the_directory(world):
    with clock.frozen(NOON):
        consultation = queue_and_pick(world)
        doctor_user = world["doctor"].user
        assert code_of(lambda: actions.submit_review(world["user"], consultation.pk, 5)) == "review_not_allowed"
        actions.sign_visit_record(doctor_user, consultation.pk, RecordInput(chief_complaint="咨询"))
        actions.complete_consultation(doctor_user, consultation.pk)
        assert code_of(lambda: actions.submit_review(world["user"], consultation.pk, 6)) == "rating_invalid"
        review = actions.submit_review(world["user"], consultation.pk, 4, "耐心细致")
        assert code_of(lambda: actions.submit_review(world["user"], consultation.pk, 5)) == "review_exists"
        world["doctor"].refresh_from_db()
        assert world["doctor"].rating_count == 0  # not before moderation
        actions.moderate_review(world["admin"], review.pk, publish=True)
        world["doctor"].refresh_from_db()
        assert (world["doctor"].rating_count, float(world["doctor"].rating_average)) == (1, 4.0)
        outsider_admin = factories.hospital_admin(factories.hospital(name_zh="他院", name_en="Else"))
        assert code_of(lambda: actions.moderate_review(outsider_admin, review.pk, publish=False, reason="x")) == (
            "permission_denied"
        )
        actions.moderate_review(world["admin"], review.pk, publish=False, reason="含个人信息")
        review.refresh_from_db()
        world["doctor"].refresh_from_db()
        assert (review.status, world["doctor"].rating_count) == (ReviewStatus.HIDDEN, 0)
