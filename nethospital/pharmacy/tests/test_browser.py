"""Acceptance in a real Chromium (issue 6): a pharmacist (password + TOTP) receives a case by typing
its code, the patient orders and pays for an approved prescription, the pharmacist dispenses it by
typing each box's code, a courier delivers it with the code the patient sees on the order page, the
patient sees the box's journey; scanning the already-dispensed box for another order raises the
dispensed-twice alert (R20)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from nethospital.accounts.choices import Role
from nethospital.accounts.tests.conftest import browser  # noqa: F401 - a pytest fixture
from nethospital.directory.choices import OrganizationKind
from nethospital.pharmacy import actions
from nethospital.pharmacy.actions import Delivery
from nethospital.pharmacy.choices import Fulfilment, OrderStatus, PaymentMethod
from nethospital.pharmacy.models import Order
from nethospital.pharmacy.tests.conftest import (
    approved_prescription,
    case_of,
    drug_pack,
    manufacture,
    organisation,
    staff,
)
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.tests.test_browser import log_in
from nethospital.testing import factories
from nethospital.traceability import codes
from nethospital.traceability.choices import AlertKind, PackStatus
from nethospital.traceability.models import Alert, Pack

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture(autouse=True)
def icd10_codes(transactional_db):  # type: ignore[no-untyped-def]
    """The ICD-10 subset comes from a data migration; an earlier browser test's flush removes it."""
    factories.icd10_subset()


def typed(identifier: str) -> str:
    """What a person types for a box when the scanner fails: the human-readable GS1 form."""
    scanned = codes.parse(identifier, lookup=False)
    pack = Pack.objects.get(identifier=identifier)
    return f"(01){scanned.gtin}(17){pack.expiry:%y%m%d}(10){pack.batch}(21){scanned.serial}"


def test_receive_dispense_deliver_and_see_the_journey(browser, live_server, clinic):  # noqa: F811
    # Given a pharmacy with a pharmacist and a courier, a product with a price, a case of three
    # boxes shipped by the factory, and the patient's prescription approved by the hospital's
    # pharmacist (through the real actions, at today's real time).
    pharmacy = organisation(OrganizationKind.PHARMACY, "康民大药房")
    pharmacist = staff(Role.PHARMACIST, pharmacy, name="沈慧")
    courier = staff(Role.COURIER, pharmacy, mfa=False, name="邓小军")
    amlodipine = drug_pack(clinic["drugs"]["amlodipine"], "30001", "8999201")
    actions.set_price(pharmacist, pharmacy.pk, amlodipine.pk, "32.50")
    boxes = manufacture(amlodipine, 3, batch="B2611", expiry="2028-06-30")
    case = case_of(boxes)
    rx = approved_prescription(clinic)
    sscc = codes.parse(case, lookup=False).sscc

    # --- the pharmacist receives the case -------------------------------------------------------
    pharmacist_context, desk = log_in(browser, live_server, pharmacist, totp=True)
    desk.goto(f"{live_server.url}/")
    with desk.expect_navigation():
        desk.click(".site-nav a[href='/pharmacy/']")
    with desk.expect_navigation():
        desk.click("#receive-link")
    desk.fill("textarea[name=codes]", f"(00){sscc}")
    with desk.expect_navigation():
        desk.click("#receive-button")
    assert "3" in desk.locator("#received-count").inner_text()
    assert {p.status for p in Pack.objects.filter(identifier__in=boxes)} == {PackStatus.RECEIVED}

    # --- the patient orders and pays -----------------------------------------------------------------
    patient_context, phone = log_in(browser, live_server, clinic["patient_user"], totp=False)
    phone.goto(f"{live_server.url}/")
    with phone.expect_navigation():
        phone.click(".site-nav a[href='/pharmacy/orders/']")
    with phone.expect_navigation():
        phone.click(f"#prescription-{rx.pk} a.button")
    with phone.expect_navigation():
        phone.click(f"#pharmacy-{pharmacy.pk} a.button")
    assert phone.locator("#rx-lines, .rx-section").first.is_visible()
    phone.check("input[name=fulfilment][value=delivery]")
    phone.fill("input[name=address]", "杭州市上城区庆春路 200 号 3 单元 501")
    # Without the R16 notice the order is refused, with the reason next to the box.
    with phone.expect_navigation():
        phone.click("#place-order")
    assert phone.locator("#id_notice_errors").is_visible()
    assert not Order.objects.exists()
    phone.check("input[name=notice]")
    with phone.expect_navigation():
        phone.click("#place-order")
    order = Order.objects.get()
    assert phone.url == f"{live_server.url}/pharmacy/orders/{order.pk}/"
    with phone.expect_navigation():
        phone.click("#pay-button")
    assert phone.locator("#order-status").get_attribute("data-status") == OrderStatus.AWAITING_DISPENSING
    code = phone.locator("#delivery-code").inner_text().strip()
    assert len(code) == 6 and code.isdigit()

    # --- the pharmacist dispenses by typing each box's code ------------------------------------------------
    desk.goto(f"{live_server.url}/pharmacy/{pharmacy.pk}/queue/")
    with desk.expect_navigation():
        desk.click(f"#order-{order.pk} .dispense-button")
    desk.fill("input[name=code]", typed(boxes[0]))
    desk.click("#scan-button")
    desk.wait_for_selector("#scan-accepted")
    # htmx keeps the old attributes (disabled) on a swapped element of the same id for its settle
    # delay, so wait for the button to become enabled instead of reading it once.
    expect(desk.locator("#complete-button")).to_be_enabled()
    with desk.expect_navigation():
        desk.click("#complete-button")
    order.refresh_from_db()
    rx.refresh_from_db()
    assert order.status == OrderStatus.DISPENSED and rx.status == PrescriptionStatus.DISPENSED
    assert Pack.objects.get(identifier=boxes[0]).status == PackStatus.DISPENSED

    # --- the courier takes it and delivers it with the patient's code -------------------------------------
    courier_context, bike = log_in(browser, live_server, courier, totp=False)
    bike.goto(f"{live_server.url}/")
    with bike.expect_navigation():
        bike.click(".site-nav a[href='/pharmacy/courier/']")
    bike.fill(f"#codes-{order.pk}", typed(boxes[0]))
    with bike.expect_navigation():
        bike.click(f"#order-{order.pk} .take-button")
    bike.fill(f"#code-{order.pk}", code)
    with bike.expect_navigation():
        bike.click(f"#order-{order.pk} .deliver-button")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert Pack.objects.get(identifier=boxes[0]).status == PackStatus.DELIVERED

    # --- the patient sees the box's whole way ---------------------------------------------------------------
    phone.reload()
    assert phone.locator("#order-status").get_attribute("data-status") == OrderStatus.DELIVERED
    with phone.expect_navigation():
        phone.click(".journey-link")
    steps = phone.locator("#journey-steps li")
    assert steps.count() >= 6  # made, packed, shipped, received, dispensed, handed over, delivered
    journey = phone.locator("#journey-steps").inner_text()
    assert pharmacy.name_zh in journey
    assert boxes[0] in phone.content()

    # --- the same box scanned again, for another order: refused, alert raised ------------------------------
    second = approved_prescription(clinic)
    again = actions.create_order(
        clinic["patient_user"],
        pharmacy_id=pharmacy.pk,
        how=Delivery(Fulfilment.DELIVERY, recipient_name="张伟", recipient_phone="13800001234", address="杭州"),
        payment_method=PaymentMethod.SANDBOX,
        idempotency_key="browser-second-order",
        prescription_id=second.pk,
        notice_confirmed=True,
    ).order
    actions.pay_order(clinic["patient_user"], again.pk, idempotency_key="browser-second-pay")
    desk.goto(f"{live_server.url}/pharmacy/orders/{again.pk}/dispense/")
    desk.fill("input[name=code]", typed(boxes[0]))
    desk.click("#scan-button")
    refusal = desk.locator("#scan-refusal")
    refusal.wait_for()
    assert refusal.get_attribute("data-code") == "pack_already_dispensed"
    assert "R20" in refusal.inner_text()
    alert = Alert.objects.get(kind=AlertKind.DISPENSED_TWICE, identifier=boxes[0])
    assert alert.organization_id == pharmacy.pk
    # The pharmacy sees the alert in its list.
    desk.goto(f"{live_server.url}/traceability/alerts/")
    assert boxes[0] in desk.content()
    # The right box is still accepted.
    desk.goto(f"{live_server.url}/pharmacy/orders/{again.pk}/dispense/")
    desk.fill("input[name=code]", typed(boxes[1]))
    desk.click("#scan-button")
    desk.wait_for_selector("#scan-accepted")
    for context in (pharmacist_context, patient_context, courier_context):
        context.close()
