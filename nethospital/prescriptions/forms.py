"""Forms of the prescription pages. They only parse input (types and choices); every prescribing rule
(doses, days of supply, validity, weight, who may do what) is checked by the action the view calls,
whose ``DomainError`` is shown next to its field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.choices import Frequency, RejectReason, ReviewDecision, Route, SupplyKind

VALIDITY_CHOICES = [
    (1, _("the day of issue")),
    (2, _("2 days")),
    (3, _("3 days (the most, R13)")),
]


class DraftForm(forms.Form):
    """The prescription's head: kind of supply (R13), validity (R13), the child's weight, notes."""

    supply_kind = forms.ChoiceField(label=_("Kind of supply"), choices=SupplyKind.choices)
    supply_reason = forms.CharField(
        label=_("Reason for a longer supply"),
        required=False,
        max_length=300,
        help_text=_("Required for a chronic-disease or long prescription (R13)."),
    )
    valid_days = forms.TypedChoiceField(label=_("Valid for"), coerce=int, choices=VALIDITY_CHOICES)
    # Text, not a number field: the action checks the range and says so in the user's language.
    patient_weight_kg = forms.CharField(
        label=_("Patient's weight (kg)"),
        required=False,
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        help_text=_("Required for a child."),
    )
    notes = forms.CharField(label=_("Notes"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class NewDraftForm(DraftForm):
    """The head of a new draft, with the key that makes posting the same form twice start one draft."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)


class ItemRowForm(forms.Form):
    """One row of the item list. A row whose drug is empty is an empty row and is left out."""

    drug = forms.CharField(
        label=_("Drug"),
        required=False,
        max_length=80,
        widget=forms.TextInput(
            attrs={
                "list": "drug-options",
                "autocomplete": "off",
                "placeholder": _("name (中文 / English) or code"),
                # htmx: the catalogue search fills the shared datalist while the doctor types.
                "hx-get": reverse_lazy("prescriptions:drug_search"),
                "hx-trigger": "input changed delay:250ms",
                "hx-target": "#drug-options",
                "hx-swap": "innerHTML",
                "hx-sync": "this:replace",
            }
        ),
    )
    dose = forms.CharField(
        label=_("Dose (units)"),
        required=False,
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    frequency = forms.ChoiceField(label=_("Frequency"), required=False, choices=Frequency.choices)
    route = forms.ChoiceField(
        label=_("Route"), required=False, choices=[("", _("the drug's usual route")), *Route.choices]
    )
    days = forms.IntegerField(label=_("Days"), required=False, widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
    quantity = forms.IntegerField(
        label=_("Quantity (packs)"),
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=_("Leave empty to compute it from dose, frequency and days."),
    )
    notes = forms.CharField(label=_("Instructions"), required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("drug") or "").strip():
            if not (data.get("dose") or "").strip():
                self.add_error("dose", _("This field is required."))
            if data.get("days") is None:
                self.add_error("days", _("This field is required."))
        return data

    def item_input(self) -> ItemInput:
        data = self.cleaned_data
        return ItemInput(
            drug=data["drug"].strip(),
            dose=data["dose"].strip(),
            frequency=data["frequency"] or Frequency.QD,
            days=data["days"],
            route=data["route"] or "",
            quantity=data["quantity"],
            notes=data["notes"] or "",
        )


def item_rows(data: Any = None, initial: list[dict[str, Any]] | None = None) -> list[ItemRowForm]:
    """As many rows as a prescription may have (``NETHOSPITAL_MAX_PRESCRIPTION_ITEMS``)."""
    initial = initial or []
    rows = []
    for index in range(settings.NETHOSPITAL_MAX_PRESCRIPTION_ITEMS):
        row_initial = initial[index] if index < len(initial) else {"frequency": Frequency.QD}
        rows.append(ItemRowForm(data, prefix=f"items-{index}", initial=row_initial))
    return rows


class OverrideForm(forms.Form):
    rule = forms.CharField(max_length=40, widget=forms.HiddenInput)
    subject = forms.CharField(max_length=120, widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason for going on despite the warning"), required=False, max_length=300)


class ReasonForm(forms.Form):
    """The doctor's reason to amend or cancel."""

    reason = forms.CharField(label=_("Reason"), required=False, max_length=300)


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(label=_("Decision"), choices=ReviewDecision.choices, widget=forms.RadioSelect)
    reason_codes = forms.MultipleChoiceField(
        label=_("Reasons for a rejection"),
        required=False,
        choices=RejectReason.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    note = forms.CharField(
        label=_("Note, or the question for the doctor"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
