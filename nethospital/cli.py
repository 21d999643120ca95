"""The ``nethospital`` console script: Django's management commands under one name.

nethospital serve          migrate, seed demo data on first run, serve with uvicorn
nethospital demo           seed the demo data (idempotent)
nethospital audit verify   check the audit log's hash chain
nethospital worker         run the background task worker
nethospital <any Django management command>
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nethospital.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else argv)
    if len(args) < 2:
        args.append("help")
    execute_from_command_line(["nethospital", *args[1:]])


if __name__ == "__main__":
    main()
