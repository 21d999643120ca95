"""The pharmacy pages through the test client: the patient's order flow, the pharmacist's dispensing
screen (htmx and plain), the courier and the station; refusals shown with their 4xx status."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from nethospital.core import clock
from nethospital.pharmacy import delivery
from nethospital.pharmacy.choices import OrderStatus
from nethospital.pharmacy.models import Order
from nethospital.pharmacy.tests.conftest import NOON, element_string
from nethospital.testing import factories
from nethospital.traceability.choices import AlertKind
from nethospital.traceability.models import Alert

pytestmark = pytest.mark.django_db


def order_form(world, **overrides):
    data = {
        "pharmacy": world["pharmacy_a"].pk,
        "fulfilment": "delivery",
        "recipient_name": "张伟",
        "recipient_phone": "13800001234",
        "address": "北京市东城区东单北大街 1 号",
        "payment_method": "sandbox",
        "notice": "on",
        "idempotency_key": "page-order-key-0001",
        f"otc_{world['otc'].pk}": "1",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_patient_orders_pays_and_sees_the_delivery_code(world, login_as):
    with clock.frozen(NOON):
        patient = login_as(world["patient_user"])
        mine = patient.get(reverse("pharmacy:my_orders"))
        assert mine.status_code == 200
        assert f'id="prescription-{world["rx"].pk}"' in mine.content.decode()

        url = reverse("pharmacy:new_order", args=[world["rx"].pk])
        choose = patient.get(url)
        assert choose.status_code == 200
        page = choose.content.decode()
        assert f'id="pharmacy-{world["pharmacy_a"].pk}"' in page and "¥32.50" in page
        form_page = patient.get(url, {"pharmacy": world["pharmacy_a"].pk})
        assert 'id="place-order"' in form_page.content.decode() and 'id="otc-offers"' in form_page.content.decode()

        refused = patient.post(url, order_form(world, notice=None))
        assert refused.status_code == 400
        assert 'id="id_notice_errors"' in refused.content.decode()
        assert not Order.objects.exists()

        placed = patient.post(url, order_form(world))
        order = Order.objects.get()
        assert placed.status_code == 302 and placed["Location"] == reverse("pharmacy:order", args=[order.pk])
        # Posting the same form again (a double click) places nothing new.
        again = patient.post(url, order_form(world))
        assert again.status_code == 302 and Order.objects.count() == 1

        page = patient.get(reverse("pharmacy:order", args=[order.pk])).content.decode()
        assert 'id="rx-lines"' in page and 'id="otc-lines"' in page and 'id="pay-button"' in page
        declined = patient.post(
            reverse("pharmacy:pay", args=[order.pk]), {"card": "4000 0000 0000 0002", "idempotency_key": "pay-key-1"}
        )
        assert declined.status_code == 402 and 'data-code="payment_declined"' in declined.content.decode()
        paid = patient.post(reverse("pharmacy:pay", args=[order.pk]), {"card": "", "idempotency_key": "pay-key-2"})
        assert paid.status_code == 302
        order.refresh_from_db()
        assert order.status == OrderStatus.AWAITING_DISPENSING
        page = patient.get(reverse("pharmacy:order", args=[order.pk])).content.decode()
        assert f'id="delivery-code">{delivery.code_for(order)}<' in page


def _paid_order(world, login_as):
    patient = login_as(world["patient_user"])
    patient.post(
        reverse("pharmacy:new_order", args=[world["rx"].pk]), order_form(world, **{f"otc_{world['otc'].pk}": "0"})
    )
    order = Order.objects.get()
    patient.post(reverse("pharmacy:pay", args=[order.pk]), {"card": "", "idempotency_key": "pay-key-3"})
    return patient, order


def test_pharmacist_dispenses_by_scanning_and_the_courier_delivers(world, login_as):
    with clock.frozen(NOON):
        patient, order = _paid_order(world, login_as)
        pharmacist = login_as(world["pharmacist_a"], mfa=True)
        queue = pharmacist.get(reverse("pharmacy:queue", args=[world["pharmacy_a"].pk])).content.decode()
        assert f'id="order-{order.pk}"' in queue and "dispense-button" in queue

        screen = pharmacist.get(reverse("pharmacy:dispense", args=[order.pk]))
        assert screen.status_code == 200 and "EARLY" in screen.content.decode()  # FEFO suggestion
        scan_url = reverse("pharmacy:scan", args=[order.pk])
        wrong = pharmacist.post(scan_url, {"code": element_string(world["b_boxes"][0])}, HTTP_HX_REQUEST="true")
        assert wrong.status_code == 409
        assert 'data-code="pack_not_in_stock"' in wrong.content.decode()
        assert "<html" not in wrong.content.decode()  # htmx gets the panel only
        ok = pharmacist.post(scan_url, {"code": element_string(world["early"][0])}, HTTP_HX_REQUEST="true")
        assert ok.status_code == 200 and 'id="scan-accepted"' in ok.content.decode()
        done = pharmacist.post(reverse("pharmacy:complete", args=[order.pk]))
        assert done.status_code == 302
        order.refresh_from_db()
        assert order.status == OrderStatus.DISPENSED

        # The same box scanned again for another order: refused, and the alert is raised.
        courier = login_as(world["courier_a"])
        assert f'id="order-{order.pk}"' in courier.get(reverse("pharmacy:courier")).content.decode()
        taken = courier.post(reverse("pharmacy:handover", args=[order.pk]), {"codes": world["early"][0]})
        assert taken.status_code == 302
        code = delivery.code_for(Order.objects.get(pk=order.pk))
        wrong_code = courier.post(
            reverse("pharmacy:deliver", args=[order.pk]), {"code": "99999" + str(9 - int(code[-1]))}
        )
        assert wrong_code.status_code == 409 and 'data-code="delivery_code_wrong"' in wrong_code.content.decode()
        delivered = courier.post(reverse("pharmacy:deliver", args=[order.pk]), {"code": code})
        assert delivered.status_code == 302
        order.refresh_from_db()
        assert order.status == OrderStatus.DELIVERED

        page = patient.get(reverse("pharmacy:order", args=[order.pk])).content.decode()
        journey_url = reverse("traceability:journey", args=[world["early"][0]])
        assert journey_url in page
        journey = patient.get(journey_url)
        assert journey.status_code == 200


def test_a_dispensed_box_scanned_again_raises_an_alert_on_the_screen(world, login_as, clinic):
    from nethospital.pharmacy import actions
    from nethospital.pharmacy.tests.conftest import approved_prescription
    from nethospital.pharmacy.tests.test_orders import order_rx, pay

    with clock.frozen(NOON):
        first = order_rx(world, key="view-first-order").order
        pay(world, first, key="view-first-pay1")
        actions.scan_box(world["pharmacist_a"], first.pk, element_string(world["early"][0]))
        actions.complete_dispensing(world["pharmacist_a"], first.pk)
        second = order_rx(world, key="view-second-order", rx=approved_prescription(clinic)).order
        pay(world, second, key="view-second-pay1")
        pharmacist = login_as(world["pharmacist_a"], mfa=True)
        response = pharmacist.post(
            reverse("pharmacy:scan", args=[second.pk]), {"code": element_string(world["early"][0])}
        )
        assert response.status_code == 409
        body = response.content.decode()
        assert 'data-code="pack_already_dispensed"' in body and "<html" in body  # a full page without htmx
        assert Alert.objects.filter(kind=AlertKind.DISPENSED_TWICE, identifier=world["early"][0]).count() == 1


def test_staff_receive_a_case_on_the_page(world, login_as):
    from nethospital.pharmacy.tests.conftest import case_of, manufacture

    with clock.frozen(NOON):
        boxes = manufacture(world["amlodipine"], 3, batch="PAGE", expiry="2029-03-31")
        case = case_of(boxes)
        staff = login_as(world["staff_a"])
        url = reverse("pharmacy:receive", args=[world["pharmacy_a"].pk])
        bad = staff.post(url, {"codes": "not a code"})
        assert bad.status_code == 400 and "not a code" in bad.content.decode()
        ok = staff.post(url, {"codes": case})
        assert ok.status_code == 200
        assert 'id="received-count"' in ok.content.decode() and all(b in ok.content.decode() for b in boxes)
        stock_page = staff.get(reverse("pharmacy:stock", args=[world["pharmacy_a"].pk])).content.decode()
        assert f'id="product-{world["amlodipine"].pk}"' in stock_page


def test_station_pages(world, login_as):
    from nethospital.pharmacy import actions
    from nethospital.pharmacy.actions import Delivery
    from nethospital.pharmacy.choices import Fulfilment, PaymentMethod
    from nethospital.pharmacy.tests.test_orders import order_rx

    with clock.frozen(NOON):
        how = Delivery(Fulfilment.STATION_PICKUP, station_id=world["station"].pk)
        order = order_rx(world, how=how, method=PaymentMethod.CASH_AT_STATION).order
        actions.scan_box(world["pharmacist_a"], order.pk, element_string(world["early"][0]))
        actions.complete_dispensing(world["pharmacist_a"], order.pk)
        actions.hand_over_to_courier(world["courier_a"], order.pk, [world["early"][0]])
        operator = login_as(world["operator"])
        page = operator.get(reverse("pharmacy:station")).content.decode()
        assert f'id="order-{order.pk}"' in page
        received = operator.post(reverse("pharmacy:station_receive", args=[order.pk]), {"codes": world["early"][0]})
        assert received.status_code == 302
        refused = operator.post(reverse("pharmacy:pickup", args=[order.pk]), {"identity_checked": "on"})
        assert refused.status_code == 400 and 'data-code="cash_not_confirmed"' in refused.content.decode()
        done = operator.post(
            reverse("pharmacy:pickup", args=[order.pk]), {"identity_checked": "on", "cash_received": "on"}
        )
        assert done.status_code == 302
        order.refresh_from_db()
        assert order.status == OrderStatus.DELIVERED
        other = login_as(world["other_operator"])
        assert other.get(reverse("pharmacy:order", args=[order.pk])).status_code == 404


def test_every_page_by_role(world, login_as):
    """Each pharmacy page for each role: the expected status, refusals with their reason."""
    from django.test import Client

    from nethospital.pharmacy.tests.test_orders import order_rx, pay
    from nethospital.testing import factories

    with clock.frozen(NOON):
        order = order_rx(world).order
        pay(world, order)
        a, o = world["pharmacy_a"].pk, order.pk
        stranger = factories.patient_user(legal_name="赵六")
        clients = {
            "anonymous": Client(),
            "patient": login_as(world["patient_user"]),
            "stranger": login_as(stranger),
            "pharmacist": login_as(world["pharmacist_a"], mfa=True),
            "pharmacist_no_mfa": login_as(world["pharmacist_a"]),
            "staff": login_as(world["staff_a"]),
            "other_pharmacist": login_as(world["pharmacist_b"], mfa=True),
            "courier": login_as(world["courier_a"]),
            "operator": login_as(world["operator"]),
        }
        mfa = {"pharmacist_no_mfa": 403}
        # url -> (status for the authenticated not named, {actor: status}); anonymous: to the login page.
        pages = {
            reverse("pharmacy:my_orders"): (200, {}),
            reverse("pharmacy:new_order", args=[world["rx"].pk]): (404, {"patient": 200}),
            reverse("pharmacy:new_otc_order") + f"?pharmacy={a}": (200, {}),  # not a patient: "not-buyer"
            reverse("pharmacy:order", args=[o]): (404, {"patient": 200, "pharmacist": 200, "staff": 200, **mfa}),
            reverse("pharmacy:home"): (403, {"pharmacist": 302, "pharmacist_no_mfa": 302, "staff": 302,
                                             "other_pharmacist": 302}),
            reverse("pharmacy:queue", args=[a]): (403, {"pharmacist": 200, "staff": 200}),
            reverse("pharmacy:stock", args=[a]): (403, {"pharmacist": 200, "staff": 200}),
            reverse("pharmacy:receive", args=[a]): (403, {"pharmacist": 200, "staff": 200}),
            reverse("pharmacy:dispense", args=[o]): (404, {"pharmacist": 200, "staff": 403, "patient": 403, **mfa}),
            reverse("pharmacy:courier"): (403, {"courier": 200}),
            reverse("pharmacy:station"): (403, {"operator": 200}),
        }  # fmt: skip
        for url, (default, named) in pages.items():
            for actor, client in clients.items():
                response = client.get(url)
                expected = 302 if actor == "anonymous" else named.get(actor, default)
                assert response.status_code == expected, (url, actor, response.status_code)
                if actor == "anonymous":
                    assert response["Location"].startswith("/accounts/login/")


# --- non-prescription medicine without a prescription ---------------------------------------------
def otc_form(world, **overrides):
    data = {
        "pharmacy": world["pharmacy_a"].pk,
        "patient": world["patient"].pk,
        "fulfilment": "delivery",
        "recipient_name": "张伟",
        "recipient_phone": "13800001234",
        "address": "北京市东城区东单北大街 1 号",
        "payment_method": "sandbox",
        "idempotency_key": "otc-order-key-0001",
        f"otc_{world['otc'].pk}": "2",
    }
    data.update(overrides)
    return data


def test_patient_orders_non_prescription_medicine_without_a_prescription(world, login_as):
    with clock.frozen(NOON):
        patient = login_as(world["patient_user"])
        assert 'id="otc-order-link"' in patient.get(reverse("pharmacy:my_orders")).content.decode()
        url = reverse("pharmacy:new_otc_order")
        choose = patient.get(url).content.decode()
        # Only pharmacies with non-prescription drugs in stock are offered (B has amlodipine only).
        assert f'id="pharmacy-{world["pharmacy_a"].pk}"' in choose
        assert f'id="pharmacy-{world["pharmacy_b"].pk}"' not in choose
        form_page = patient.get(url, {"pharmacy": world["pharmacy_a"].pk}).content.decode()
        assert f'name="otc_{world["otc"].pk}"' in form_page
        assert f'name="otc_{world["amlodipine"].pk}"' not in form_page  # a prescription drug is never offered here
        assert 'name="notice"' not in form_page

        empty = patient.post(url, otc_form(world, **{f"otc_{world['otc'].pk}": "0"}))
        assert empty.status_code == 400 and 'id="form-errors"' in empty.content.decode()
        too_many = patient.post(url, otc_form(world, **{f"otc_{world['otc'].pk}": "4"}))  # 3 boxes in stock
        assert too_many.status_code == 409
        shown = re.search(r'id="form-errors">(.*?)</ul>', too_many.content.decode(), re.S)
        assert shown is not None and "3" in shown.group(1)  # how many boxes are left, in the patient's language
        assert not Order.objects.exists()

        placed = patient.post(url, otc_form(world))
        order = Order.objects.get()
        assert placed.status_code == 302 and placed["Location"] == reverse("pharmacy:order", args=[order.pk])
        assert (order.prescription_id, order.patient_id, order.buyer_id) == (
            None,
            world["patient"].pk,
            world["patient_user"].pk,
        )
        assert [(line.drug_pack_id, line.quantity, line.prescription_item_id) for line in order.lines.all()] == [
            (world["otc"].pk, 2, None)
        ]
        again = patient.post(url, otc_form(world))  # the same form posted twice
        assert again.status_code == 302 and Order.objects.count() == 1


def test_non_prescription_order_only_for_oneself_or_a_guarded_family_member(world, login_as):
    stranger = factories.patient_of(factories.patient_user(legal_name="李四"))
    with clock.frozen(NOON):
        patient = login_as(world["patient_user"])
        url = reverse("pharmacy:new_otc_order")
        refused = patient.post(url, otc_form(world, patient=stranger.pk))
        assert refused.status_code == 422 and 'id="id_patient_errors"' in refused.content.decode()
        assert not Order.objects.exists()
        # A pharmacist's staff account is no patient: nothing to buy for.
        staff_page = login_as(world["staff_a"]).get(url)
        assert staff_page.status_code == 200 and 'id="not-buyer"' in staff_page.content.decode()
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
