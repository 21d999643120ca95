from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from nethospital.directory.models import Department, Organization, Practitioner, Specialty, VerificationEvent


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name_zh", "name_en", "kind", "tier", "city", "province", "attached_to", "is_active")
    list_filter = ("kind", "tier", "province")
    search_fields = ("name_zh", "name_en", "licence_number")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name_zh", "name_en", "organization", "code", "specialty", "is_active")
    list_filter = ("organization",)


@admin.register(Specialty)
class SpecialtyAdmin(admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "is_paediatric")


class VerificationEventInline(admin.TabularInline):
    model = VerificationEvent
    extra = 0
    can_delete = False
    readonly_fields = ("from_status", "to_status", "reason", "actor", "occurred_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Practitioner)
class PractitionerAdmin(admin.ModelAdmin):
    """Status changes go through the verification queue (an action with its R5 checks), so the
    status is read-only here."""

    list_display = ("legal_name", "profession", "title", "primary_institution", "verification_status")
    list_filter = ("verification_status", "profession", "title")
    search_fields = ("legal_name", "licence_number")
    readonly_fields = ("verification_status", "status_reason", "status_changed_at")
    inlines = [VerificationEventInline]
