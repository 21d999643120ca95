"""Access helpers for accounts: the authenticated user of a request, typed."""

from __future__ import annotations

from django.http import HttpRequest

from nethospital.accounts.models import User
from nethospital.core.errors import LOGIN_REQUIRED, DomainError


def authenticated_user(request: HttpRequest) -> User:
    """The logged-in user, or a 401 refusal (API handlers behind django_auth always have one)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise DomainError(LOGIN_REQUIRED)
    return user
