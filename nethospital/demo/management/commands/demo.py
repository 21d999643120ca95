"""``nethospital demo``: seed the bilingual demo data through the real actions, then print the logins.

Idempotent: a second run creates nothing (and writes no audit entry) and prints the logins again.
Deterministic: the patients come from a fixed random seed. Refused in production, because every
demo account shares a published password and a published TOTP secret.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from nethospital.core import clock
from nethospital.demo import data
from nethospital.demo.seed import seed
from nethospital.directory.choices import Title, VerificationStatus

HOSPITAL_LABELS = {
    "city": "First Affiliated Hosp.",
    "county": "Qingxi County Hosp.",
    "township": "Baisha Township HC",
    "pharmacy_city": "Kangmin Pharmacy",
    "pharmacy_county": "Baicaotang Pharmacy",
    "station_xikou": "Xikou station",
    "station_shimen": "Shimen station",
    "station_qingshan": "Qingshan station",
}
ROLE_LABELS = {
    "platform_admin": "platform admin",
    "regulator": "regulator",
    "hospital_admin": "hospital admin",
    "doctor": "doctor",
    "pharmacist": "pharmacist",
    "pharmacy_staff": "pharmacy staff",
    "courier": "courier",
    "station_operator": "station operator",
    "patient": "patient",
}
PATIENT_HINTS: dict[int, str] = {
    1: "own chart; 'who looked at my records' /me/access-log/ lists Dr 陈志远 and Dr 王建国 (R23)",
    3: "family /me/family/: a son under 6, she is his guardian (R3); his access log lists Dr 黄静",
    5: "rural patient (Chun'an): registered at the city and the county hospital",
    7: "father of two children (about 2 and 9)",
    12: "acts for her elderly mother; the mother's access log lists Dr 罗秀英",
    15: "acts for both elderly parents",
    26: "grandmother and guardian of a grandson under 6 (R3)",
}


def login_lines() -> list[str]:
    """The table of demo logins, one account per line."""
    rows: list[tuple[str, str, str, str]] = []
    for admin in data.ADMINS:
        where = f" ({HOSPITAL_LABELS[admin.organisation]})" if admin.organisation else ""
        mfa = "TOTP" if admin.has_totp else "-"
        rows.append((ROLE_LABELS[admin.role], admin.email, mfa, f"{admin.display_name}{where}: {admin.try_this}"))
    for practitioner in [*data.DOCTORS, *data.PHARMACISTS]:
        role = "pharmacist" if practitioner.is_pharmacist else "doctor"
        status = practitioner.status
        flag = "" if status == VerificationStatus.VERIFIED else f" [{status.upper()}]"
        department = f", {data.SPECIALTIES[practitioner.department][1]}" if practitioner.department else ""
        with translation.override("en"):
            title = str(Title(practitioner.title).label)
        who = (
            f"{practitioner.legal_name} {practitioner.name_en}{flag}, {title}{department}, "
            f"{HOSPITAL_LABELS[practitioner.organisation]}"
        )
        if practitioner.try_this:
            who += f": {practitioner.try_this}"
        rows.append((role, practitioner.email, "TOTP" if practitioner.has_totp else "none", who))
    for staff in data.OTHER_STAFF:
        who = f"{staff.display_name} ({HOSPITAL_LABELS[staff.organisation]})"
        rows.append((ROLE_LABELS[staff.role], staff.email, "-", who))
    plans = {plan.number: plan for plan in data.patient_plan(clock.today())}
    for number, hint in PATIENT_HINTS.items():
        plan = plans[number]
        rows.append(("patient", plan.email, "-", f"{plan.person.legal_name}: {hint}"))
    rows.append(
        ("patient", f"patient01…patient50@{data.EMAIL_DOMAIN}", "-", "50 patients, all registered at the city hospital")
    )

    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    header = ("role", "e-mail", "2FA", "who / what to try")
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return lines


class Command(BaseCommand):
    help = "Seed the bilingual demo data through the real actions (idempotent) and print the demo logins."

    def handle(self, *args: Any, **options: Any) -> None:
        if getattr(settings, "IS_PRODUCTION", False):
            raise CommandError(
                "The demo data has a published password and TOTP secret: it is never seeded in production."
            )
        result = seed()
        if result.total:
            made = ", ".join(f"{count} {what}" for what, count in result.created.items())
            self.stdout.write(self.style.SUCCESS(f"Demo data seeded: {made}."))
        else:
            self.stdout.write("Demo data already present: nothing created.")
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING("Net Hospital demo logins"))
        self.stdout.write(f"Password of every demo account: {data.DEMO_PASSWORD}")
        self.stdout.write(
            f"2FA = TOTP: after the password, enter a code for the published secret {data.TOTP_SECRET}\n"
            "  (add it to any authenticator app; one entry serves every demo account), or run\n"
            "  `python manage.py demo_totp <e-mail>` (or `nethospital demo_totp <e-mail>`) for the current code.\n"
            "2FA = none: a doctor without a second factor yet, to show the set-up flow (R6)."
        )
        self.stdout.write("")
        for line in login_lines():
            self.stdout.write(line)
        self.stdout.write("")
        self.stdout.write("Sign-up of a new patient: /accounts/signup/ (real name and a valid identity number).")
