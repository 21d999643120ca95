from __future__ import annotations

from typing import Any

from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_used
from django.dispatch import receiver

from nethospital.accounts import policy


@receiver(authenticator_used)
@receiver(authenticator_added)
def _factor_proven(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Activating TOTP or a passkey requires a valid code / assertion, so it proves the factor too.
    if request is not None and getattr(request, "user", None) is not None and request.user.pk == user.pk:
        policy.mark_session(request)


@receiver(authenticator_removed)
def _factor_removed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from allauth.mfa.utils import is_mfa_enabled

    if request is not None and not is_mfa_enabled(user):
        policy.clear_session_mark(request)
