"""The pharmacy API: the whole way of an order through the endpoints, and every endpoint tried by
every role (anonymous included): the expected status, and a refused request changes nothing."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from nethospital.core import clock
from nethospital.pharmacy import delivery
from nethospital.pharmacy.models import DispensedPack, DispenseScan, Order, Payment, Refund, StockReceipt
from nethospital.pharmacy.tests.conftest import NOON, element_string, manufacture
from nethospital.pharmacy.tests.test_orders import order_rx, pay
from nethospital.traceability.models import Alert, EPCISEvent

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, path: str, body=None, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    if method == "GET":
        return client.get(path, **headers)
    return getattr(client, method.lower())(
        path, data=json.dumps(body or {}), content_type="application/json", **headers
    )


def test_an_order_from_placing_to_the_door_through_the_api(world, login_as):
    with clock.frozen(NOON):
        patient = login_as(world["patient_user"])
        body = {
            "pharmacy_id": world["pharmacy_a"].pk,
            "prescription_id": world["rx"].pk,
            "otc": [{"drug_pack_id": world["otc"].pk, "quantity": 1}],
            "fulfilment": "delivery",
            "recipient_name": "张伟",
            "recipient_phone": "13800001234",
            "address": "北京市东城区 1 号",
            "payment_method": "sandbox",
            "notice_confirmed": True,
        }
        assert call(patient, "POST", "/api/pharmacy/orders", body).status_code == 400  # no Idempotency-Key
        created = call(patient, "POST", "/api/pharmacy/orders", body, key="api-order-key-1")
        assert created.status_code == 201
        order = created.json()
        assert [line["gtin"] for line in order["prescription_lines"]] == [world["amlodipine"].gtin]
        assert [line["gtin"] for line in order["other_lines"]] == [world["otc"].gtin]
        assert order["delivery_code"] is None  # not before it is paid
        again = call(patient, "POST", "/api/pharmacy/orders", body, key="api-order-key-1")
        assert (again.status_code, again.json()["id"]) == (200, order["id"])

        base = f"/api/pharmacy/orders/{order['id']}"
        declined = call(patient, "POST", f"{base}/pay", {"card": "4000000000000002"}, key="api-pay-key-01")
        assert declined.status_code == 402 and declined.json()["error"]["code"] == "payment_declined"
        paid = call(patient, "POST", f"{base}/pay", {"card": "4242424242424242"}, key="api-pay-key-02")
        assert paid.status_code == 200 and paid.json()["status"] == "awaiting_dispensing"
        code = paid.json()["delivery_code"]
        assert code == delivery.code_for(Order.objects.get(pk=order["id"]))

        pharmacist = login_as(world["pharmacist_a"], mfa=True)
        picking = call(pharmacist, "GET", f"{base}/picking").json()
        assert picking[0]["suggested"][0]["batch"] == "EARLY"
        refused = call(pharmacist, "POST", f"{base}/dispense/scan", {"code": element_string(world["b_boxes"][0])})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "pack_not_in_stock"
        for identifier in (world["early"][0], world["otc_boxes"][0]):
            scanned = call(pharmacist, "POST", f"{base}/dispense/scan", {"code": element_string(identifier)})
            assert scanned.status_code == 200
        assert scanned.json()["all_scanned"] is True
        dispensed = call(pharmacist, "POST", f"{base}/dispense")
        assert dispensed.status_code == 200 and dispensed.json()["status"] == "dispensed"
        assert sorted(dispensed.json()["boxes"]) == sorted([world["early"][0], world["otc_boxes"][0]])

        courier = login_as(world["courier_a"])
        assert [o["id"] for o in call(courier, "GET", "/api/pharmacy/courier/orders").json()] == [order["id"]]
        taken = call(courier, "POST", f"{base}/handover", {"codes": [world["early"][0], world["otc_boxes"][0]]})
        assert taken.status_code == 200 and taken.json()["status"] == "in_transit"
        assert taken.json()["delivery_code"] is None  # the courier never sees the code
        wrong = "000000" if code != "000000" else "111111"
        assert call(courier, "POST", f"{base}/deliver", {"code": wrong}).status_code == 409
        delivered = call(courier, "POST", f"{base}/deliver", {"code": code})
        assert delivered.status_code == 200 and delivered.json()["status"] == "delivered"
        assert call(patient, "GET", base).json()["delivery_code"] is None  # used: no longer shown


def test_stock_and_receiving_through_the_api(world, login_as):
    with clock.frozen(NOON):
        staff = login_as(world["staff_a"])
        rows = {r["gtin"]: r for r in call(staff, "GET", f"/api/pharmacy/{world['pharmacy_a'].pk}/stock").json()}
        assert rows[world["amlodipine"].gtin]["sellable"] == 6
        boxes = manufacture(world["amlodipine"], 2, batch="API", expiry="2029-05-31")
        received = call(staff, "POST", f"/api/pharmacy/{world['pharmacy_a'].pk}/receive", {"codes": boxes})
        assert received.status_code == 201 and len(received.json()["in_stock"]) == 2
        a, amlodipine = world["pharmacy_a"].pk, world["amlodipine"].pk
        fefo = call(staff, "GET", f"/api/pharmacy/{a}/stock/boxes?drug_pack_id={amlodipine}")
        assert [b["batch"] for b in fefo.json()][:2] == ["EARLY", "EARLY"]
        assert [b["batch"] for b in fefo.json()][-2:] == ["API", "API"]
        priced = call(staff, "PUT", f"/api/pharmacy/{a}/prices/{world['otc'].pk}", {"price": "9.90"})
        assert priced.status_code == 200 and priced.json()["price"] == "9.90"
        patient = login_as(world["patient_user"])
        plans = call(patient, "GET", f"/api/pharmacy/pharmacies?prescription_id={world['rx'].pk}").json()
        by_id = {p["id"]: p for p in plans}
        assert (by_id[a]["can_supply"], by_id[a]["total"]) == (True, "32.50")


def _snapshot(order_id: int) -> tuple:
    order = Order.objects.get(pk=order_id)
    return (
        Order.objects.count(),
        order.status,
        order.courier_id,
        order.delivery_code_failures,
        Payment.objects.count(),
        Refund.objects.count(),
        DispenseScan.objects.count(),
        DispensedPack.objects.count(),
        StockReceipt.objects.count(),
        EPCISEvent.objects.count(),
        Alert.objects.count(),
    )


SKIP = -1
ACTORS = [
    "anonymous",
    "patient_user",
    "stranger",
    "pharmacist_a",
    "pharmacist_a_no_mfa",
    "staff_a",
    "pharmacist_b",
    "courier_a",
    "courier_b",
    "operator",
]


def test_every_endpoint_by_every_role(world, login_as):
    """A paid order waiting for the pharmacist at pharmacy A: who may do what to it."""
    from nethospital.testing import factories

    with clock.frozen(NOON):
        order = order_rx(world).order
        pay(world, order)
        world["stranger"] = factories.patient_user(legal_name="赵六")
        clients = {"anonymous": Client()}
        for actor in ACTORS[1:]:
            if actor == "pharmacist_a_no_mfa":
                clients[actor] = login_as(world["pharmacist_a"])
            else:
                clients[actor] = login_as(world[actor], mfa=actor.startswith("pharmacist"))
        a, o = world["pharmacy_a"].pk, order.pk
        box = element_string(world["early"][0])
        new_box = manufacture(world["amlodipine"], 1, batch="M", expiry="2029-01-31")[0]
        order_body = {
            "pharmacy_id": a,
            "prescription_id": world["rx"].pk,
            "fulfilment": "delivery",
            "recipient_name": "某人",
            "recipient_phone": "13800001234",
            "address": "某地",
            "payment_method": "sandbox",
            "notice_confirmed": True,
        }
        # (method, path, body, idempotency key, {actor: status}); anyone not named gets `default`.
        cases = [
            ("GET", f"/api/pharmacy/{a}/stock", None, None, 403,
             {"anonymous": 401, "pharmacist_a": 200, "staff_a": 200}),
            ("GET", f"/api/pharmacy/{a}/stock/boxes", None, None, 403,
             {"anonymous": 401, "pharmacist_a": 200, "staff_a": 200}),
            ("POST", f"/api/pharmacy/{a}/receive", {"codes": [new_box]}, None, 403,
             {"anonymous": 401, "pharmacist_a": 201, "staff_a": 201}),
            ("PUT", f"/api/pharmacy/{a}/prices/{world['otc'].pk}", {"price": "1.00"}, None, 403,
             {"anonymous": 401, "pharmacist_a": 200, "staff_a": 200}),
            ("GET", f"/api/pharmacy/{a}/orders", None, None, 403,
             {"anonymous": 401, "pharmacist_a": 200, "staff_a": 200}),
            ("GET", f"/api/pharmacy/orders/{o}", None, None, 404,
             {"anonymous": 401, "patient_user": 200, "pharmacist_a": 200, "staff_a": 200,
              "pharmacist_a_no_mfa": 403}),
            ("POST", "/api/pharmacy/orders", order_body, "matrix-order-key", 404,
             {"anonymous": 401, "patient_user": 409}),
            ("POST", f"/api/pharmacy/orders/{o}/pay", {}, "matrix-pay-key1", 404,
             {"anonymous": 401, "patient_user": 409}),
            ("POST", f"/api/pharmacy/orders/{o}/delivery-code", {}, None, 404,
             {"anonymous": 401, "patient_user": 200}),
            ("GET", f"/api/pharmacy/orders/{o}/picking", None, None, 404,
             {"anonymous": 401, "pharmacist_a": 200, "staff_a": 403, "pharmacist_a_no_mfa": 403,
              "patient_user": 403}),
            # The pharmacist's own scan and dispensing are the flow test's; here only the refusals.
            ("POST", f"/api/pharmacy/orders/{o}/dispense/scan", {"code": box}, None, 403,
             {"anonymous": 401, "pharmacist_a": SKIP}),
            ("POST", f"/api/pharmacy/orders/{o}/dispense", {}, None, 403, {"anonymous": 401, "pharmacist_a": SKIP}),
            ("POST", f"/api/pharmacy/orders/{o}/handover", {"codes": [box]}, None, 403,
             {"anonymous": 401, "courier_a": 409}),
            ("POST", f"/api/pharmacy/orders/{o}/deliver", {"code": "123456"}, None, 403, {"anonymous": 401}),
            ("POST", f"/api/pharmacy/orders/{o}/station/receive", {"codes": [box]}, None, 403, {"anonymous": 401}),
            ("POST", f"/api/pharmacy/orders/{o}/station/pickup", {"identity_checked": True}, None, 403,
             {"anonymous": 401}),
            ("GET", "/api/pharmacy/courier/orders", None, None, 200, {"anonymous": 401}),
            ("GET", "/api/pharmacy/station/orders", None, None, 200, {"anonymous": 401}),
            ("POST", f"/api/pharmacy/orders/{o}/cancel", {"reason": ""}, None, 404,
             {"anonymous": 401, "staff_a": 400, "pharmacist_a": 400, "pharmacist_a_no_mfa": 403,
              "patient_user": SKIP}),
        ]  # fmt: skip
        # Refusals first (nothing may change), then the allowed reads and writes.
        outcomes = []
        for method, path, body, key, default, expected in cases:
            for actor in ACTORS:
                status = expected.get(actor, default)
                if status is SKIP:
                    continue
                outcomes.append((status >= 400, method, path, body, key, actor, status))
        for refused, method, path, body, key, actor, status in sorted(outcomes, key=lambda c: not c[0]):
            before = _snapshot(o)
            response = call(clients[actor], method, path, body, key)
            assert response.status_code == status, (actor, method, path, response.content[:300])
            if refused:
                assert _snapshot(o) == before, (actor, method, path)
        # The allowed delivery-code request made a new code version; receiving made a receipt.
        order.refresh_from_db()
        assert order.delivery_code_version == 2
        assert StockReceipt.objects.filter(pharmacy_id=a).count() == 3  # the world's, the staff's, the pharmacist's
        assert order.status == "awaiting_dispensing"
