from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from nethospital.accounts import policy


def roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": set(), "needs_mfa": False}
    return {
        "user_roles": user.roles(),
        "needs_mfa": policy.requires_mfa(user) and not getattr(user, "is_mfa_verified", False),
    }
