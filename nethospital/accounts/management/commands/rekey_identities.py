"""``nethospital rekey_identities``: move every stored identity number to the current identity key.

Run it after setting the new secret in ``NETHOSPITAL_IDENTITY_KEY`` and the old one in
``NETHOSPITAL_IDENTITY_OLD_KEYS`` on every process (docs/accounts.md). Rows are re-keyed in batches,
each in one transaction under row locks, so an interrupted run leaves every row either under the
old key or the new one and a second run finishes the work. Prints counts only, never a number."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from nethospital.accounts import identity
from nethospital.accounts.models import Patient
from nethospital.core import audit


class Command(BaseCommand):
    help = "Re-encrypt and re-hash every stored identity number with the current NETHOSPITAL_IDENTITY_KEY."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="patients per transaction (default 500)")
        parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        batch = max(1, options["batch"])
        rekeyed = current = 0
        last_pk = 0
        while True:
            with transaction.atomic():
                rows = list(
                    Patient.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .order_by("pk")
                    .only("pk", "id_number_hash", "id_number_encrypted")[:batch]
                )
                if not rows:
                    break
                last_pk = rows[-1].pk
                changed = []
                for patient in rows:
                    if identity.is_current(patient.id_number_encrypted, patient.id_number_hash):
                        current += 1
                        continue
                    try:
                        number = identity.decrypt(patient.id_number_encrypted)
                    except InvalidToken:
                        raise CommandError(
                            f"Patient #{patient.pk}: its identity number opens with neither the current key nor "
                            "the old ones. Put the key it was stored with in NETHOSPITAL_IDENTITY_OLD_KEYS. "
                            f"Nothing was changed in this batch; {rekeyed} patients were re-keyed before it."
                        ) from None
                    patient.id_number_hash = identity.keyed_hash(number)
                    patient.id_number_encrypted = identity.encrypt(number)
                    changed.append(patient)
                if changed and not options["dry_run"]:
                    Patient.objects.bulk_update(changed, ["id_number_hash", "id_number_encrypted"])
                    audit.record(None, "identity.rekey", detail={"patients": len(changed), "through": last_pk})
                rekeyed += len(changed)
        verb = "would be re-keyed" if options["dry_run"] else "re-keyed"
        self.stdout.write(
            self.style.SUCCESS(f"{rekeyed} patient identities {verb}; {current} already under the current key.")
        )
