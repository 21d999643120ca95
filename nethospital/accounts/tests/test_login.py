"""Real login through allauth: password, then the TOTP stage for staff with MFA (R6), and the
brute-force lockout (django-axes)."""

import pytest
from django.test import Client

from nethospital.testing import factories
from nethospital.testing.totp import code_for, enable_totp

pytestmark = pytest.mark.django_db


def log_in(client: Client, email: str, password: str):
    return client.post("/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR="192.0.2.10")


def test_a_doctor_with_totp_passes_the_second_factor_and_then_counts_as_strongly_authenticated(doctor):
    secret = enable_totp(doctor.user)
    client = Client()
    response = log_in(client, doctor.user.email, factories.DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/authenticate")
    # Between the password and the code the user is not logged in at all.
    assert client.get("/api/me").status_code == 401
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000" if code_for(secret) != "000000" else "111111"})
    assert wrong.status_code == 200
    assert client.get("/api/me").status_code == 401
    done = client.post("/accounts/2fa/authenticate/", {"code": code_for(secret)})
    assert done.status_code == 302
    me = client.get("/api/me").json()
    assert (me["requires_mfa"], me["mfa_verified"]) == (True, True)


def test_a_doctor_without_mfa_logs_in_but_is_not_strongly_authenticated(doctor):
    client = Client()
    assert log_in(client, doctor.user.email, factories.DEFAULT_PASSWORD).status_code == 302
    me = client.get("/api/me").json()
    assert (me["requires_mfa"], me["mfa_verified"]) == (True, False)


def test_a_patient_is_not_asked_for_a_second_factor(patient_user):
    client = Client()
    response = log_in(client, patient_user.email, factories.DEFAULT_PASSWORD)
    assert response.status_code == 302 and "2fa" not in response["Location"]
    assert client.get("/api/me").json()["requires_mfa"] is False


def test_repeated_wrong_passwords_lock_the_account_out_even_for_the_right_password(patient_user, settings):
    # allauth has its own (softer) login rate limit; switch it off to see django-axes' lockout alone.
    settings.ACCOUNT_RATE_LIMITS = False
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = log_in(client, patient_user.email, "wrong-password-123")
        assert client.get("/api/me").status_code == 401
    locked = log_in(client, patient_user.email, factories.DEFAULT_PASSWORD)
    assert locked.status_code == 429
    assert client.get("/api/me").status_code == 401
    assert response.status_code == 429  # the fifth failure already answers with the lockout page
    # Another address is not locked out (lockout is per account and address).
    other = Client()
    assert (
        other.post(
            "/accounts/login/",
            {"login": patient_user.email, "password": factories.DEFAULT_PASSWORD},
            REMOTE_ADDR="198.51.100.7",
        ).status_code
        == 302
    )


def test_allauth_rate_limit_also_refuses_the_right_password_after_failures(patient_user):
    client = Client()
    for _ in range(5):
        log_in(client, patient_user.email, "wrong-password-123")
    log_in(client, patient_user.email, factories.DEFAULT_PASSWORD)
    assert client.get("/api/me").status_code == 401
