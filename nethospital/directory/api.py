"""Directory API: organisations (public), and the hospital admin's licence verification queue (R5)."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.security import django_auth

from nethospital.accounts.access import authenticated_user
from nethospital.core import clock
from nethospital.directory import access, actions
from nethospital.directory.models import Organization, Practitioner

router = Router(tags=["directory"])


class OrganizationOut(Schema):
    id: int
    kind: str
    name: str
    name_zh: str
    name_en: str
    tier: int | None
    province: str
    city: str
    county: str
    attached_to_id: int | None
    parent_id: int | None


class PractitionerAdminOut(Schema):
    id: int
    legal_name: str
    profession: str
    licence_number: str
    title: str
    primary_institution_id: int
    department_id: int | None
    independent_practice_since: dt.date
    practice_years: int
    institution_consent: bool
    verification_status: str
    status_reason: str


class OrganizationFilter(Schema):
    kind: str | None = Field(None, max_length=30)
    city: str | None = Field(None, max_length=40)


class QueueFilter(Schema):
    status: str | None = Field(None, max_length=20)


class StatusIn(Schema):
    status: str = Field(..., max_length=20)
    reason: str = Field("", max_length=1000)


def practitioner_admin_out(p: Practitioner) -> PractitionerAdminOut:
    return PractitionerAdminOut(
        id=p.pk,
        legal_name=p.legal_name,
        profession=p.profession,
        licence_number=p.licence_number,
        title=p.title,
        primary_institution_id=p.primary_institution_id,
        department_id=p.department_id,
        independent_practice_since=p.independent_practice_since,
        practice_years=p.practice_years_on(clock.today()),
        institution_consent=p.institution_consent,
        verification_status=p.verification_status,
        status_reason=p.status_reason,
    )


@router.get("/organizations", response=list[OrganizationOut], summary="Hospitals, pharmacies and stations")
def list_organizations(request: HttpRequest, filters: Query[OrganizationFilter]) -> list[OrganizationOut]:
    qs = Organization.objects.filter(is_active=True).order_by("kind", "pk")
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.city:
        qs = qs.filter(city=filters.city)
    return [
        OrganizationOut(
            id=o.pk,
            kind=o.kind,
            name=o.name,
            name_zh=o.name_zh,
            name_en=o.name_en,
            tier=o.tier,
            province=o.province,
            city=o.city,
            county=o.county,
            attached_to_id=o.attached_to_id,
            parent_id=o.parent_id,
        )
        for o in qs[:500]
    ]


@router.get("/admin/practitioners", response=list[PractitionerAdminOut], auth=django_auth, tags=["administration"])
def verification_queue(request: HttpRequest, filters: Query[QueueFilter]) -> list[PractitionerAdminOut]:
    qs = access.verification_queue(authenticated_user(request))
    if filters.status:
        qs = qs.filter(verification_status=filters.status)
    return [practitioner_admin_out(p) for p in qs.order_by("pk")[:500]]


@router.post(
    "/admin/practitioners/{practitioner_id}/status",
    response=PractitionerAdminOut,
    auth=django_auth,
    tags=["administration"],
    summary="Verify, reject, suspend or reinstate a practitioner (R5)",
)
def change_status(request: HttpRequest, practitioner_id: int, payload: StatusIn) -> PractitionerAdminOut:
    access.access_practitioner_for_admin(authenticated_user(request), practitioner_id)
    practitioner = actions.change_verification(
        authenticated_user(request),
        practitioner_id,
        payload.status,
        reason=payload.reason,
    )
    return practitioner_admin_out(practitioner)
