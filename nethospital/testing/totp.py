"""Test and demo helpers for the second factor: a real TOTP authenticator and its current code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time

from allauth.mfa.totp.internal.auth import TOTP


def code_for(secret: str, at: float | None = None, period: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP code for a base32 secret, computed independently of allauth."""
    counter = int((time.time() if at is None else at) // period)
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % (10**digits)
    return f"{value:0{digits}d}"


DEMO_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - a published test secret, never a real one


def enable_totp(user, secret: str = DEMO_SECRET) -> str:  # type: ignore[no-untyped-def]
    """Give ``user`` a TOTP authenticator (as if they had scanned the QR code); return the secret."""
    TOTP.activate(user, secret)
    return secret
