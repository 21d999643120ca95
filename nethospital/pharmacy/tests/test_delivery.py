"""Hand-over to the courier, delivery with the patient's one-time code (wrong codes, attempts, a new
code), pickup at a village station with cash; each step an EPCIS event with its place; the
patient's journey of each box."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.pharmacy import actions, delivery
from nethospital.pharmacy.actions import Delivery
from nethospital.pharmacy.choices import Fulfilment, OrderStatus, PaymentMethod, PaymentStatus
from nethospital.pharmacy.events import delivery_point_uri
from nethospital.pharmacy.models import Order, Payment
from nethospital.pharmacy.tests.conftest import NOON, element_string
from nethospital.pharmacy.tests.test_orders import order_rx, pay
from nethospital.testing import factories
from nethospital.traceability import state
from nethospital.traceability.choices import AlertKind, PackStatus
from nethospital.traceability.journey import journey_for
from nethospital.traceability.models import Alert, EPCISEvent, Pack

pytestmark = pytest.mark.django_db
LATER = dt.timedelta(minutes=30)


def refusal(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def dispensed(world, **order_fields) -> Order:
    order = order_rx(world, **order_fields).order
    if order.status == OrderStatus.AWAITING_PAYMENT:
        pay(world, order)
    actions.scan_box(world["pharmacist_a"], order.pk, element_string(world["early"][0]))
    return actions.complete_dispensing(world["pharmacist_a"], order.pk)


def last_event(identifier: str) -> EPCISEvent:
    return Pack.objects.get(identifier=identifier).last_event  # type: ignore[return-value]


def test_home_delivery_with_the_patients_code(world):
    with clock.frozen(NOON):
        box = world["early"][0]
        order = dispensed(world)
        courier = world["courier_a"]
        # The courier must scan exactly the order's boxes.
        wrong = refusal(lambda: actions.hand_over_to_courier(courier, order.pk, [element_string(world["late"][0])]))
        assert wrong.code == "handover_mismatch"
        assert refusal(lambda: actions.hand_over_to_courier(world["courier_b"], order.pk, [box])).code == "not_courier"
        clock.advance(dt.timedelta(minutes=10))
        order = actions.hand_over_to_courier(courier, order.pk, [element_string(box)])
        assert (order.status, order.courier_id) == (OrderStatus.IN_TRANSIT, courier.pk)
        handover = last_event(box)
        assert (state.cbv_word(handover.biz_step), state.cbv_word(handover.disposition)) == ("departing", "in_transit")
        assert handover.biz_location == state.location_uri_for(world["pharmacy_a"])
        assert Pack.objects.get(identifier=box).status == PackStatus.WITH_COURIER

        clock.advance(LATER)
        code = delivery.code_for(order)
        assert len(code) == 6 and code.isdigit()
        assert code not in order.delivery_code_hash  # only a keyed hash is stored
        other_courier = world["courier_a2"]
        assert refusal(lambda: actions.deliver_with_code(other_courier, order.pk, code)).code == "not_your_delivery"
        wrong_code = "000000" if code != "000000" else "111111"
        error = refusal(lambda: actions.deliver_with_code(courier, order.pk, wrong_code))
        assert error.code == "delivery_code_wrong" and "4" in error.message
        order.refresh_from_db()
        assert order.delivery_code_failures == 1  # counted, and committed with the refusal
        order = actions.deliver_with_code(courier, order.pk, code)
        assert (order.status, order.delivered_by_id) == (OrderStatus.DELIVERED, courier.pk)
        arrival = last_event(box)
        assert (state.cbv_word(arrival.biz_step), state.cbv_word(arrival.disposition)) == ("arriving", "dispensed")
        assert arrival.read_point == delivery_point_uri(order.number) and arrival.biz_location == ""
        assert order.delivery_address not in str(arrival.document)  # no personal data in the event
        assert Pack.objects.get(identifier=box).status == PackStatus.DELIVERED
        assert not Alert.objects.filter(identifier=box).exists()  # a clean way: no anomaly

        # The patient sees the box's whole way, from the factory to the door.
        with translation.override("en"):
            journey = journey_for(world["patient_user"], box)
        steps = [step.what for step in journey.steps]
        assert steps[0] == "Made and given its code"
        assert steps[-4:] == ["Received", "Dispensed by the pharmacist", "Handed to the courier", "Delivered"]
        assert journey.steps[-2].place == world["pharmacy_a"].name_en
        stranger = factories.patient_user(legal_name="赵六")
        assert refusal(lambda: journey_for(stranger, box)).code == "journey_not_found"


def test_wrong_codes_lock_after_the_limit_and_a_new_code_unlocks(world, settings):
    settings.NETHOSPITAL_DELIVERY_CODE_ATTEMPTS = 3
    with clock.frozen(NOON):
        order = dispensed(world)
        box = world["early"][0]
        actions.hand_over_to_courier(world["courier_a"], order.pk, [box])
        old_code = delivery.code_for(order)
        wrong = "000000" if old_code != "000000" else "111111"
        codes_seen = [refusal(lambda: actions.deliver_with_code(world["courier_a"], order.pk, wrong)).code]
        codes_seen.append(refusal(lambda: actions.deliver_with_code(world["courier_a"], order.pk, wrong)).code)
        codes_seen.append(refusal(lambda: actions.deliver_with_code(world["courier_a"], order.pk, wrong)).code)
        assert codes_seen == ["delivery_code_wrong", "delivery_code_wrong", "delivery_code_locked"]
        # Locked: even the right code is refused now.
        assert refusal(lambda: actions.deliver_with_code(world["courier_a"], order.pk, old_code)).code == (
            "delivery_code_locked"
        )
        # Only the patient's side may ask for a new code; the old one stops working.
        assert refusal(lambda: actions.new_delivery_code(world["courier_a"], order.pk)).code == "order_not_found"
        order = actions.new_delivery_code(world["patient_user"], order.pk)
        new_code = delivery.code_for(order)
        assert (order.delivery_code_version, order.delivery_code_failures) == (2, 0)
        if new_code != old_code:
            assert refusal(lambda: actions.deliver_with_code(world["courier_a"], order.pk, old_code)).code == (
                "delivery_code_wrong"
            )
        clock.advance(LATER)
        assert actions.deliver_with_code(world["courier_a"], order.pk, new_code).status == OrderStatus.DELIVERED


def test_pickup_at_a_village_station_with_cash(world):
    with clock.frozen(NOON):
        at_station = Delivery(Fulfilment.STATION_PICKUP, station_id=world["station"].pk)
        order = dispensed(world, how=at_station, method=PaymentMethod.CASH_AT_STATION)
        box = world["early"][0]
        actions.hand_over_to_courier(world["courier_a"], order.pk, [box])
        # Not a home delivery: the courier does not take a code for it.
        code = delivery.code_for(order)
        assert refusal(lambda: actions.deliver_with_code(world["courier_a"], order.pk, code)).code == (
            "not_home_delivery"
        )
        clock.advance(LATER)
        operator, other = world["operator"], world["other_operator"]
        assert refusal(lambda: actions.receive_at_station(other, order.pk, [box])).code == "not_station_operator"
        assert refusal(lambda: actions.pick_up_at_station(operator, order.pk, identity_checked=True)).code == (
            "order_not_at_station"
        )
        order = actions.receive_at_station(operator, order.pk, [element_string(box)])
        assert order.status == OrderStatus.AT_STATION
        arrival = last_event(box)
        assert arrival.biz_location == state.location_uri_for(world["station"])
        assert Pack.objects.get(identifier=box).status == PackStatus.WITH_COURIER  # still on its way to the patient

        clock.advance(dt.timedelta(hours=2))
        assert refusal(lambda: actions.pick_up_at_station(operator, order.pk, identity_checked=False)).code == (
            "identity_not_checked"
        )
        error = refusal(lambda: actions.pick_up_at_station(operator, order.pk, identity_checked=True))
        assert error.code == "cash_not_confirmed" and "32.50" in error.message
        order = actions.pick_up_at_station(operator, order.pk, identity_checked=True, cash_received=True)
        assert (order.status, order.delivered_by_id) == (OrderStatus.DELIVERED, operator.pk)
        payment = Payment.objects.get(order=order)
        assert (payment.status, payment.collected_by_id) == (PaymentStatus.SUCCEEDED, operator.pk)
        pickup = last_event(box)
        assert state.cbv_word(pickup.biz_step) == "arriving"
        assert pickup.biz_location == state.location_uri_for(world["station"])
        assert Pack.objects.get(identifier=box).status == PackStatus.DELIVERED
        with translation.override("en"):
            journey = journey_for(world["patient_user"], box)
        assert [(s.what, s.place) for s in journey.steps[-2:]] == [
            ("Received", world["station"].name_en),
            ("Delivered", world["station"].name_en),
        ]
        assert not Alert.objects.filter(identifier=box).exclude(kind=AlertKind.UNKNOWN_CODE).exists()


def test_the_courier_cannot_take_an_order_not_yet_dispensed(world):
    with clock.frozen(NOON):
        order = order_rx(world).order
        pay(world, order)
        error = refusal(lambda: actions.hand_over_to_courier(world["courier_a"], order.pk, [world["early"][0]]))
        assert error.code == "order_not_ready_for_courier"
        assert Pack.objects.get(identifier=world["early"][0]).status == PackStatus.RECEIVED
