from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from nethospital.core.choices import AuditOutcome


class TimeStampedModel(models.Model):
    """Base for domain rows: when they were created and last changed."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class AuditEntry(models.Model):
    """One line of the audit trail (R22, R23): who did or read what, about which patient, when,
    from where, and with what outcome.

    Entries are append-only and hash-chained: ``entry_hash`` covers the entry's fields and
    ``previous_hash`` (the hash of the entry before it), so altering or removing any entry breaks
    the chain at that point (``nethospital audit verify``). On PostgreSQL a trigger refuses UPDATE
    and DELETE on this table. People and objects are kept as plain ids, not foreign keys, so that
    nothing elsewhere can cascade into the trail.
    """

    sequence = models.BigIntegerField(_("sequence"), unique=True)
    occurred_at = models.DateTimeField(_("occurred at"), db_index=True)
    actor_id = models.BigIntegerField(_("actor id"), null=True, blank=True, db_index=True)
    actor_role = models.CharField(_("actor role"), max_length=40, blank=True)
    action = models.CharField(_("action"), max_length=80, db_index=True)
    object_type = models.CharField(_("object type"), max_length=80, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    patient_id = models.BigIntegerField(_("patient id"), null=True, blank=True, db_index=True)
    hospital_id = models.BigIntegerField(_("hospital id"), null=True, blank=True)
    client_address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=20, default="system")
    outcome = models.CharField(_("outcome"), max_length=10, choices=AuditOutcome.choices)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    previous_hash = models.CharField(_("previous hash"), max_length=64)
    entry_hash = models.CharField(_("entry hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["sequence"]
        indexes = [models.Index(fields=["patient_id", "occurred_at"], name="audit_patient_time")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.outcome}"


class AuditChainHead(models.Model):
    """The tip of the audit chain: the last sequence number and hash. Writers lock this single row
    so that entries are chained in one order, and a removed tail is still detected."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        verbose_name = _("audit chain head")

    def __str__(self) -> str:
        return f"audit chain at {self.sequence}"


class Notification(models.Model):
    """A message to one user in the app (and by e-mail): a booking confirmed, a session closed, a
    waitlist offer, a reminder. Rendered in the user's language when it is created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(_("kind"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), max_length=2000)
    link = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"))
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_user_unread")]

    def __str__(self) -> str:
        return self.title
