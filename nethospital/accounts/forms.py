"""Forms of the account pages. They only parse input (types, lengths, the repeated password); every
rule is checked by the action the view calls, whose ``DomainError`` is shown next to its field."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from nethospital.accounts.choices import Relationship, Sex
from nethospital.core.errors import DomainError

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def show_domain_error(form: forms.Form, exc: DomainError) -> None:
    """Put each of the action's field errors next to its field; anything else above the form."""
    field_errors = exc.field_errors()
    for name, messages in field_errors.items():
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message)
    if not field_errors:
        form.add_error(None, exc.message)


class RealNameForm(forms.Form):
    legal_name = forms.CharField(
        label=_("Legal name"),
        max_length=200,
        help_text=_("As on your resident identity card."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    id_number = forms.CharField(
        label=_("Resident identity number"),
        max_length=40,
        help_text=_("18 characters. It is stored encrypted and only ever shown masked."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text", "spellcheck": "false"}),
    )
    birth_date = forms.DateField(label=_("Birth date"), widget=DATE_INPUT)
    sex = forms.ChoiceField(label=_("Sex"), choices=Sex.choices, widget=forms.RadioSelect)


class SignUpForm(RealNameForm):
    field_order = ["email", "password", "password2", "legal_name", "id_number", "birth_date", "sex", "phone"]

    email = forms.CharField(
        label=_("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=128,
        strip=False,
        help_text=_("At least 10 characters; not only digits, not a common password."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password (again)"),
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=30,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("password") and data.get("password2") and data["password"] != data["password2"]:
            self.add_error("password2", _("The two passwords do not match."))
        return data


class OwnIdentityForm(RealNameForm):
    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=30,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )


class FamilyMemberForm(RealNameForm):
    relationship = forms.ChoiceField(
        label=_("This person is my"),
        choices=[("", "---------"), *Relationship.choices],
    )
    phone = forms.CharField(
        label=_("Mobile phone (optional)"),
        max_length=30,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)
