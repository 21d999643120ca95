"""``nethospital audit verify``: walk the audit chain and report the first broken link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nethospital.core.audit import verify_chain


class Command(BaseCommand):
    help = "Audit log tools. 'verify' checks the hash chain and exits non-zero at the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", choices=["verify"])

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if report.is_intact:
            self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} entries verified."))
            return
        raise CommandError(
            f"Audit chain broken at entry {report.broken_at}: {report.reason} "
            f"({report.checked} entries verified before it)."
        )
