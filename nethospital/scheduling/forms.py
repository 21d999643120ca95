"""Forms of the scheduling pages. They only parse input (types, ranges, choices); every booking and
schedule rule is checked by the action the view calls, whose ``DomainError`` is shown next to its
field (``accounts.forms.show_domain_error``)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.models import Patient
from nethospital.directory.choices import OrganizationKind, Title
from nethospital.directory.models import Organization, Specialty
from nethospital.scheduling.choices import AppointmentStatus, Modality, Period, Weekday

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
PHYSICIAN_TITLES = [
    (t.value, t.label)
    for t in (
        Title.CHIEF_PHYSICIAN,
        Title.ASSOCIATE_CHIEF_PHYSICIAN,
        Title.ATTENDING_PHYSICIAN,
        Title.RESIDENT_PHYSICIAN,
    )
]
ORDER_CHOICES = [
    ("relevance", _("relevance")),
    ("next_free", _("next free slot")),
    ("title", _("title")),
]


def patient_choices(patients: Iterable[Patient], own_account_id: int | None) -> list[tuple[int, str]]:
    choices = []
    for patient in patients:
        label = patient.legal_name
        if patient.account_id == own_account_id:
            label = gettext("%(name)s (myself)") % {"name": patient.legal_name}
        choices.append((patient.pk, label))
    return choices


class SearchForm(forms.Form):
    """The doctor search (every field optional; an empty search lists every bookable doctor)."""

    text = forms.CharField(
        label=_("Symptom, department or doctor's name"),
        max_length=50,
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("e.g. 头痛 / headache / 心血管")}),
    )
    hospital = forms.ModelChoiceField(
        label=_("Hospital"),
        queryset=Organization.objects.filter(kind=OrganizationKind.HOSPITAL).order_by("name_zh"),
        required=False,
        empty_label=_("any hospital"),
    )
    department = forms.ChoiceField(label=_("Department"), required=False)
    city = forms.CharField(label=_("City"), max_length=40, required=False)
    title = forms.ChoiceField(label=_("Title"), required=False, choices=[("", _("any title")), *PHYSICIAN_TITLES])
    modality = forms.ChoiceField(
        label=_("Visit type"), required=False, choices=[("", _("any visit type")), *Modality.choices]
    )
    free_within_days = forms.IntegerField(
        label=_("Has a free slot within (days)"), required=False, min_value=0, max_value=60
    )
    order = forms.ChoiceField(label=_("Order by"), required=False, choices=ORDER_CHOICES)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        specialties = Specialty.objects.filter(departments__isnull=False).distinct().order_by("code")
        department_choices: list[tuple[str, str]] = [("", str(_("any department")))]
        department_choices += [(s.code, str(s)) for s in specialties]
        self.fields["department"].choices = department_choices  # type: ignore[attr-defined]


class BookingForm(forms.Form):
    patient = forms.TypedChoiceField(label=_("Who is the appointment for?"), coerce=int)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: object, patients: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["patient"].choices = patients  # type: ignore[attr-defined]


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), max_length=200, required=False)


class RescheduleForm(forms.Form):
    slot = forms.TypedChoiceField(label=_("New time"), coerce=int, widget=forms.RadioSelect)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: object, slots: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["slot"].choices = slots  # type: ignore[attr-defined]


class WaitlistForm(forms.Form):
    practitioner = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    day = forms.DateField(label=_("Day"), widget=DATE_INPUT)
    patient = forms.IntegerField(label=_("Patient"), min_value=1)


class AcceptOfferForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)


class MarkForm(forms.Form):
    status = forms.ChoiceField(
        choices=[
            (AppointmentStatus.CHECKED_IN.value, AppointmentStatus.CHECKED_IN.label),
            (AppointmentStatus.NO_SHOW.value, AppointmentStatus.NO_SHOW.label),
            (AppointmentStatus.COMPLETED.value, AppointmentStatus.COMPLETED.label),
        ]
    )


class DayForm(forms.Form):
    day = forms.DateField(label=_("Day"), required=False, widget=DATE_INPUT)


class SessionForm(forms.Form):
    """A recurring (weekday) or one-off (date) clinic session."""

    weekday = forms.TypedChoiceField(
        label=_("Every (weekday)"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", _("— one-off session —")), *Weekday.choices],
        help_text=_("Choose a weekday for a recurring session, or leave it empty and give a date."),
    )
    on_date = forms.DateField(label=_("One-off date"), required=False, widget=DATE_INPUT)
    period = forms.ChoiceField(label=_("Period"), choices=Period.choices)
    start_time = forms.TimeField(label=_("Starts"), widget=TIME_INPUT)
    end_time = forms.TimeField(label=_("Ends"), widget=TIME_INPUT)
    slot_minutes = forms.IntegerField(label=_("Slot length (minutes)"), min_value=5, max_value=240, initial=15)
    capacity = forms.IntegerField(label=_("Patients per slot"), min_value=1, max_value=200, initial=1)
    modality = forms.ChoiceField(label=_("Visit type"), choices=Modality.choices)
    fee = forms.DecimalField(
        label=_("Fee (CNY)"), min_value=Decimal("0"), max_value=Decimal("100000"), decimal_places=2, initial=0
    )
    valid_from = forms.DateField(label=_("Valid from"), required=False, widget=DATE_INPUT)
    valid_until = forms.DateField(label=_("Valid until"), required=False, widget=DATE_INPUT)


class ClosureForm(forms.Form):
    first_day = forms.DateField(label=_("First day"), widget=DATE_INPUT)
    last_day = forms.DateField(label=_("Last day"), widget=DATE_INPUT)
    reason = forms.CharField(label=_("Reason"), max_length=200, help_text=_("e.g. leave, public holiday"))
