"""Who may see and change schedules and appointments."""

from __future__ import annotations

from django.db.models import QuerySet

from nethospital.accounts.access import acts_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import Patient, User
from nethospital.core.errors import NOT_FOUND, PERMISSION_DENIED, DomainError, ensure
from nethospital.directory.access import may_administer
from nethospital.directory.models import Practitioner
from nethospital.scheduling import errors
from nethospital.scheduling.models import Appointment


def patient_for_booking(user: User, patient_id: int) -> Patient:
    """R30: a booking is for oneself or a family member registered on one's account."""
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None or not acts_for(user, patient):
        raise DomainError(errors.NOT_FAMILY, field="patient_id")
    return patient


def may_manage_schedule(user: User, practitioner: Practitioner) -> bool:
    """The doctor themself, or an admin of the doctor's hospital (with MFA, R6)."""
    if not user.is_authenticated or not user.is_mfa_verified:
        return False
    if practitioner.user_id == user.pk:
        return True
    return may_administer(user, practitioner.primary_institution_id)


def appointments_visible_to(user: User) -> QuerySet[Appointment]:
    """A patient's (and their family's) appointments; a doctor's own list is separate (doctor_day)."""
    from nethospital.accounts.access import patients_acted_for

    ids = [p.pk for p in patients_acted_for(user)]
    return Appointment.objects.filter(patient_id__in=ids)


def access_appointment(user: User, appointment_id: int, action: str = "view") -> Appointment:
    """As the patient's side (the patient or a family holder) or as the appointment's doctor, or an
    admin of its hospital; anything else looks like a missing appointment."""
    appointment = (
        Appointment.objects.select_related("slot", "patient", "practitioner", "hospital")
        .filter(pk=appointment_id)
        .first()
    )
    ensure(appointment is not None and user.is_authenticated, errors.APPOINTMENT_NOT_FOUND)
    assert appointment is not None
    if acts_for(user, appointment.patient):
        return appointment
    if action in ("view", "mark") and may_manage_schedule(user, appointment.practitioner):
        return appointment
    if user.has_role(Role.DOCTOR) and appointment.practitioner.user_id == user.pk:
        raise DomainError(PERMISSION_DENIED)  # the doctor without MFA
    raise DomainError(NOT_FOUND)
