"""``nethospital demo_totp <e-mail>``: the current TOTP code of a demo account.

Only for authenticators holding the published demo secret (so it can never reveal the code of a
real account), and never in production.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from nethospital.accounts.models import User
from nethospital.demo import data
from nethospital.testing.totp import code_for

PERIOD = 30


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo account (one that uses the published demo secret)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="e-mail address of the demo account")

    def handle(self, *args: Any, **options: Any) -> None:
        if getattr(settings, "IS_PRODUCTION", False):
            raise CommandError("Demo TOTP codes are not available in production.")
        user = User.objects.filter(email__iexact=options["email"].strip()).first()
        if user is None:
            raise CommandError(f"No account with the e-mail address {options['email']!r}.")
        authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if authenticator is None:
            raise CommandError(f"{user.email} has no TOTP authenticator (set one up at /accounts/2fa/).")
        if decrypt(authenticator.data["secret"]) != data.TOTP_SECRET:
            raise CommandError(f"{user.email} does not use the published demo secret: no code is printed.")
        now = time.time()
        remaining = PERIOD - int(now) % PERIOD
        self.stdout.write(f"{code_for(data.TOTP_SECRET, now)}  (valid for {remaining} more s; each code works once)")
