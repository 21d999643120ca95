"""Accounts API: patient sign-up, my profile, language, family members, role grants."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.security import django_auth

from nethospital.accounts import actions, policy
from nethospital.accounts.access import authenticated_user
from nethospital.accounts.models import FamilyLink, Patient, User
from nethospital.core.errors import NOT_FOUND, PERMISSION_DENIED, DomainError, ensure

router = Router(tags=["accounts"])

# Generous outer limits stop oversized payloads at the door; the actions give the precise,
# translated per-field reasons for anything inside them.


class SignUpIn(Schema):
    email: str = Field(..., max_length=254)
    password: str = Field(..., max_length=128)
    legal_name: str = Field(..., max_length=200)
    id_number: str = Field(..., max_length=40)
    birth_date: dt.date | None = None
    sex: str | None = Field(None, max_length=10)
    phone: str = Field(..., max_length=30)
    language: str = Field("", max_length=10)


class PatientOut(Schema):
    id: int
    legal_name: str
    id_number_masked: str
    birth_date: dt.date
    sex: str
    age: int
    phone: str


class RoleOut(Schema):
    id: int
    role: str
    organization_id: int | None


class MeOut(Schema):
    id: int
    email: str
    display_name: str
    preferred_language: str
    roles: list[str]
    requires_mfa: bool
    mfa_verified: bool
    patient: PatientOut | None


class LanguageIn(Schema):
    language: str = Field(..., max_length=10)


class FamilyIn(Schema):
    legal_name: str = Field(..., max_length=200)
    id_number: str = Field(..., max_length=40)
    birth_date: dt.date | None = None
    sex: str | None = Field(None, max_length=10)
    relationship: str = Field(..., max_length=20)
    phone: str = Field("", max_length=30)


class FamilyOut(Schema):
    id: int
    relationship: str
    is_guardian: bool
    patient: PatientOut


class RoleGrantIn(Schema):
    user_id: int
    role: str = Field(..., max_length=40)
    organization_id: int | None = None


def patient_out(patient: Patient) -> PatientOut:
    return PatientOut(
        id=patient.pk,
        legal_name=patient.legal_name,
        id_number_masked=patient.id_number_masked,
        birth_date=patient.birth_date,
        sex=patient.sex,
        age=patient.age,
        phone=patient.phone,
    )


def me_out(user: User) -> MeOut:
    patient = Patient.objects.filter(account=user).first()
    return MeOut(
        id=user.pk,
        email=user.email,
        display_name=user.display_name,
        preferred_language=user.preferred_language,
        roles=sorted(user.roles()),
        requires_mfa=policy.requires_mfa(user),
        mfa_verified=user.is_mfa_verified,
        patient=patient_out(patient) if patient else None,
    )


def family_out(link: FamilyLink) -> FamilyOut:
    return FamilyOut(
        id=link.pk, relationship=link.relationship, is_guardian=link.is_guardian, patient=patient_out(link.patient)
    )


@router.post("/auth/signup", response={201: MeOut}, summary="Sign up as a patient with a real-name identity")
def sign_up(request: HttpRequest, payload: SignUpIn) -> Status:
    user = actions.sign_up_patient(**payload.dict())
    return Status(201, me_out(user))


@router.get("/me", response=MeOut, auth=django_auth, summary="My account")
def me(request: HttpRequest) -> MeOut:
    return me_out(authenticated_user(request))


@router.put("/me/language", response=MeOut, auth=django_auth)
def set_language(request: HttpRequest, payload: LanguageIn) -> MeOut:
    actions.set_preferred_language(authenticated_user(request), payload.language)
    return me_out(authenticated_user(request))


@router.get("/me/family", response=list[FamilyOut], auth=django_auth)
def list_family(request: HttpRequest) -> list[FamilyOut]:
    links = FamilyLink.objects.filter(holder=authenticated_user(request), ended_at__isnull=True).select_related(
        "patient"
    )
    return [family_out(link) for link in links.order_by("pk")]


@router.post("/me/family", response={201: FamilyOut}, auth=django_auth)
def add_family(request: HttpRequest, payload: FamilyIn) -> Status:
    link = actions.add_family_member(authenticated_user(request), **payload.dict())
    return Status(201, family_out(link))


@router.delete("/me/family/{link_id}", response={204: None}, auth=django_auth)
def end_family(request: HttpRequest, link_id: int) -> Status:
    if not FamilyLink.objects.filter(pk=link_id, holder=authenticated_user(request), ended_at__isnull=True).exists():
        raise DomainError(NOT_FOUND)
    actions.end_family_link(authenticated_user(request), link_id)
    return Status(204, None)


@router.post("/admin/role-grants", response={201: RoleOut}, auth=django_auth, tags=["administration"])
def grant_role(request: HttpRequest, payload: RoleGrantIn) -> Status:
    granter = authenticated_user(request)
    target = User.objects.filter(pk=payload.user_id).first()
    ensure(target is not None, PERMISSION_DENIED)
    assert target is not None
    grant = actions.grant_role(granter, target, payload.role, organization_id=payload.organization_id)
    return Status(201, RoleOut(id=grant.pk, role=grant.role, organization_id=grant.organization_id))


@router.delete("/admin/role-grants/{grant_id}", response={204: None}, auth=django_auth, tags=["administration"])
def revoke_role(request: HttpRequest, grant_id: int) -> Status:
    actions.revoke_role(authenticated_user(request), grant_id)
    return Status(204, None)
