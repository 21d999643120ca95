from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest, HttpResponse

from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.core import audit


class RoleGrantInline(admin.TabularInline):
    model = RoleGrant
    fk_name = "user"
    extra = 0
    fields = ("role", "organization", "granted_at", "revoked_at")
    readonly_fields = ("granted_at",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "display_name", "is_active", "is_staff", "date_joined")
    search_fields = ("email", "display_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "preferred_language")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = ("groups",)
    list_filter = ("is_active", "is_staff")
    inlines = [RoleGrantInline]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """Back-office view of real-name identities: masked number only; opening one is audited (R23).
    Identity changes go through the actions, so the form is read-only here."""

    list_display = ("legal_name", "id_number_masked", "birth_date", "sex", "account")
    search_fields = ("legal_name", "phone")
    readonly_fields = ("legal_name", "id_number_masked", "birth_date", "sex", "phone", "account", "registered_by")
    exclude = ("id_number_hash", "id_number_encrypted")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if object_id.isdigit() and Patient.objects.filter(pk=int(object_id)).exists():
            audit.record(request.user, "patient.chart.view", None, patient=int(object_id), detail={"via": "admin"})
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(FamilyLink)
class FamilyLinkAdmin(admin.ModelAdmin):
    list_display = ("holder", "patient", "relationship", "is_guardian", "ended_at")
    readonly_fields = ("holder", "patient", "relationship", "is_guardian", "created_at", "ended_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
