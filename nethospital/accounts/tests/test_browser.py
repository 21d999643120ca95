"""End to end in a real Chromium: a patient signs up in Chinese; a doctor is stopped by R6 until
they set up TOTP, then stopped again the moment the hospital admin suspends them (R5)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.utils import translation

from nethospital.accounts import errors
from nethospital.accounts.choices import Sex
from nethospital.accounts.identity import make_number
from nethospital.accounts.models import User
from nethospital.directory.choices import VerificationStatus
from nethospital.records.actions import register_patient_at_hospital
from nethospital.testing import factories
from nethospital.testing.totp import code_for

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def in_language(language: str, message) -> str:  # type: ignore[no-untyped-def]
    with translation.override(language):
        return str(message)


def test_a_new_patient_signs_up_in_chinese_and_switches_to_english(browser, live_server):
    birth = dt.date(1992, 11, 3)
    number = make_number("310104", birth, 58, Sex.FEMALE)
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    check_message = in_language("zh-hans", errors.ID_NUMBER_CHECK.message)
    assert check_message != in_language("en", errors.ID_NUMBER_CHECK.message), "the Chinese translation is missing"

    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.click("text=实名注册")
    assert page.url == f"{live_server.url}/accounts/signup/"

    def fill(id_number: str) -> None:
        page.fill("input[name=email]", "chen.jing@example.org")
        page.fill("input[name=password]", "Quiet-River-2024")
        page.fill("input[name=password2]", "Quiet-River-2024")
        page.fill("input[name=legal_name]", "陈静")
        page.fill("input[name=id_number]", id_number)
        page.fill("input[name=birth_date]", birth.isoformat())
        page.check("input[name=sex][value=F]")
        page.fill("input[name=phone]", "13600001111")

    fill(wrong)
    with page.expect_navigation():
        page.click("button[type=submit] >> text=创建账户")
    errors_box = page.locator("#id_id_number_errors")
    assert errors_box.inner_text().strip() == check_message
    assert not User.objects.filter(email="chen.jing@example.org").exists()

    fill(number)
    with page.expect_navigation():
        page.click("button[type=submit] >> text=创建账户")
    assert page.url == f"{live_server.url}/"
    assert page.locator("#patient-section").is_visible()

    page.goto(f"{live_server.url}/me/")
    masked = number[:4] + "*" * 10 + number[-4:]
    assert page.locator("#id-number-masked").inner_text().strip() == masked
    assert number not in page.content()

    with page.expect_navigation():
        page.click(".language-switcher button[value=en]")
    assert page.url == f"{live_server.url}/me/"
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(f"{live_server.url}/me/family/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text().strip() == "Family members"
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies[settings.LANGUAGE_COOKIE_NAME] == "en"
    assert User.objects.get(email="chen.jing@example.org").preferred_language == "en"
    context.close()


def test_a_doctor_needs_totp_to_open_a_chart_and_is_stopped_by_a_suspension(browser, live_server, login_as, settings):
    hospital = factories.hospital()
    factories.internet_hospital(hospital)
    doctor = factories.doctor(hospital, legal_name="李明")
    admin = factories.hospital_admin(hospital)
    patient_user = factories.patient_user(legal_name="刘洋")
    patient = factories.patient_of(patient_user)
    register_patient_at_hospital(patient_user, patient, hospital)
    chart_url = f"{live_server.url}/patients/{patient.pk}/"

    doctor_context = browser.new_context(locale="zh-CN")
    page = doctor_context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", doctor.user.email)
    page.fill("input[name=password]", factories.DEFAULT_PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert "sessionid" in {c["name"] for c in doctor_context.cookies()}

    refused = page.goto(chart_url)
    assert refused is not None and refused.status == 403
    assert page.locator("#error").get_attribute("data-code") == "mfa_required"
    assert page.locator("#error h1").inner_text().strip() == "需要两步验证"
    assert "刘洋" not in page.content()

    page.click("#error a.button")
    assert page.url == f"{live_server.url}/accounts/2fa/"
    page.goto(f"{live_server.url}/accounts/2fa/totp/activate")
    # allauth asks for the password again before a factor is added.
    assert page.url.startswith(f"{live_server.url}/accounts/reauthenticate/")
    page.fill("input[name=password]", factories.DEFAULT_PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url == f"{live_server.url}/accounts/2fa/totp/activate/"
    secret = page.locator("#authenticator_secret").input_value()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret)
    page.fill("input[name=code]", code_for(secret))
    with page.expect_navigation():
        page.click("main form button[type=submit]")

    opened = page.goto(chart_url)
    assert opened is not None and opened.status == 200
    assert page.locator("#demographics").inner_text().count(patient.id_number_masked) == 1
    assert "刘洋" in page.locator("h1").inner_text()

    # The admin's session (password + TOTP) is made by the test client and handed to the browser.
    admin_client = login_as(admin, mfa=True)
    admin_context = browser.new_context(locale="zh-CN")
    admin_context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": admin_client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    admin_page = admin_context.new_page()
    queue = admin_page.goto(f"{live_server.url}/hospital-admin/practitioners/?status=verified")
    assert queue is not None and queue.status == 200
    row = admin_page.locator(f"#practitioner-{doctor.pk}")
    assert row.get_attribute("data-status") == "verified"
    # Without a reason the suspension is refused in place (htmx swaps the row with the reason).
    row.locator("button[value=suspended]").click()
    admin_page.wait_for_selector(f"#practitioner-{doctor.pk} .errorlist")
    assert admin_page.locator(f"#practitioner-{doctor.pk}").get_attribute("data-status") == "verified"
    admin_page.fill(f"#reason-{doctor.pk}", "执业证书正在复核")
    admin_page.locator(f"#practitioner-{doctor.pk} button[value=suspended]").click()
    admin_page.wait_for_selector(f"#practitioner-{doctor.pk}[data-status=suspended]")
    doctor.refresh_from_db()
    assert doctor.verification_status == VerificationStatus.SUSPENDED

    refused_again = page.goto(chart_url)
    assert refused_again is not None and refused_again.status == 403
    assert page.locator("#error").get_attribute("data-code") == "practitioner_suspended"
    assert "刘洋" not in page.content()
    admin_context.close()
    doctor_context.close()
