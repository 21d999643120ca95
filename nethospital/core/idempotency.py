"""Idempotency keys: a client names a creating request so that a retry returns what the first one
made instead of making it twice. Each app stores the key on what it creates, unique per account;
this module only checks the key's shape and holds the two refusals the apps share."""

from __future__ import annotations

import uuid

from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode, ensure

IDEMPOTENCY_KEY_INVALID = ErrorCode(
    "idempotency_key_invalid", _("Send an Idempotency-Key of 8 to 64 printable characters.")
)
IDEMPOTENCY_KEY_REUSED = ErrorCode(
    "idempotency_key_reused", _("This Idempotency-Key was already used for a different request."), 409
)


def clean_key(key: str | None, *, invalid: ErrorCode = IDEMPOTENCY_KEY_INVALID) -> str:
    """The key without surrounding blanks; refused (``invalid``) unless 8 to 64 printable characters."""
    key = (key or "").strip()
    ensure(8 <= len(key) <= 64 and key.isprintable(), invalid, field="idempotency_key")
    return key


def new_key() -> str:
    """A fresh key for each rendered form: posting the same form twice acts once."""
    return uuid.uuid4().hex
