from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    """allauth handles login, e-mail and MFA; patient sign-up is our own real-name form
    (``accounts.views.signup``), so allauth's own sign-up form is closed."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False
