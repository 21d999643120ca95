from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from nethospital.core.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is append-only (R22)."""

    list_display = ("sequence", "occurred_at", "actor_id", "actor_role", "action", "patient_id", "outcome", "channel")
    list_filter = ("outcome", "channel")
    search_fields = ("action", "object_id")
    ordering = ("-sequence",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
