"""Records pages: the home page of every role, a patient's chart, and who looked at it (R6, R23).
Thin: every chart read goes through ``records.access``, which checks and audits it."""

from __future__ import annotations

from typing import Any

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from nethospital.accounts import policy
from nethospital.accounts.choices import Role
from nethospital.accounts.models import FamilyLink, Patient, User
from nethospital.accounts.views import render_domain_error
from nethospital.core.choices import AuditOutcome
from nethospital.core.errors import DomainError
from nethospital.directory.models import Practitioner
from nethospital.directory.rules import practice_refusal
from nethospital.directory.views import admin_home_context, organisations_context
from nethospital.records import access
from nethospital.records.models import Registration

# --- Home ---------------------------------------------------------------------------------------


def doctor_home_context(user: User) -> dict[str, Any]:
    """The doctor's starting point: their verification (R5), their second factor (R6) and the
    patients registered at their hospitals. The list names patients, so it is shown only to a
    doctor who may open their charts now (verified and strongly authenticated)."""
    practitioner = Practitioner.objects.select_related("user", "primary_institution").filter(user=user).first()
    min_years = settings.NETHOSPITAL_MIN_PRACTICE_YEARS
    refusal = practice_refusal(practitioner) if practitioner is not None else None
    may_see_patients = practitioner is not None and refusal is None and user.is_mfa_verified
    registrations = (
        Registration.objects.filter(hospital_id__in=access.clinician_hospital_ids(user))
        .select_related("patient", "hospital")
        .order_by("-registered_at", "-pk")
    )
    return {
        "is_doctor": True,
        "practitioner": practitioner,
        "practice_refusal": DomainError(refusal, years=min_years).message if refusal is not None else "",
        "doctor_registrations": list(registrations[:100]) if may_see_patients else [],
        "doctor_registration_count": registrations.count(),
        "doctor_may_see_patients": may_see_patients,
    }


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What the service is for visitors; one section per role for users."""
    user = request.user
    if not user.is_authenticated:
        return render(request, "home.html", {})
    roles = user.roles()
    context: dict[str, Any] = {
        "patient": Patient.objects.filter(account=user).first(),
        "family_count": FamilyLink.objects.filter(holder=user, ended_at__isnull=True).count(),
        "mfa_enabled": is_mfa_enabled(user),
        "requires_mfa": policy.requires_mfa(user),
    }
    if Role.DOCTOR in roles:
        context.update(doctor_home_context(user))
    if Role.HOSPITAL_ADMIN in roles or Role.PLATFORM_ADMIN in roles or user.is_superuser:
        context.update(admin_home_context(user))
    other_roles = roles - {Role.PATIENT, Role.DOCTOR, Role.HOSPITAL_ADMIN}
    if other_roles or Role.HOSPITAL_ADMIN in roles:
        context.update(organisations_context(user))
    context["other_roles"] = sorted(str(Role(role).label) for role in other_roles)
    return render(request, "home.html", context)


# --- Chart --------------------------------------------------------------------------------------


@require_GET
def chart(request: HttpRequest, patient_id: int) -> HttpResponse:
    """A patient's chart: demographics (identity number masked), registrations, family."""
    try:
        patient = access.access_patient_chart(request.user, patient_id)  # type: ignore[arg-type]
    except DomainError as exc:
        return render_domain_error(request, exc)
    acts_for = access.acts_for(request.user, patient)  # type: ignore[arg-type]
    context: dict[str, Any] = {
        "patient": patient,
        "registrations": Registration.objects.filter(patient=patient).select_related("hospital").order_by("pk"),
        "acts_for": acts_for,
        "is_self": patient.account_id == request.user.pk,
    }
    if acts_for:
        context["family_holders"] = FamilyLink.objects.filter(patient=patient, ended_at__isnull=True).select_related(
            "holder"
        )
        context["dependants"] = (
            FamilyLink.objects.filter(holder_id=patient.account_id, ended_at__isnull=True).select_related("patient")
            if patient.account_id
            else []
        )
    return render(request, "records/chart.html", context)


# --- Access log ---------------------------------------------------------------------------------

ACTION_LABELS = {
    "view": gettext_lazy("opened the chart"),
}


def _labelled(rows: list[access.AccessLogRow]) -> list[dict[str, Any]]:
    """Words for the audit codes: the action, the outcome and the roles in the reader's language."""
    role_labels = dict(Role.choices)
    outcome_labels = dict(AuditOutcome.choices)
    labelled: list[dict[str, Any]] = []
    for row in rows:
        verb = row["action"].removeprefix("patient.chart.")
        labelled.append(
            {
                **row,
                "action_label": ACTION_LABELS.get(verb, row["action"]),
                "outcome_label": outcome_labels.get(row["outcome"], row["outcome"]),
                "role_labels": ", ".join(str(role_labels.get(r, r)) for r in (row["role"] or "").split(",") if r),
            }
        )
    return labelled


def _access_log_page(request: HttpRequest, patient: Patient | None) -> HttpResponse:
    rows: list[access.AccessLogRow] = []
    if patient is not None:
        try:
            rows = access.access_log_for(request.user, patient.pk)  # type: ignore[arg-type]
        except DomainError as exc:
            return render_domain_error(request, exc)
    return render(request, "records/access_log.html", {"patient": patient, "rows": _labelled(rows)})


@login_required
@require_GET
def my_access_log(request: HttpRequest) -> HttpResponse:
    """Who looked at my records (R23)."""
    return _access_log_page(request, Patient.objects.filter(account_id=request.user.pk).first())


@login_required
@require_GET
def patient_access_log(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Who looked at the records of a patient I act for (R23); 404 for anyone else."""
    try:
        rows = access.access_log_for(request.user, patient_id)  # type: ignore[arg-type]
    except DomainError as exc:
        return render_domain_error(request, exc)
    patient = Patient.objects.get(pk=patient_id)
    return render(request, "records/access_log.html", {"patient": patient, "rows": _labelled(rows)})
