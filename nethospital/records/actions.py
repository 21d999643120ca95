from __future__ import annotations

from django.db import IntegrityError, transaction

from nethospital.accounts.models import Patient, User
from nethospital.core import audit
from nethospital.directory.models import Organization
from nethospital.records.models import Registration


@transaction.atomic
def register_patient_at_hospital(actor: User, patient: Patient, hospital: Organization) -> Registration:
    """Open (or return) the patient's registration at a hospital; the record number is
    ``<hospital id>-<patient id>`` zero-padded, unique per hospital. Idempotent."""
    existing = Registration.objects.filter(patient=patient, hospital=hospital).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            registration = Registration.objects.create(
                patient=patient,
                hospital=hospital,
                medical_record_number=f"{hospital.pk:04d}{patient.pk:08d}",
                registered_by=actor,
            )
    except IntegrityError:
        return Registration.objects.get(patient=patient, hospital=hospital)
    audit.record(actor, "patient.registration.create", registration, patient=patient, hospital=hospital)
    return registration
