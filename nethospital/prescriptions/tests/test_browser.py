"""Acceptance in a real Chromium (issue 5): a doctor (password + TOTP) writes a prescription from a
completed follow-up consultation, adds amoxicillin for a patient allergic to 青霉素 (penicillin),
sees the allergy warning, overrides it with a reason and signs; a pharmacist (password + TOTP)
approves it from the review queue; the patient sees it approved with a QR code and a verification
link, and the public verification page (no login) says the signature is valid."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from nethospital.accounts.tests.conftest import browser  # noqa: F401 - a pytest fixture
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.models import Prescription, RuleOverride
from nethospital.testing import factories
from nethospital.testing.totp import code_for, enable_totp

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture(autouse=True)
def icd10_codes(transactional_db):  # type: ignore[no-untyped-def]
    """The ICD-10 subset comes from a data migration; an earlier browser test's flush removes it."""
    factories.icd10_subset()


def log_in(chromium, live_server, user, *, totp: bool):  # type: ignore[no-untyped-def]
    """A phone-sized Chinese browser context logged in through the real pages (and the TOTP step)."""
    secret = enable_totp(user) if totp else ""
    context = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", factories.DEFAULT_PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    if totp:
        assert "/accounts/2fa/authenticate" in page.url
        page.fill("input[name=code]", code_for(secret))
        with page.expect_navigation():
            page.click("main form button[type=submit]")
    assert "/accounts/login" not in page.url and "/2fa/" not in page.url
    return context, page


def test_doctor_prescribes_through_an_allergy_warning_pharmacist_approves_patient_verifies(
    browser,  # noqa: F811 - the fixture imported above
    live_server,
    clinic,
):
    consultation = clinic["consultation"]

    # --- the doctor --------------------------------------------------------------------------
    doctor_context, page = log_in(browser, live_server, clinic["doctor"].user, totp=True)
    # From the consultation's signed visit record to a new prescription.
    page.goto(f"{live_server.url}/consultations/{consultation.pk}/record/")
    with page.expect_navigation():
        page.click("#write-prescription")
    assert page.url == f"{live_server.url}/consultations/{consultation.pk}/prescriptions/new/"
    assert "青霉素" in page.locator("#patient-allergies").inner_text()
    assert "I10" in page.locator("#diagnoses").inner_text()
    with page.expect_navigation():
        page.click("#start-prescription")
    prescription = Prescription.objects.get(consultation=consultation)
    assert page.url == f"{live_server.url}/prescriptions/{prescription.pk}/edit/"
    assert page.locator("#sign-button").is_disabled()

    # Searches the catalogue by the Chinese name; the datalist offers amoxicillin.
    page.fill("#id_items-0-drug", "阿莫西林")
    page.wait_for_selector('#drug-options option[value="t-amoxicillin-500"]', state="attached")
    page.fill("#id_items-0-drug", "t-amoxicillin-500")
    page.fill("#id_items-0-dose", "1")
    page.select_option("#id_items-0-frequency", "tid")
    page.fill("#id_items-0-days", "5")
    page.click("#check-items")
    page.wait_for_load_state("networkidle")
    warning = page.locator('#rx-findings article.warning[data-rule="allergy"]')
    warning.wait_for()
    assert "青霉素" in warning.inner_text()
    assert page.locator("#sign-button").is_disabled()
    assert "t-amoxicillin-500" in (page.locator("#items-0-status .row-info").get_attribute("data-drug") or "")

    # Overrides the warning with a reason: the warning is kept, with the reason, and signing opens.
    warning.locator("input[name=reason]").fill("皮试阴性，既往使用阿莫西林无不良反应")
    warning.locator("button[type=submit]").click()
    page.wait_for_selector('#rx-findings article.overridden[data-rule="allergy"]')
    page.wait_for_load_state("networkidle")
    assert "皮试阴性" in page.locator('#rx-findings article[data-rule="allergy"]').inner_text()
    expect(page.locator("#sign-button")).to_be_enabled()  # after htmx's settle delay (old attributes kept)
    with page.expect_navigation():
        page.click("#sign-button")
    assert page.url == f"{live_server.url}/prescriptions/{prescription.pk}/"
    assert page.locator("#rx-status").get_attribute("data-status") == "pending_review"
    prescription.refresh_from_db()
    assert prescription.status == PrescriptionStatus.PENDING_REVIEW and prescription.signature
    assert RuleOverride.objects.get(prescription=prescription).rule == "allergy"
    doctor_context.close()

    # --- the pharmacist ------------------------------------------------------------------------
    pharmacist_context, page = log_in(browser, live_server, clinic["pharmacist"], totp=True)
    page.goto(f"{live_server.url}/pharmacist/prescriptions/")
    row = page.locator(f"#queue-{prescription.pk}")
    assert row.get_attribute("data-expired") == "false"
    with page.expect_navigation():
        row.locator("h3 a").click()
    assert page.locator("#signature-check").get_attribute("data-valid") == "true"
    assert clinic["patient"].id_number_masked in page.locator("#patient-id").inner_text()
    assert "青霉素" in page.locator("#patient-allergies").inner_text()
    assert "皮试阴性" in page.locator("#rx-checks .override-reason").inner_text()
    page.check("input[name=decision][value=approve]")
    page.fill("textarea[name=note]", "用法用量合理")
    with page.expect_navigation():
        page.click("#submit-review")
    assert page.url == f"{live_server.url}/pharmacist/prescriptions/"
    assert page.locator(f"#queue-{prescription.pk}").count() == 0
    prescription.refresh_from_db()
    assert prescription.status == PrescriptionStatus.APPROVED
    pharmacist_context.close()

    # --- the patient ----------------------------------------------------------------------------
    patient_context, page = log_in(browser, live_server, clinic["patient_user"], totp=False)
    page.goto(f"{live_server.url}/prescriptions/")
    item = page.locator(f"#prescription-{prescription.pk}")
    assert item.get_attribute("data-status") == "approved"
    with page.expect_navigation():
        item.locator("h3 a").click()
    assert page.locator("#rx-status").get_attribute("data-status") == "approved"
    assert "用法用量合理" in page.locator("#pharmacist-review").inner_text()
    assert page.locator("#rx-qr svg").is_visible()
    expected = f"{live_server.url}/verify/prescription/{prescription.pk}/?hash={prescription.canonical_hash}"
    assert page.locator("#rx-qr").get_attribute("data-url") == expected
    assert page.locator("#verification-link").get_attribute("href") == expected
    with page.expect_navigation():
        page.click("#confirm-notice")
    assert page.locator("#notice-confirmed").is_visible()
    patient_context.close()

    # --- anyone, without logging in, checks the paper's QR code ----------------------------------
    public = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = public.new_page()
    page.goto(expected)
    verification = page.locator("#verification")
    assert verification.get_attribute("data-valid") == "true"
    assert verification.get_attribute("data-reason") == "ok"
    assert page.locator("#hash-comparison").get_attribute("data-matches") == "true"
    assert prescription.number in page.locator("#v-number").inner_text()
    assert clinic["doctor"].licence_number in page.locator("#v-doctor").inner_text()
    content = page.content()
    assert clinic["patient"].legal_name not in content and "阿莫西林" not in content
    public.close()
