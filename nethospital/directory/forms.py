"""Forms of the directory pages: they parse input; the actions decide (R5)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from nethospital.directory.choices import VerificationStatus


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("all")), *VerificationStatus.choices],
    )


class VerificationChangeForm(forms.Form):
    to_status = forms.ChoiceField(choices=VerificationStatus.choices)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=300)
