"""Read helpers shared by the doctor's day page and the API."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from nethospital.accounts.models import User
from nethospital.core.errors import MFA_REQUIRED, PERMISSION_DENIED, ensure
from nethospital.directory.choices import Profession
from nethospital.directory.models import Practitioner
from nethospital.scheduling.models import Appointment


def doctor_day_appointments(user: User, day: dt.date) -> QuerySet[Appointment]:
    """The doctor's own appointments of a day (patient names are patient data: MFA first, R6). Only
    doctors have a day of appointments: a pharmacist, also a practitioner, is refused like anyone."""
    practitioner = Practitioner.objects.filter(user=user, profession=Profession.PHYSICIAN).first()
    ensure(practitioner is not None, PERMISSION_DENIED)
    ensure(user.is_mfa_verified, MFA_REQUIRED)
    return (
        Appointment.objects.filter(practitioner=practitioner, day=day)
        .select_related("slot", "patient", "practitioner", "hospital")
        .order_by("slot__starts_at", "pk")
    )
