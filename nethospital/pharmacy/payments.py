"""Payment providers: one small interface, a deterministic sandbox, and cash at the station.

A provider takes money for an order (``charge``) and gives it back (``refund``). The actions in
``actions.py`` call it inside their transaction with a reference derived from the order and the
client's idempotency key, so a retried request reaches the provider with the same reference and a
real provider de-duplicates it; the sandbox answers the same reference with the same result.

Providers are named by ``PaymentMethod`` and can be replaced with the setting
``NETHOSPITAL_PAYMENT_PROVIDERS`` (method → dotted path of a class), e.g. to plug in a real
acquirer. Nothing here stores card data: the sandbox's "card number" is a test token.

The sandbox (deterministic, no network):

======================  =====================================================================
token (test card)       result
======================  =====================================================================
4000 0000 0000 0002     declined: "card declined"
4000 0000 0000 9995     declined: "insufficient funds"
anything else           paid (an empty token too); reference ``sbx_ch_`` + hash of the reference
======================  =====================================================================

Cash at the station is not a charge: the order waits for the station operator, who records the
cash taken when the patient picks the medicine up (``collect``). Cancelling before that voids it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from nethospital.pharmacy.choices import PaymentMethod

SANDBOX_DECLINED = "4000000000000002"
SANDBOX_INSUFFICIENT_FUNDS = "4000000000009995"
SANDBOX_SUCCESS = "4242424242424242"


@dataclass(frozen=True)
class ChargeResult:
    """What the provider said: paid, declined (with the reason), or pending (cash to collect)."""

    status: str  # "succeeded" | "failed" | "pending"
    reference: str
    failure_reason: str = ""


@dataclass(frozen=True)
class RefundResult:
    succeeded: bool
    reference: str
    failure_reason: str = ""
    voided: bool = False  # nothing had been taken: the payment is voided, not refunded


class PaymentProvider(Protocol):
    name: str

    def charge(self, *, amount: Decimal, currency: str, reference: str, token: str = "") -> ChargeResult: ...

    def refund(
        self, *, amount: Decimal, currency: str, charge_reference: str, reference: str, collected: bool
    ) -> RefundResult: ...


def _digest(prefix: str, reference: str) -> str:
    return prefix + hashlib.sha256(reference.encode()).hexdigest()[:24]


class SandboxProvider:
    """A deterministic stand-in for an online acquirer: same reference, same answer."""

    name = "sandbox"

    def charge(self, *, amount: Decimal, currency: str, reference: str, token: str = "") -> ChargeResult:
        card = "".join(ch for ch in token if ch.isdigit())
        if amount <= 0:
            return ChargeResult("failed", "", str(_("the amount must be more than zero")))
        if card == SANDBOX_DECLINED:
            return ChargeResult("failed", _digest("sbx_ch_", reference), str(_("card declined (sandbox)")))
        if card == SANDBOX_INSUFFICIENT_FUNDS:
            return ChargeResult("failed", _digest("sbx_ch_", reference), str(_("insufficient funds (sandbox)")))
        return ChargeResult("succeeded", _digest("sbx_ch_", reference))

    def refund(
        self, *, amount: Decimal, currency: str, charge_reference: str, reference: str, collected: bool
    ) -> RefundResult:
        if not charge_reference:
            return RefundResult(False, "", str(_("nothing was charged")))
        return RefundResult(True, _digest("sbx_re_", reference))


class CashAtStationProvider:
    """Cash handed to the station operator at pickup; nothing is charged online."""

    name = "cash_at_station"

    def charge(self, *, amount: Decimal, currency: str, reference: str, token: str = "") -> ChargeResult:
        return ChargeResult("pending", _digest("cash_", reference))

    def refund(
        self, *, amount: Decimal, currency: str, charge_reference: str, reference: str, collected: bool
    ) -> RefundResult:
        if not collected:
            return RefundResult(True, "", voided=True)
        # Cash taken is given back in cash by the station operator; the record says so.
        return RefundResult(True, _digest("cash_re_", reference))


_DEFAULTS: dict[str, str] = {
    PaymentMethod.SANDBOX: "nethospital.pharmacy.payments.SandboxProvider",
    PaymentMethod.CASH_AT_STATION: "nethospital.pharmacy.payments.CashAtStationProvider",
}


def provider_for(method: str) -> PaymentProvider:
    paths: dict[str, str] = {**_DEFAULTS, **settings.NETHOSPITAL_PAYMENT_PROVIDERS}
    provider_class = import_string(paths[method])
    return provider_class()  # type: ignore[no-any-return]
