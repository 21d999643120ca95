from django.db import models
from django.utils.translation import gettext_lazy as _


class Modality(models.TextChoices):
    IN_PERSON = "in_person", _("in person")
    VIDEO = "video", _("video")
    TEXT = "text", _("text")


class Period(models.TextChoices):
    MORNING = "morning", _("morning")
    AFTERNOON = "afternoon", _("afternoon")
    EVENING = "evening", _("evening")


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class SlotStatus(models.TextChoices):
    OPEN = "open", _("open")
    CLOSED = "closed", _("closed")


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", _("booked")
    CHECKED_IN = "checked_in", _("checked in")
    COMPLETED = "completed", _("completed")
    CANCELLED = "cancelled", _("cancelled")
    NO_SHOW = "no_show", _("no-show")
    CLOSED_BY_HOSPITAL = "closed_by_hospital", _("cancelled by the hospital")


# Appointments that hold a place in a slot and count towards the patient's limits.
ACTIVE_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", _("waiting")
    OFFERED = "offered", _("slot offered")
    ACCEPTED = "accepted", _("accepted")
    EXPIRED = "expired", _("offer expired")
    LEFT = "left", _("left the waitlist")
