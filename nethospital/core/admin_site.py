from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


class NetHospitalAdminSite(admin.AdminSite):
    """The back office. It shows patient data, so staff need a second factor in this session (R6)."""

    site_header = "Net Hospital back office"
    site_title = "Net Hospital"

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_permission(request) and getattr(request.user, "is_mfa_verified", False))


class NetHospitalAdminConfig(AdminConfig):
    default_site = "nethospital.core.admin_site.NetHospitalAdminSite"
