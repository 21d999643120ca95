"""Strong authentication policy (R6): which roles need a second factor, and whether this session
has passed one. allauth provides the factors (TOTP, WebAuthn passkeys, recovery codes); this module
only decides whether they were used."""

from __future__ import annotations

from typing import Any

from allauth.account.authentication import get_authentication_records
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.http import HttpRequest

SESSION_MARK = "nethospital_mfa_user"


def requires_mfa(user: Any) -> bool:
    required = set(settings.NETHOSPITAL_MFA_REQUIRED_ROLES)
    return bool(user.is_authenticated and (user.roles() & required or user.is_staff or user.is_superuser))


def session_passed_mfa(request: HttpRequest) -> bool:
    user = request.user
    if not user.is_authenticated:
        return False
    if request.session.get(SESSION_MARK) == user.pk:
        return True
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, user))


def mark_session(request: HttpRequest) -> None:
    """Called when the user proves a factor in this session (used at login, or just activated)."""
    if request.user.is_authenticated:
        request.session[SESSION_MARK] = request.user.pk


def clear_session_mark(request: HttpRequest) -> None:
    request.session.pop(SESSION_MARK, None)


def is_strongly_authenticated(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated and is_mfa_enabled(request.user) and session_passed_mfa(request))


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The login name django-axes counts failures under: allauth authenticates with ``email``,
    its form posts ``login``; both must count as the same account."""
    for source in (credentials or {}, getattr(request, "POST", {}) or {}):
        for key in ("email", "login", "username"):
            value = source.get(key)
            if value:
                return str(value).strip().lower()
    return ""
