"""Checks of real-name input shared by the sign-up form, the family form and the JSON API, so each
refusal names its field and reason in the user's language, the same on every channel."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from nethospital.accounts import errors, identity
from nethospital.accounts.choices import Sex
from nethospital.core.errors import INVALID_INPUT, DomainError, ErrorCode

LEGAL_NAME = re.compile(r"^[\u3400-\u9fffA-Za-z][\u3400-\u9fffA-Za-z·\.\- ]{0,48}[\u3400-\u9fffA-Za-z]$")
MOBILE = re.compile(r"^1[3-9]\d{9}$")


class FieldErrors:
    """Collects every field's problems so that a form shows them all at once."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, error: ErrorCode | str) -> None:
        message = str(error.message) if isinstance(error, ErrorCode) else error
        self.fields.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            raise DomainError(INVALID_INPUT, fields=self.fields)


@dataclass(frozen=True)
class RealName:
    legal_name: str
    resident: identity.ResidentIdentity
    phone: str


def clean_legal_name(value: str, problems: FieldErrors) -> str:
    name = " ".join((value or "").split())
    if not name:
        problems.add("legal_name", errors.FIELD_REQUIRED)
    elif len(name) > 50:
        problems.add("legal_name", errors.FIELD_TOO_LONG)
    elif not LEGAL_NAME.match(name):
        problems.add("legal_name", errors.LEGAL_NAME_INVALID)
    return name


def clean_phone(value: str, problems: FieldErrors, *, required: bool) -> str:
    phone = (value or "").strip().replace(" ", "").replace("-", "")
    if phone.startswith("+86"):
        phone = phone[3:]
    if not phone:
        if required:
            problems.add("phone", errors.FIELD_REQUIRED)
    elif len(phone) > 20 or not MOBILE.match(phone):
        problems.add("phone", errors.PHONE_INVALID)
    return phone


def clean_real_name(
    *,
    legal_name: str,
    id_number: str,
    birth_date: dt.date | None,
    sex: str | None,
    phone: str,
    phone_required: bool,
    problems: FieldErrors | None = None,
) -> RealName:
    """Check name, identity number, and that the birth date and sex given match the number."""
    own = problems is None
    problems = problems or FieldErrors()
    name = clean_legal_name(legal_name, problems)
    phone = clean_phone(phone, problems, required=phone_required)
    resident = None
    if not (id_number or "").strip():
        problems.add("id_number", errors.FIELD_REQUIRED)
    elif len(id_number) > 40:
        problems.add("id_number", errors.ID_NUMBER_LENGTH)
    else:
        try:
            resident = identity.parse(id_number)
        except DomainError as exc:
            problems.add("id_number", exc.message)
    if sex is not None and sex not in Sex.values:
        problems.add("sex", errors.CHOICE_INVALID)
    if resident is not None:
        if birth_date is not None and birth_date != resident.birth_date:
            problems.add("birth_date", errors.BIRTH_DATE_MISMATCH)
        if sex in Sex.values and sex != resident.sex:
            problems.add("sex", errors.SEX_MISMATCH)
    if own:
        problems.raise_if_any()
    assert resident is not None or problems.fields
    return RealName(legal_name=name, resident=resident, phone=phone)  # type: ignore[arg-type]


def clean_email(value: str, problems: FieldErrors) -> str:
    email = (value or "").strip().lower()
    if not email:
        problems.add("email", errors.FIELD_REQUIRED)
    elif len(email) > 254:
        problems.add("email", errors.FIELD_TOO_LONG)
    else:
        try:
            validate_email(email)
        except ValidationError:
            problems.add("email", errors.EMAIL_INVALID)
    return email


def check_password(password: str, problems: FieldErrors, *, email: str = "") -> None:
    if not password:
        problems.add("password", errors.FIELD_REQUIRED)
        return
    if len(password) > 128:
        problems.add("password", errors.FIELD_TOO_LONG)
        return
    try:
        password_validation.validate_password(password)
    except ValidationError as exc:
        for message in exc.messages:
            problems.add("password", message)
