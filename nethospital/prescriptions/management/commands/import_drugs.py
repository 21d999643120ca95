from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nethospital.prescriptions.catalogue import COLUMNS, DATA_DIR, CatalogueError, import_catalogue


class Command(BaseCommand):
    help = (
        "Import the drug catalogue from a directory of CSV files ("
        + ", ".join(COLUMNS)
        + "). Every row is checked first; if any row is bad, nothing changes. Importing the same files"
        " again changes nothing. Without DIR, the packaged seed catalogue is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", nargs="?", default=str(DATA_DIR), metavar="DIR")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["directory"])
        try:
            report = import_catalogue(directory, stdout=self.stdout)
        except CatalogueError as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            raise CommandError(f"{len(exc.errors)} problem(s) in {directory}; nothing was imported.") from None
        self.stdout.write(self.style.SUCCESS(f"Imported the catalogue from {directory}."))
        if not report.changed:
            self.stdout.write("Nothing changed: the catalogue already matched the files.")
