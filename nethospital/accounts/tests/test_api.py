import datetime as dt
import json

import pytest
from django.utils import translation

from nethospital.accounts import errors
from nethospital.accounts.choices import Sex
from nethospital.accounts.identity import make_number
from nethospital.accounts.models import FamilyLink, Patient, User

pytestmark = pytest.mark.django_db
NUMBER = make_number("330106", dt.date(1988, 8, 8), 300, Sex.MALE)


def payload(**overrides):
    body = {
        "email": "li.lei@example.org",
        "password": "Correct-Horse-42",
        "legal_name": "李雷",
        "id_number": NUMBER,
        "birth_date": "1988-08-08",
        "sex": "M",
        "phone": "13800138000",
    }
    body.update(overrides)
    return body


def post(client, path, body, language="en"):
    return client.post(path, data=json.dumps(body), content_type="application/json", HTTP_ACCEPT_LANGUAGE=language)


def test_sign_up_through_the_api(client):
    response = post(client, "/api/auth/signup", payload())
    assert response.status_code == 201
    body = response.json()
    assert body["roles"] == ["patient"]
    assert body["patient"]["id_number_masked"] == NUMBER[:4] + "**********" + NUMBER[-4:]
    assert NUMBER not in response.content.decode()


def test_a_bad_check_character_is_explained_in_chinese_and_changes_nothing(client):
    bad = NUMBER[:-1] + ("1" if NUMBER[-1] != "1" else "2")
    response = post(client, "/api/auth/signup", payload(id_number=bad), language="zh-hans")
    assert response.status_code == 422
    with translation.override("zh-hans"):
        expected = str(errors.ID_NUMBER_CHECK.message)
    with translation.override("en"):
        english = str(errors.ID_NUMBER_CHECK.message)
    assert expected != english, "the Chinese translation is missing"
    assert response.json()["error"]["fields"] == {"id_number": [expected]}
    assert User.objects.count() == 0


def test_a_used_identity_number_is_refused_with_409_semantics(client):
    assert post(client, "/api/auth/signup", payload()).status_code == 201
    response = post(client, "/api/auth/signup", payload(email="other@example.org"))
    assert response.status_code == 422
    assert response.json()["error"]["fields"]["id_number"] == [str(errors.ID_NUMBER_TAKEN.message)]
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (payload(legal_name="李" * 500), "legal_name"),
        (payload(id_number="1" * 100), "id_number"),
        (payload(birth_date="1988-02-30"), "birth_date"),
        (payload(email="x" * 300 + "@example.org"), "email"),
        ({k: v for k, v in payload().items() if k != "phone"}, "phone"),
    ],
)
def test_malformed_or_oversized_fields_get_a_structured_422(client, body, field):
    response = post(client, "/api/auth/signup", body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"]
    assert User.objects.count() == 0


def test_a_body_that_is_not_json_gets_a_structured_4xx(client):
    response = client.post("/api/auth/signup", data="{not json", content_type="application/json")
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_an_oversized_body_gets_a_structured_413_in_the_users_language(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = payload(legal_name="李" * 2000)
    response = post(client, "/api/auth/signup", body, language="zh-hans")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large"
    assert "2048" in error["message"] and "服务器" in error["message"]
    assert User.objects.count() == 0


def test_field_names_are_what_the_client_sent(client):
    # Only Ninja's leading source and parameter are dropped from the location: a JSON field keeps
    # its own name, nested ones are dotted, a missing body is the whole request.
    from nethospital.api import _field_name

    assert _field_name(("body", "payload", "body")) == "body"
    assert _field_name(("body", "payload", "items", 0, "dose")) == "items.0.dose"
    assert _field_name(("query", "path")) == "path"
    assert _field_name(("file", "file")) == "file"
    assert _field_name(("body", "payload")) == "payload"
    assert _field_name(()) == "__all__"
    response = post(client, "/api/auth/signup", payload(birth_date="x"))
    assert list(response.json()["error"]["fields"]) == ["birth_date"]


def test_family_members_through_the_api(patient_user, login_as):
    client = login_as(patient_user)
    child = make_number("330106", dt.date(2022, 2, 2), 8, Sex.FEMALE)
    created = post(
        client,
        "/api/me/family",
        {"legal_name": "张小花", "id_number": child, "relationship": "child", "birth_date": "2022-02-02"},
    )
    assert created.status_code == 201, created.content
    assert created.json()["is_guardian"] is True
    listed = client.get("/api/me/family").json()
    assert [row["patient"]["legal_name"] for row in listed] == ["张小花"]
    refused = post(client, "/api/me/family", {"legal_name": "某人", "id_number": child, "relationship": "cousin"})
    assert refused.status_code == 422
    assert set(refused.json()["error"]["fields"]) == {"relationship", "id_number"}
    assert FamilyLink.objects.count() == 1
    assert Patient.objects.count() == 2


def test_me_reports_roles_and_mfa_state(doctor, login_as):
    body = login_as(doctor.user, mfa=False).get("/api/me").json()
    assert body["roles"] == ["doctor"]
    assert (body["requires_mfa"], body["mfa_verified"]) == (True, False)
    body = login_as(doctor.user, mfa=True).get("/api/me").json()
    assert body["mfa_verified"] is True


def test_language_preference_is_saved(patient_user, login_as):
    client = login_as(patient_user)
    response = client.put("/api/me/language", data=json.dumps({"language": "en"}), content_type="application/json")
    assert response.status_code == 200
    assert User.objects.get(pk=patient_user.pk).preferred_language == "en"
    bad = client.put("/api/me/language", data=json.dumps({"language": "xx"}), content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {"language": [str(errors.LANGUAGE_INVALID.message)]}


def test_sign_ups_from_one_address_are_rate_limited(client, settings):
    settings.NETHOSPITAL_SIGNUP_RATE_PER_ADDRESS = 2
    statuses = []
    for n in range(3):
        body = payload(
            email=f"farm{n}@example.org",
            id_number=make_number("330106", dt.date(1990, 1, 1), 2 * n, "F"),
            birth_date="1990-01-01",
            sex="F",
        )
        statuses.append(post(client, "/api/auth/signup", body).status_code)
    assert statuses == [201, 201, 429]
    assert User.objects.count() == 2
