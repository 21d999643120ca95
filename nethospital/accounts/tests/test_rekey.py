"""Changing the identity key: with the old secret listed in NETHOSPITAL_IDENTITY_OLD_KEYS the stored
identities stay readable and duplicates are still found while ``nethospital rekey_identities`` moves
them to the new key; after it they open with the new key alone. A row no configured key opens stops
the run with a clear error and changes nothing in its batch. No number is ever printed."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from cryptography.fernet import InvalidToken
from django.core.management import CommandError, call_command

from nethospital.accounts import actions, errors, identity
from nethospital.accounts.choices import Sex
from nethospital.accounts.models import Patient
from nethospital.core.audit import verify_chain
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry

pytestmark = pytest.mark.django_db

OLD, NEW = "the-identity-secret-of-2025-xxxxxxxxxx", "the-identity-secret-of-2026-yyyyyyyyyy"
BIRTH = dt.date(1990, 3, 7)


def numbers(count: int) -> list[str]:
    return [identity.make_number("330106", BIRTH, 100 + 2 * i, Sex.FEMALE) for i in range(count)]


def sign_up(number: str, n: int) -> Patient:
    user = actions.sign_up_patient(
        email=f"rekey{n}@example.org",
        password="a long enough password 1",
        legal_name="王芳",
        id_number=number,
        birth_date=BIRTH,
        sex=Sex.FEMALE,
        phone=f"139{n:08d}",
    )
    return Patient.objects.get(account=user)


def rekey(*args: str) -> str:
    out = StringIO()
    call_command("rekey_identities", *args, stdout=out)
    return out.getvalue()


def test_identities_move_to_the_new_key_and_stay_findable_meanwhile(settings):
    settings.IDENTITY_KEY = OLD
    stored = numbers(5)
    for n, number in enumerate(stored):
        sign_up(number, n)
    old_rows = dict(Patient.objects.values_list("pk", "id_number_hash"))

    settings.IDENTITY_KEY, settings.NETHOSPITAL_IDENTITY_OLD_KEYS = NEW, [OLD]
    # Before the run: rows under the old key are read, and a second sign-up with one of them is refused.
    assert {identity.decrypt(p.id_number_encrypted) for p in Patient.objects.all()} == set(stored)
    with pytest.raises(DomainError) as refused:
        sign_up(stored[0], 99)
    assert refused.value.field_errors() == {"id_number": [str(errors.ID_NUMBER_TAKEN.message)]}

    dry = rekey("--dry-run", "--batch", "2")
    assert dry == "5 patient identities would be re-keyed; 0 already under the current key.\n"
    assert dict(Patient.objects.values_list("pk", "id_number_hash")) == old_rows  # a dry run changes nothing

    printed = rekey("--batch", "2")
    assert printed == "5 patient identities re-keyed; 0 already under the current key.\n"
    assert not any(number in printed for number in stored)
    settings.NETHOSPITAL_IDENTITY_OLD_KEYS = []  # the old key is retired
    for patient in Patient.objects.all():
        number = identity.decrypt(patient.id_number_encrypted)
        assert patient.id_number_hash == identity.keyed_hash(number) != old_rows[patient.pk]
    with pytest.raises(DomainError) as still_refused:
        sign_up(stored[1], 98)
    assert still_refused.value.field_errors() == {"id_number": [str(errors.ID_NUMBER_TAKEN.message)]}
    assert Patient.objects.count() == 5
    # Run again: nothing left to do. One audit entry per batch that changed rows, chain intact.
    assert rekey() == "0 patient identities re-keyed; 5 already under the current key.\n"
    assert AuditEntry.objects.filter(action="identity.rekey").count() == 3
    assert verify_chain().is_intact


def test_a_row_no_key_opens_stops_the_run_and_its_batch_is_untouched(settings):
    settings.IDENTITY_KEY = OLD
    first, second = numbers(2)
    sign_up(first, 1)
    settings.IDENTITY_KEY = "a-key-nobody-kept-zzzzzzzzzzzzzzzzzzzzz"
    sign_up(second, 2)
    before = dict(Patient.objects.values_list("pk", "id_number_encrypted"))

    settings.IDENTITY_KEY, settings.NETHOSPITAL_IDENTITY_OLD_KEYS = NEW, [OLD]
    with pytest.raises(CommandError) as failed:
        rekey()
    assert "NETHOSPITAL_IDENTITY_OLD_KEYS" in str(failed.value)
    assert first not in str(failed.value) and second not in str(failed.value)
    assert dict(Patient.objects.values_list("pk", "id_number_encrypted")) == before
    with pytest.raises(InvalidToken):
        identity.decrypt(Patient.objects.order_by("pk").last().id_number_encrypted)
