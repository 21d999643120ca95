"""The one-time delivery code: the patient gives it to the courier at the door.

The code is six digits derived from the server's secret key, the order and the code's version
(HMAC-SHA256), so the patient's order page can show it again without the database holding it. The
database holds only a keyed hash of it (``Order.delivery_code_hash``): reading the table does not
reveal the code. Wrong codes are counted; after ``NETHOSPITAL_DELIVERY_CODE_ATTEMPTS`` (default 5)
the code is locked and the patient's side asks for a new one (a new version), which voids the old.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from nethospital.pharmacy.models import Order

CODE_DIGITS = 6


def max_attempts() -> int:
    return int(settings.NETHOSPITAL_DELIVERY_CODE_ATTEMPTS)


def _key() -> bytes:
    return hashlib.sha256(("nethospital.pharmacy.delivery-code:" + settings.SECRET_KEY).encode()).digest()


def code_for(order: Order) -> str:
    message = f"code:{order.pk}:{order.number}:{order.delivery_code_version}".encode()
    digest = hmac.new(_key(), message, hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def hash_of(order: Order, code: str) -> str:
    message = f"check:{order.pk}:{order.delivery_code_version}:{code}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def matches(order: Order, code: str) -> bool:
    cleaned = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(cleaned) != CODE_DIGITS or not order.delivery_code_hash:
        return False
    return hmac.compare_digest(hash_of(order, cleaned), order.delivery_code_hash)


def attempts_left(order: Order) -> int:
    return max(0, max_attempts() - order.delivery_code_failures)


def is_locked(order: Order) -> bool:
    return attempts_left(order) == 0
