"""Records API: a patient's chart (audited read) and who looked at it (R23)."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security import django_auth

from nethospital.accounts.access import authenticated_user
from nethospital.accounts.api import PatientOut, patient_out
from nethospital.records import access
from nethospital.records.models import Registration

router = Router(tags=["records"])


class RegistrationOut(Schema):
    hospital_id: int
    hospital: str
    medical_record_number: str


class ChartOut(Schema):
    patient: PatientOut
    registrations: list[RegistrationOut]


class AccessLogOut(Schema):
    when: dt.datetime
    who: str
    institution: str
    role: str
    action: str
    outcome: str
    is_self: bool


@router.get("/patients/{patient_id}", response=ChartOut, auth=django_auth, summary="A patient's chart (audited)")
def chart(request: HttpRequest, patient_id: int) -> ChartOut:
    patient = access.access_patient_chart(authenticated_user(request), patient_id)
    registrations = Registration.objects.filter(patient=patient).select_related("hospital").order_by("pk")
    return ChartOut(
        patient=patient_out(patient),
        registrations=[
            RegistrationOut(
                hospital_id=r.hospital_id, hospital=str(r.hospital), medical_record_number=r.medical_record_number
            )
            for r in registrations
        ],
    )


@router.get("/patients/{patient_id}/access-log", response=list[AccessLogOut], auth=django_auth)
def access_log(request: HttpRequest, patient_id: int) -> list[AccessLogOut]:
    return [AccessLogOut(**row) for row in access.access_log_for(authenticated_user(request), patient_id)]
