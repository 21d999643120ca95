"""Online consultations (R1, R2, R3, R21, R22): the visit, its participants, chat messages, files,
calls, the signed visit record and the patient's review.

Nothing here is ever deleted (every foreign key PROTECTs, the admin has no delete permission): chat
and call records are kept at least 3 years and visit records at least 15 (``retain_until``). Every
row carries its hospital so that clinical data can be sharded by hospital later.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient
from nethospital.consultations.choices import (
    CallOutcome,
    ConsultationChannel,
    ConsultationKind,
    ConsultationStatus,
    MessageKind,
    ParticipantRole,
    PaymentStatus,
    ProofKind,
    ReviewStatus,
    VisitType,
)
from nethospital.directory.models import Department, Organization, Practitioner
from nethospital.scheduling.models import Appointment


class Consultation(models.Model):
    """One online visit of a patient with a doctor, from the request to the signed record."""

    kind = models.CharField(_("kind"), max_length=10, choices=ConsultationKind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=ConsultationChannel.choices)
    status = models.CharField(_("status"), max_length=12, choices=ConsultationStatus.choices)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consultations")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="consultations")
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="consultations"
    )
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, null=True, blank=True, related_name="consultations"
    )
    appointment = models.OneToOneField(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="consultation"
    )
    # The declaration and the follow-up gate (R1, R2).
    declared_condition = models.CharField(_("condition"), max_length=200)
    declared_first_visit = models.BooleanField(_("first visit for this condition"), default=False)
    proof_kind = models.CharField(_("proof of earlier diagnosis"), max_length=20, choices=ProofKind.choices)
    proof_record = models.ForeignKey(
        "VisitRecord", on_delete=models.PROTECT, null=True, blank=True, related_name="cited_as_proof"
    )
    proof_hospital = models.CharField(_("hospital of the earlier diagnosis"), max_length=120, blank=True)
    proof_summary = models.TextField(_("earlier diagnosis as written"), max_length=2000, blank=True)
    proof_attachment = models.ForeignKey(
        "Attachment", on_delete=models.PROTECT, null=True, blank=True, related_name="cited_as_proof"
    )
    visit_type = models.CharField(
        _("visit type"), max_length=12, choices=VisitType.choices, default=VisitType.UNDECIDED
    )
    visit_type_reason = models.CharField(_("reason"), max_length=300, blank=True)
    guardian_present = models.BooleanField(_("guardian present"), default=False)
    # Money: the fee and whether it was refunded (a lapsed request is refunded).
    fee = models.DecimalField(_("fee (CNY)"), max_digits=8, decimal_places=2, default=Decimal("0"))
    payment_status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.NONE)
    # Lifecycle.
    created_at = models.DateTimeField(_("requested at"))
    accept_deadline = models.DateTimeField(_("accept by"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("reason"), max_length=300, blank=True)
    followup_until = models.DateTimeField(_("free follow-up questions until"), null=True, blank=True)
    followup_questions_left = models.PositiveSmallIntegerField(default=0)
    last_seq = models.PositiveIntegerField(default=0)
    retain_until = models.DateField(_("keep chat and calls until"), null=True, blank=True)

    class Meta:
        verbose_name = _("consultation")
        verbose_name_plural = _("consultations")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["department", "status", "created_at"], name="consult_queue"),
            models.Index(fields=["practitioner", "status"], name="consult_doctor_status"),
            models.Index(fields=["patient", "created_at"], name="consult_patient"),
        ]
        constraints = [
            # R1: an advice-only consultation is never a follow-up, and a first visit is never one.
            models.CheckConstraint(
                condition=~Q(visit_type=VisitType.FOLLOW_UP, declared_first_visit=True),
                name="consult_first_visit_not_follow_up",
            ),
            models.CheckConstraint(
                condition=Q(kind=ConsultationKind.QUEUE) | Q(practitioner__isnull=False),
                name="consult_doctor_unless_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"consultation #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING, ConsultationStatus.ACTIVE)

    @property
    def may_diagnose(self) -> bool:
        """R1: only a confirmed follow-up visit may record a diagnosis (and so lead to a prescription)."""
        return self.visit_type == VisitType.FOLLOW_UP and not self.declared_first_visit


class Participant(models.Model):
    """A person in the consultation: the patient or the family member acting for them, a guardian,
    the doctor, a village station operator hosting the patient. ``last_read_seq`` drives the read
    receipts."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(_("role"), max_length=20, choices=ParticipantRole.choices)
    joined_at = models.DateTimeField()
    last_read_seq = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("participant")
        constraints = [models.UniqueConstraint(fields=["consultation", "user"], name="participant_unique")]

    def __str__(self) -> str:
        return f"{self.role} in {self.consultation_id}"


class Attachment(models.Model):
    """A file in a consultation (image or PDF). The type is read from the content; the file lives
    under MEDIA_ROOT with a random name and no extension, and is served only to participants."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="attachments", null=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+", null=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    original_name = models.CharField(_("file name"), max_length=120)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=120, unique=True)
    uploaded_at = models.DateTimeField()

    class Meta:
        verbose_name = _("attachment")

    def __str__(self) -> str:
        return self.original_name


class Message(models.Model):
    """One chat message. ``seq`` orders the consultation's messages without gaps; the sender's
    ``client_id`` makes a resend after a dropped connection land once."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="messages")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveIntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    sender_role = models.CharField(max_length=20, choices=ParticipantRole.choices, blank=True)
    client_id = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=12, choices=MessageKind.choices, default=MessageKind.TEXT)
    body = models.TextField(max_length=4000, blank=True)
    attachment = models.ForeignKey(Attachment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    is_followup_question = models.BooleanField(default=False)
    sent_at = models.DateTimeField()

    class Meta:
        verbose_name = _("message")
        ordering = ["consultation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["consultation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["consultation", "sender", "client_id"],
                condition=~Q(client_id=""),
                name="message_client_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consultation_id}#{self.seq}"


class CallRecord(models.Model):
    """A video call in a consultation: who started it, who joined, when it connected and ended."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="calls")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    call_id = models.CharField(max_length=40, unique=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=CallOutcome.choices, default=CallOutcome.RINGING)
    participant_ids = models.JSONField(default=list)

    class Meta:
        verbose_name = _("call")
        ordering = ["started_at"]

    def __str__(self) -> str:
        return self.call_id

    @property
    def duration_seconds(self) -> int | None:
        if self.connected_at and self.ended_at:
            return int((self.ended_at - self.connected_at).total_seconds())
        return None


class ICD10Code(models.Model):
    """A diagnosis code of the seeded bilingual ICD-10 subset."""

    code = models.CharField(max_length=10, unique=True)
    name_en = models.CharField(max_length=200)
    name_zh = models.CharField(max_length=100)
    is_chronic = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("ICD-10 code")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name_en}"


class VisitRecord(models.Model):
    """The doctor's structured record of a consultation (R21). Signed versions are locked; a
    correction is a new version that names the one it replaces and why."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="records")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="visit_records")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="visit_records")
    version = models.PositiveSmallIntegerField(default=1)
    replaces = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by")
    correction_reason = models.CharField(_("reason for the correction"), max_length=300, blank=True)
    chief_complaint = models.CharField(_("chief complaint"), max_length=300)
    present_illness = models.TextField(_("present illness"), max_length=4000, blank=True)
    past_history = models.TextField(_("past history"), max_length=4000, blank=True)
    allergies = models.TextField(_("allergies"), max_length=1000, blank=True)
    findings = models.TextField(_("findings reported"), max_length=4000, blank=True)
    advice = models.TextField(_("advice"), max_length=4000, blank=True)
    followup_plan = models.TextField(_("follow-up plan"), max_length=2000, blank=True)
    diagnoses: models.ManyToManyField[ICD10Code, VisitDiagnosis] = models.ManyToManyField(
        ICD10Code, through="VisitDiagnosis", related_name="+"
    )
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    content_hash = models.CharField(max_length=64)
    is_current = models.BooleanField(default=True)
    retain_until = models.DateField()

    class Meta:
        verbose_name = _("visit record")
        ordering = ["consultation", "version"]
        constraints = [
            models.UniqueConstraint(fields=["consultation", "version"], name="visit_record_version_unique"),
            models.UniqueConstraint(
                fields=["consultation"], condition=Q(is_current=True), name="visit_record_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"record of consultation {self.consultation_id} v{self.version}"


class VisitDiagnosis(models.Model):
    record = models.ForeignKey(VisitRecord, on_delete=models.PROTECT, related_name="diagnosis_rows")
    code = models.ForeignKey(ICD10Code, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["record", "position"]
        constraints = [models.UniqueConstraint(fields=["record", "code"], name="visit_diagnosis_unique")]

    def __str__(self) -> str:
        return f"{self.record_id}: {self.code_id}"


class Review(models.Model):
    """The patient's rating of the doctor for one consultation, moderated by the hospital."""

    consultation = models.OneToOneField(Consultation, on_delete=models.PROTECT, related_name="review")
    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="reviews")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    rating = models.PositiveSmallIntegerField(_("rating"))
    text = models.TextField(_("review"), max_length=1000, blank=True)
    status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    created_at = models.DateTimeField()
    moderated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    moderated_at = models.DateTimeField(null=True, blank=True)
    moderation_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("review")
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="review_rating_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rating}★ for {self.practitioner_id}"
