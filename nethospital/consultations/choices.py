from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsultationKind(models.TextChoices):
    BOOKED = "booked", _("booked visit")
    QUEUE = "queue", _("department queue")
    ASK = "ask", _("ask a doctor")


class ConsultationChannel(models.TextChoices):
    TEXT = "text", _("text")
    VIDEO = "video", _("video")


class ConsultationStatus(models.TextChoices):
    REQUESTED = "requested", _("waiting for the doctor to accept")
    WAITING = "waiting", _("waiting")
    ACTIVE = "active", _("in progress")
    COMPLETED = "completed", _("completed")
    REFERRED_IN_PERSON = "referred", _("ended: see a doctor in person")
    LAPSED = "lapsed", _("lapsed (not accepted in time)")
    CANCELLED = "cancelled", _("cancelled")


OPEN_STATUSES = (ConsultationStatus.REQUESTED, ConsultationStatus.WAITING, ConsultationStatus.ACTIVE)
ENDED_STATUSES = (
    ConsultationStatus.COMPLETED,
    ConsultationStatus.REFERRED_IN_PERSON,
    ConsultationStatus.LAPSED,
    ConsultationStatus.CANCELLED,
)


class VisitType(models.TextChoices):
    UNDECIDED = "undecided", _("not yet confirmed")
    FOLLOW_UP = "follow_up", _("follow-up visit")
    ADVICE_ONLY = "advice_only", _("advice only")


class ProofKind(models.TextChoices):
    NONE = "none", _("none (first visit)")
    RECORD_IN_SYSTEM = "record", _("an earlier visit record here")
    OTHER_HOSPITAL = "other_hospital", _("a record from another hospital")
    DOCUMENT = "document", _("an uploaded document")


class ParticipantRole(models.TextChoices):
    PATIENT = "patient", _("patient")
    FAMILY = "family", _("family member acting for the patient")
    GUARDIAN = "guardian", _("guardian")
    DOCTOR = "doctor", _("doctor")
    STATION_OPERATOR = "station_operator", _("village station operator")


class MessageKind(models.TextChoices):
    TEXT = "text", _("text")
    ATTACHMENT = "attachment", _("attachment")
    SYSTEM = "system", _("system")


class PaymentStatus(models.TextChoices):
    NONE = "none", _("free")
    PAID = "paid", _("paid")
    REFUNDED = "refunded", _("refunded")


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("awaiting moderation")
    PUBLISHED = "published", _("published")
    HIDDEN = "hidden", _("hidden by moderator")


class CallOutcome(models.TextChoices):
    RINGING = "ringing", _("ringing")
    CONNECTED = "connected", _("connected")
    FAILED = "failed", _("failed")
    ENDED = "ended", _("ended")
