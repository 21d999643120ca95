"""Forms of the pharmacy pages. They only parse; the rules are the actions' (``actions.py``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from nethospital.directory.models import Organization
from nethospital.pharmacy.actions import MAX_OTC_QUANTITY
from nethospital.pharmacy.choices import Fulfilment, PaymentMethod
from nethospital.pharmacy.models import Offer
from nethospital.pharmacy.payments import SANDBOX_SUCCESS


class OrderForm(forms.Form):
    """The patient's order for one prescription at one pharmacy, with optional OTC items."""

    fulfilment = forms.ChoiceField(
        label=_("How do you want to receive it?"),
        choices=Fulfilment.choices,
        widget=forms.RadioSelect,
        initial=Fulfilment.DELIVERY,
    )
    recipient_name = forms.CharField(label=_("Recipient"), max_length=50, required=False)
    recipient_phone = forms.CharField(label=_("Recipient's mobile phone"), max_length=11, required=False)
    address = forms.CharField(label=_("Delivery address"), max_length=200, required=False)
    station = forms.ModelChoiceField(
        label=_("Service station for pickup"), queryset=Organization.objects.none(), required=False
    )
    payment_method = forms.ChoiceField(
        label=_("Payment"), choices=PaymentMethod.choices, widget=forms.RadioSelect, initial=PaymentMethod.SANDBOX
    )
    notice = forms.BooleanField(
        label=_(
            "I understand that prescription drugs are bought and used on a prescription, under a pharmacist's "
            "guidance (R16)."
        ),
        required=False,
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, stations: Any, otc_offers: list[tuple[Offer, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = stations  # type: ignore[attr-defined]
        self.otc_offers = otc_offers
        for offer, available in otc_offers:
            self.fields[f"otc_{offer.drug_pack_id}"] = forms.IntegerField(
                label=f"{offer.drug_pack.drug} · ¥{offer.price}",
                min_value=0,
                # The stock is checked by the action (a retry of a placed order must not fail here
                # because its own boxes are now reserved); the page only hints at what is left.
                max_value=MAX_OTC_QUANTITY,
                initial=0,
                required=False,
                widget=forms.NumberInput(attrs={"inputmode": "numeric", "max": min(MAX_OTC_QUANTITY, available)}),
            )

    def otc_fields(self) -> list[Any]:
        return [self[f"otc_{offer.drug_pack_id}"] for offer, _available in self.otc_offers]

    def main_fields(self) -> list[Any]:
        return [self[name] for name in ("fulfilment", "recipient_name", "recipient_phone", "address", "station")]

    def otc_quantities(self) -> dict[int, int]:
        return {
            offer.drug_pack_id: self.cleaned_data.get(f"otc_{offer.drug_pack_id}") or 0
            for offer, _available in self.otc_offers
            if self.cleaned_data.get(f"otc_{offer.drug_pack_id}")
        }


class OtcOrderForm(OrderForm):
    """An order of non-prescription drugs only, for the buyer or someone they are guardian of (R18).
    No prescription, so no R16 notice; at least one quantity is required (the action says so)."""

    patient = forms.TypedChoiceField(label=_("For whom"), coerce=int)

    def __init__(self, *args: Any, patients: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["notice"]
        self.fields["patient"].choices = patients  # type: ignore[attr-defined]

    def main_fields(self) -> list[Any]:
        return [self["patient"], *super().main_fields()]


class PayForm(forms.Form):
    card = forms.CharField(
        label=_("Card number (sandbox: no money moves)"),
        max_length=24,
        initial=SANDBOX_SUCCESS,
        required=False,
        help_text=_("4000 0000 0000 0002 is declined; any other number is paid."),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)


class ScanForm(forms.Form):
    code = forms.CharField(
        label=_("Scan or type the box's code"),
        max_length=300,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "spellcheck": "false"}),
    )


class CodesForm(forms.Form):
    codes = forms.CharField(
        label=_("Scan or type the codes, one per line"),
        widget=forms.Textarea(attrs={"rows": 5, "autocomplete": "off", "spellcheck": "false"}),
        max_length=100_000,
    )

    def code_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["codes"].splitlines() if line.strip()]


class DeliverForm(forms.Form):
    code = forms.CharField(
        label=_("Delivery code from the patient"),
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class PickupForm(forms.Form):
    identity_checked = forms.BooleanField(label=_("I checked the identity document of the person"), required=False)
    cash_received = forms.BooleanField(label=_("I received the amount in cash"), required=False)


class PriceForm(forms.Form):
    drug_pack = forms.IntegerField(widget=forms.HiddenInput)
    price = forms.DecimalField(label=_("Price (yuan)"), max_digits=10, decimal_places=2)
    on_sale = forms.BooleanField(label=_("On sale"), required=False, initial=True)
