"""Account pages through Django's test client: exact statuses, and a refused submit changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from nethospital.accounts import errors
from nethospital.accounts.choices import Relationship, Sex
from nethospital.accounts.identity import make_number
from nethospital.accounts.models import FamilyLink, Patient, User
from nethospital.testing import factories

pytestmark = pytest.mark.django_db


def signup_data(**overrides: str) -> dict[str, str]:
    birth = dt.date(1990, 3, 7)
    data = {
        "email": "wang.fang@example.org",
        "password": "Bright-Lantern-77",
        "password2": "Bright-Lantern-77",
        "legal_name": "王芳",
        "id_number": make_number("110105", birth, 124, Sex.FEMALE),
        "birth_date": birth.isoformat(),
        "sex": Sex.FEMALE,
        "phone": "13912345678",
    }
    data.update(overrides)
    return data


def bad_check_character(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


def counts() -> tuple[int, int, int]:
    return User.objects.count(), Patient.objects.count(), FamilyLink.objects.count()


# --- sign-up ------------------------------------------------------------------------------------


def test_signup_page_is_open_to_visitors_and_routed_before_allauth(client: Client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert b'name="id_number"' in response.content
    assert response.resolver_match.view_name == "accounts:signup"


def test_signup_with_a_wrong_check_character_is_refused_with_the_reason_next_to_the_field(client: Client):
    data = signup_data()
    data["id_number"] = bad_check_character(data["id_number"])
    before = counts()
    response = client.post("/accounts/signup/", data, HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert response.status_code == 422
    with translation.override("zh-hans"):
        expected = str(errors.ID_NUMBER_CHECK.message)
    assert expected in response.content.decode()
    assert 'id="id_id_number_errors"' in response.content.decode()
    assert counts() == before
    assert "_auth_user_id" not in client.session


def test_signup_with_different_passwords_is_refused_before_the_action(client: Client):
    before = counts()
    response = client.post("/accounts/signup/", signup_data(password2="Another-Lantern-77"))
    assert response.status_code == 422
    assert counts() == before


def test_signup_with_a_taken_identity_number_is_refused_next_to_the_field(client: Client):
    data = signup_data()
    assert client.post("/accounts/signup/", data).status_code == 302
    other = Client()
    before = counts()
    response = other.post(
        "/accounts/signup/", signup_data(email="someone.else@example.org", id_number=data["id_number"])
    )
    # The action gathers every field's problem into one INVALID_INPUT refusal (422).
    assert response.status_code == 422
    assert str(errors.ID_NUMBER_TAKEN.message) in response.content.decode()
    assert counts() == before


def test_signup_creates_the_patient_logs_in_and_goes_home(client: Client):
    response = client.post("/accounts/signup/", signup_data(), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(email="wang.fang@example.org")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert user.patient.legal_name == "王芳"
    assert user.preferred_language == "en"
    home = client.get("/")
    assert home.status_code == 200
    assert 'id="patient-section"' in home.content.decode()


def test_signup_when_logged_in_goes_home(patient_user, login_as):
    response = login_as(patient_user).get("/accounts/signup/")
    assert (response.status_code, response["Location"]) == (302, "/")


def test_allauth_login_page_links_to_our_signup(client: Client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'href="/accounts/signup/"' in response.content.decode()


# --- home -----------------------------------------------------------------------------------------


def test_home_for_visitors_offers_login_and_signup(client: Client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/accounts/login/"' in page and 'href="/accounts/signup/"' in page


def test_login_redirect_url_name_resolves_to_the_home_page():
    from django.shortcuts import resolve_url

    assert resolve_url(settings.LOGIN_REDIRECT_URL) == "/"


# --- profile --------------------------------------------------------------------------------------


def test_profile_needs_login(client: Client):
    response = client.get("/me/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_profile_shows_the_masked_identity_number_never_the_full_one(client: Client):
    data = signup_data()
    client.post("/accounts/signup/", data)
    page = client.get("/me/").content.decode()
    masked = data["id_number"][:4] + "*" * 10 + data["id_number"][-4:]
    assert masked in page
    assert data["id_number"] not in page


def test_staff_registers_own_identity_on_the_profile(login_as, city_hospital):
    staff = factories.staff_user()
    client = login_as(staff)
    page = client.get("/me/")
    assert page.status_code == 200 and 'name="id_number"' in page.content.decode()
    data = signup_data()
    fields = {k: data[k] for k in ("legal_name", "id_number", "birth_date", "sex", "phone")}
    bad = client.post("/me/", {**fields, "id_number": bad_check_character(fields["id_number"])})
    assert bad.status_code == 422
    assert not Patient.objects.filter(account=staff).exists()
    mismatch = client.post("/me/", {**fields, "sex": Sex.MALE})
    assert mismatch.status_code == 422
    assert not Patient.objects.filter(account=staff).exists()
    done = client.post("/me/", fields)
    assert (done.status_code, done["Location"]) == (302, "/me/")
    assert Patient.objects.get(account=staff).legal_name == "王芳"


def test_a_patient_cannot_register_a_second_identity(patient_user, login_as):
    data = signup_data()
    fields = {k: data[k] for k in ("legal_name", "id_number", "birth_date", "sex", "phone")}
    before = counts()
    response = login_as(patient_user).post("/me/", fields)
    assert response.status_code == 409
    assert counts() == before


# --- family ---------------------------------------------------------------------------------------


def child_data(age_years: int = 4, relationship: str = Relationship.CHILD) -> dict[str, str]:
    today = dt.date.today()
    birth = dt.date(today.year - age_years, 1, 15)
    return {
        "legal_name": "张小宝",
        "id_number": make_number("110101", birth, 31, Sex.MALE),
        "birth_date": birth.isoformat(),
        "sex": Sex.MALE,
        "relationship": relationship,
        "phone": "",
    }


def test_family_page_lists_and_adds_a_child(patient_user, login_as):
    client = login_as(patient_user)
    assert client.get("/me/family/").status_code == 200
    response = client.post("/me/family/", child_data())
    assert (response.status_code, response["Location"]) == (302, "/me/family/")
    link = FamilyLink.objects.get(holder=patient_user)
    assert link.is_guardian
    page = client.get("/me/family/").content.decode()
    assert "张小宝" in page and link.patient.id_number_masked in page


def test_a_young_child_added_as_a_sibling_is_refused_and_nothing_is_saved(patient_user, login_as):
    before = counts()
    response = login_as(patient_user).post("/me/family/", child_data(relationship=Relationship.SIBLING))
    assert response.status_code == 400
    assert str(errors.YOUNG_CHILD_NEEDS_GUARDIAN.message) in response.content.decode()
    assert counts() == before


def test_a_family_member_with_a_bad_identity_number_is_refused(patient_user, login_as):
    data = child_data()
    data["id_number"] = bad_check_character(data["id_number"])
    before = counts()
    assert login_as(patient_user).post("/me/family/", data).status_code == 422
    assert counts() == before


def test_staff_without_identity_cannot_add_family(login_as):
    staff = factories.staff_user()
    before = counts()
    assert login_as(staff).post("/me/family/", child_data()).status_code == 403
    assert counts() == before


def test_ending_the_only_guardian_link_of_a_young_child_is_refused(patient_user, login_as):
    client = login_as(patient_user)
    client.post("/me/family/", child_data())
    link = FamilyLink.objects.get(holder=patient_user)
    response = client.post(f"/me/family/{link.pk}/end/")
    assert response.status_code == 409
    link.refresh_from_db()
    assert link.ended_at is None


def test_ending_a_link_of_an_older_relative(patient_user, login_as):
    client = login_as(patient_user)
    client.post("/me/family/", child_data(age_years=70, relationship=Relationship.PARENT))
    link = FamilyLink.objects.get(holder=patient_user)
    assert client.get(f"/me/family/{link.pk}/end/").status_code == 405
    response = client.post(f"/me/family/{link.pk}/end/")
    assert (response.status_code, response["Location"]) == (302, "/me/family/")
    link.refresh_from_db()
    assert link.ended_at is not None


def test_nobody_ends_another_holders_link(patient_user, login_as):
    login_as(patient_user).post("/me/family/", child_data(age_years=70, relationship=Relationship.PARENT))
    link = FamilyLink.objects.get(holder=patient_user)
    stranger = factories.patient_user()
    assert login_as(stranger).post(f"/me/family/{link.pk}/end/").status_code == 403
    assert Client().post(f"/me/family/{link.pk}/end/").status_code == 302  # to the login page
    link.refresh_from_db()
    assert link.ended_at is None


# --- language -------------------------------------------------------------------------------------


def test_switching_language_sets_the_cookie_and_saves_the_preference(patient_user, login_as):
    client = login_as(patient_user)
    response = client.post("/language/", {"language": "en", "next": "/me/"})
    assert (response.status_code, response["Location"]) == (302, "/me/")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    patient_user.refresh_from_db()
    assert patient_user.preferred_language == "en"
    assert '<html lang="en">' in client.get("/me/").content.decode()


def test_visitors_switch_language_by_cookie_only(client: Client):
    response = client.post("/language/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"


def test_an_unknown_language_changes_nothing(patient_user, login_as):
    client = login_as(patient_user)
    response = client.post("/language/", {"language": "xx", "next": "/"})
    assert response.status_code == 302
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    patient_user.refresh_from_db()
    assert patient_user.preferred_language == ""
    assert client.get("/language/").status_code == 405
