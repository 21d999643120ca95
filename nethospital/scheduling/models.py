from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient
from nethospital.directory.models import Department, Organization, Practitioner
from nethospital.scheduling.choices import (
    ACTIVE_STATUSES,
    AppointmentStatus,
    Modality,
    Period,
    SlotStatus,
    WaitlistStatus,
    Weekday,
)


class BookingPolicy(models.Model):
    """A hospital's booking rules (R29, R30): when slots are released, how many bookings a patient
    may hold, the cancellation cut-off, the no-show bar and the waitlist offer time. Hospitals
    without a row use the defaults below."""

    hospital = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="booking_policy")
    release_time = models.TimeField(_("slots released at"), default=dt.time(8, 0))
    release_days_ahead = models.PositiveSmallIntegerField(_("released this many days ahead"), default=7)
    max_active_bookings = models.PositiveSmallIntegerField(_("active bookings per patient"), default=5)
    cancel_cutoff_minutes = models.PositiveIntegerField(_("cancellation cut-off (minutes)"), default=120)
    no_show_limit = models.PositiveSmallIntegerField(_("no-shows that bar booking"), default=3)
    no_show_window_days = models.PositiveSmallIntegerField(_("no-show window (days)"), default=90)
    no_show_bar_days = models.PositiveSmallIntegerField(_("bar length (days)"), default=90)
    waitlist_offer_minutes = models.PositiveIntegerField(_("waitlist offer holds for (minutes)"), default=30)

    class Meta:
        verbose_name = _("booking policy")
        verbose_name_plural = _("booking policies")

    def __str__(self) -> str:
        return f"{self.hospital}"


DEFAULT_POLICY = BookingPolicy()


class ScheduleSession(models.Model):
    """A recurring clinic session of one doctor: every <weekday> <period> from ``start_time`` to
    ``end_time``, cut into slots of ``slot_minutes`` that each take ``capacity`` patients, by one
    modality and at one fee. Slots are generated from it ahead of time."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="sessions")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="sessions")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices, null=True, blank=True)
    # A one-off session has a date instead of a weekday.
    on_date = models.DateField(_("one-off date"), null=True, blank=True)
    period = models.CharField(_("period"), max_length=10, choices=Period.choices)
    start_time = models.TimeField(_("starts"))
    end_time = models.TimeField(_("ends"))
    slot_minutes = models.PositiveSmallIntegerField(_("slot length (minutes)"), default=15)
    capacity = models.PositiveSmallIntegerField(_("patients per slot"), default=1)
    modality = models.CharField(_("modality"), max_length=10, choices=Modality.choices)
    fee = models.DecimalField(_("fee (CNY)"), max_digits=8, decimal_places=2, default=Decimal("0"))
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("clinic session")
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__isnull=False, on_date__isnull=True)
                | Q(weekday__isnull=True, on_date__isnull=False),
                name="session_weekday_or_date",
            ),
            models.CheckConstraint(condition=Q(end_time__gt=models.F("start_time")), name="session_ends_after_start"),
            models.CheckConstraint(condition=Q(slot_minutes__gte=5, capacity__gte=1), name="session_slot_sane"),
        ]

    def __str__(self) -> str:
        return f"{self.practitioner} {self.get_weekday_display() or self.on_date} {self.get_period_display()}"


class Closure(models.Model):
    """Days a doctor (or a whole hospital, when no doctor is named) does not see patients: leave,
    holidays. Closing days that already have bookings cancels them and tells the patients."""

    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="closures")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, null=True, blank=True, related_name="closures"
    )
    first_day = models.DateField(_("first day"))
    last_day = models.DateField(_("last day"))
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("closure")
        constraints = [models.CheckConstraint(condition=Q(last_day__gte=models.F("first_day")), name="closure_days")]

    def __str__(self) -> str:
        return f"{self.first_day}–{self.last_day}: {self.reason}"


class Slot(models.Model):
    """One bookable time of one doctor: ``capacity`` places, of which ``booked_count`` are taken
    (bookings, and places held for a waitlist offer). It opens for booking at ``release_at``.
    ``booked_count`` only moves by conditional UPDATEs, so it never passes ``capacity``."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="slots")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="slots")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    session = models.ForeignKey(ScheduleSession, on_delete=models.PROTECT, null=True, blank=True, related_name="slots")
    day = models.DateField(_("day"))
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    modality = models.CharField(_("modality"), max_length=10, choices=Modality.choices)
    fee = models.DecimalField(_("fee (CNY)"), max_digits=8, decimal_places=2, default=Decimal("0"))
    capacity = models.PositiveSmallIntegerField(_("capacity"), default=1)
    booked_count = models.PositiveSmallIntegerField(_("booked"), default=0)
    release_at = models.DateTimeField(_("opens for booking at"))
    status = models.CharField(_("status"), max_length=10, choices=SlotStatus.choices, default=SlotStatus.OPEN)

    class Meta:
        verbose_name = _("slot")
        constraints = [
            models.UniqueConstraint(fields=["practitioner", "starts_at", "modality"], name="slot_unique_time"),
            models.CheckConstraint(condition=Q(booked_count__lte=models.F("capacity")), name="slot_not_over_capacity"),
        ]
        indexes = [
            models.Index(fields=["practitioner", "day"], name="slot_doctor_day"),
            models.Index(fields=["day", "status"], name="slot_day_status"),
        ]

    def __str__(self) -> str:
        return f"{self.practitioner} {self.starts_at:%Y-%m-%d %H:%M} ({self.modality})"

    @property
    def free_places(self) -> int:
        return max(self.capacity - self.booked_count, 0)


class Appointment(models.Model):
    """A patient's place in a slot. Booked by the patient or by a family member acting for them
    (R30). Never deleted: cancellations, no-shows and reschedules are states and links."""

    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings")
    # Copied from the slot so the per-day rule is one unique index, and for sharding by hospital.
    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="appointments")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="appointments")
    day = models.DateField(_("day"))
    status = models.CharField(
        _("status"), max_length=20, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED
    )
    idempotency_key = models.CharField(max_length=64)
    booked_at = models.DateTimeField(_("booked at"))
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.CharField(_("reason"), max_length=200, blank=True)
    rescheduled_from = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="rescheduled_to"
    )
    checked_in_at = models.DateTimeField(null=True, blank=True)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reminder_24h_sent_at = models.DateTimeField(null=True, blank=True)
    reminder_1h_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("appointment")
        constraints = [
            # A retried request finds the first appointment instead of making a second one.
            models.UniqueConstraint(fields=["booked_by", "idempotency_key"], name="appointment_idempotency"),
            # One active booking per patient per doctor per day.
            models.UniqueConstraint(
                fields=["patient", "practitioner", "day"],
                condition=Q(status__in=[s.value for s in ACTIVE_STATUSES]),
                name="appointment_one_per_doctor_day",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "status"], name="appointment_patient_status"),
            models.Index(fields=["practitioner", "day"], name="appointment_doctor_day"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} · {self.slot}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class WaitlistEntry(models.Model):
    """A patient waiting for a place with a doctor on a day. When a place frees up it is offered
    (held in the slot) to the first waiting entry until ``offer_expires_at``."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="waitlist")
    hospital = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    day = models.DateField(_("day"))
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="waitlist_entries")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    joined_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING)
    offered_slot = models.ForeignKey(Slot, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    appointment = models.OneToOneField(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="waitlist_entry"
    )

    class Meta:
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist entries")
        ordering = ["joined_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner", "day", "patient"],
                condition=Q(status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]),
                name="waitlist_one_entry_per_patient",
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} waiting for {self.practitioner} on {self.day}"
