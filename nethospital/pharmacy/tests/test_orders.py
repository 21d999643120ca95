"""Orders at the action level, clock injected: the real-name rule (R18), nothing before approval
(R9), used once (R15), the R16 notice, idempotency, stock reservation, payments and refunds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Sex
from nethospital.accounts.identity import make_number
from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry
from nethospital.pharmacy import actions, stock
from nethospital.pharmacy.actions import Delivery, OtcItem
from nethospital.pharmacy.choices import Fulfilment, OrderStatus, PaymentMethod, PaymentStatus, RefundStatus
from nethospital.pharmacy.models import DispenseScan, Order, Payment, Refund
from nethospital.pharmacy.payments import SANDBOX_DECLINED, SANDBOX_INSUFFICIENT_FUNDS
from nethospital.pharmacy.tests.conftest import NOON, approved_prescription, element_string
from nethospital.prescriptions import actions as rx_actions
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.tests.conftest import follow_up_consultation
from nethospital.testing import factories

pytestmark = pytest.mark.django_db

HOME = Delivery(Fulfilment.DELIVERY, recipient_name="张伟", recipient_phone="13800001234", address="北京市东城区 1 号")


def code_of(call) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value.code


def order_rx(world, user=None, *, key="order-key-0001", how=HOME, method=PaymentMethod.SANDBOX, rx=None, **extra):
    return actions.create_order(
        user or world["patient_user"],
        pharmacy_id=extra.pop("pharmacy_id", world["pharmacy_a"].pk),
        how=how,
        payment_method=method,
        idempotency_key=key,
        prescription_id=(rx or world["rx"]).pk,
        notice_confirmed=extra.pop("notice_confirmed", True),
        **extra,
    )


def pay(world, order, key="pay-key-0001", token="", user=None):
    return actions.pay_order(user or world["patient_user"], order.pk, idempotency_key=key, token=token)


# --- placing an order ---------------------------------------------------------------------------------------
def test_patient_orders_an_approved_prescription_with_otc_items_shown_apart(world):
    with clock.frozen(NOON):
        placed = order_rx(world, otc=[OtcItem(world["otc"].pk, 2)])
        order = placed.order
        assert placed.created and order.status == OrderStatus.AWAITING_PAYMENT
        lines = list(order.lines.order_by("position"))
        assert [(line.drug_pack_id, line.quantity, line.is_prescription) for line in lines] == [
            (world["amlodipine"].pk, 1, True),
            (world["otc"].pk, 2, False),
        ]
        assert order.total == Decimal("32.50") + 2 * Decimal("12.80")
        assert order.notice_confirmed_at == NOON
        world["rx"].refresh_from_db()
        assert world["rx"].notice_confirmed_at == NOON  # R16 on the prescription too
        assert order.delivery_code_hash and len(order.delivery_code_hash) == 64
        assert AuditEntry.objects.filter(action="pharmacy.order.create", object_id=str(order.pk)).exists()


def test_r16_notice_must_be_confirmed(world):
    with clock.frozen(NOON):
        assert code_of(lambda: order_rx(world, notice_confirmed=False)) == "notice_required"
        assert not Order.objects.exists()


def test_same_idempotency_key_gives_the_same_order_and_a_different_request_is_refused(world, clinic):
    with clock.frozen(NOON):
        first = order_rx(world, key="same-key-123")
        again = order_rx(world, key="same-key-123")
        assert (again.created, again.order.pk) == (False, first.order.pk)
        assert Order.objects.count() == 1
        assert code_of(lambda: order_rx(world, key="same-key-123", pharmacy_id=world["pharmacy_b"].pk)) == (
            "idempotency_key_reused"
        )
        assert code_of(lambda: order_rx(world, key="short")) == "idempotency_key_invalid"


def test_one_active_order_per_prescription_until_cancelled(world):
    with clock.frozen(NOON):
        first = order_rx(world, key="first-order-key").order
        assert code_of(lambda: order_rx(world, key="second-order-key")) == "prescription_already_ordered"
        actions.cancel_order(world["patient_user"], first.pk)
        second = order_rx(world, key="third-order-key").order
        assert second.pk != first.pk and second.status == OrderStatus.AWAITING_PAYMENT


# --- R18: real-name sale -----------------------------------------------------------------------------------------
def _family_member(holder, relationship: str, age: int, name: str):
    birth = dt.date(NOON.year - age, 3, 1)
    return account_actions.add_family_member(
        holder,
        legal_name=name,
        id_number=make_number("110101", birth, 77, Sex.FEMALE),
        birth_date=birth,
        sex=Sex.FEMALE,
        relationship=relationship,
    )


def _approved_for(clinic, user, patient, drug="t-amlodipine-5", weight=None):
    """A prescription for a family member, written in a consultation the holder booked for them;
    the doctor gives a reason for each warning (children's use) before signing."""
    doctor = clinic["doctor"].user
    consultation = follow_up_consultation(clinic["doctor"], user, patient, "I10")
    rx = rx_actions.create_prescription(doctor, consultation.pk, patient_weight_kg=weight)
    draft = rx_actions.set_items(doctor, rx.pk, [ItemInput(drug=drug, dose="1", frequency="qd", days=7)])
    for finding in draft.findings:
        rx_actions.override_warning(doctor, rx.pk, finding.rule, finding.subject, "儿科会诊后确认")
    rx_actions.sign_prescription(doctor, rx.pk)
    rx_actions.review_prescription(clinic["pharmacist"], rx.pk, "approve")
    rx.refresh_from_db()
    return rx


def test_r18_only_the_patient_or_a_registered_guardian_buys(world, clinic):
    with clock.frozen(NOON):
        # A parent is the registered guardian of her 10-year-old: she buys the child's medicine.
        parent = factories.patient_user(legal_name="王芳", sex=Sex.FEMALE)
        child = _family_member(parent, Relationship.CHILD, 10, "王小宝").patient
        child_rx = _approved_for(clinic, parent, child, weight="32")
        placed = order_rx(world, parent, key="guardian-order-1", rx=child_rx)
        assert (placed.order.patient_id, placed.order.buyer_id) == (child.pk, parent.pk)

        # An adult son acts for his mother (family link, not a guardian): he may not buy for her.
        son = factories.patient_user(legal_name="李强")
        mother = _family_member(son, Relationship.PARENT, 78, "李母").patient
        mother_rx = _approved_for(clinic, son, mother)
        assert code_of(lambda: order_rx(world, son, key="son-order-0001", rx=mother_rx)) == "not_buyer"
        assert code_of(
            lambda: actions.create_order(
                son,
                pharmacy_id=world["pharmacy_a"].pk,
                how=HOME,
                payment_method=PaymentMethod.SANDBOX,
                idempotency_key="son-otc-order-1",
                patient_id=mother.pk,
                otc=[OtcItem(world["otc"].pk, 1)],
            )
        ) == ("not_buyer")

        # A stranger does not even learn the prescription exists.
        stranger = factories.patient_user(legal_name="赵六")
        assert code_of(lambda: order_rx(world, stranger, key="stranger-order")) == "prescription_not_found"
        # Nor do pharmacy staff buy in a patient's name.
        assert code_of(lambda: order_rx(world, world["staff_a"], key="staff-order-01")) == "prescription_not_found"
        assert set(Order.objects.values_list("buyer_id", flat=True)) == {parent.pk}

        # The patient themself, of course.
        assert order_rx(world, key="patient-order-1").order.buyer_id == world["patient_user"].pk


# --- R9 / R15 --------------------------------------------------------------------------------------------------
def test_r9_a_prescription_not_yet_approved_cannot_be_ordered(world, clinic):
    with clock.frozen(NOON):
        doctor = clinic["doctor"].user
        pending = rx_actions.create_prescription(doctor, clinic["consultation"].pk)
        rx_actions.set_items(doctor, pending.pk, [ItemInput(drug="t-amlodipine-5", dose="1", frequency="qd", days=7)])
        assert code_of(lambda: order_rx(world, key="draft-order-01", rx=pending)) == "prescription_not_approved"
        rx_actions.sign_prescription(doctor, pending.pk)
        assert code_of(lambda: order_rx(world, key="pending-order-1", rx=pending)) == "prescription_not_approved"
        rx_actions.review_prescription(clinic["pharmacist"], pending.pk, "reject", reason_codes=["dose"])
        assert code_of(lambda: order_rx(world, key="rejected-order1", rx=pending)) == "prescription_not_approved"
        assert not Order.objects.exists()


def test_an_expired_prescription_cannot_be_ordered(world):
    with clock.frozen(NOON):
        clock.advance(dt.timedelta(hours=13))  # the prescription was valid for its day of issue (R13)
        assert code_of(lambda: order_rx(world)) == "prescription_expired"


def test_r15_a_used_prescription_cannot_be_ordered_again(world):
    with clock.frozen(NOON):
        order = order_rx(world, key="used-order-0001").order
        pay(world, order)
        actions.scan_box(world["pharmacist_a"], order.pk, element_string(world["early"][0]))
        actions.complete_dispensing(world["pharmacist_a"], order.pk)
        world["rx"].refresh_from_db()
        assert world["rx"].status == PrescriptionStatus.DISPENSED and world["rx"].dispensed_at == NOON
        assert code_of(lambda: order_rx(world, key="used-order-0002")) == "prescription_used"


# --- stock -------------------------------------------------------------------------------------------------------
def test_open_orders_reserve_stock_and_more_than_available_is_refused(world):
    with clock.frozen(NOON):
        pharmacy = world["pharmacy_a"].pk
        assert stock.available(pharmacy, world["otc"].pk) == 3
        actions.create_order(
            world["patient_user"],
            pharmacy_id=pharmacy,
            how=HOME,
            payment_method=PaymentMethod.SANDBOX,
            idempotency_key="otc-order-0001",
            patient_id=world["patient"].pk,
            otc=[OtcItem(world["otc"].pk, 2)],
        )
        assert stock.available(pharmacy, world["otc"].pk) == 1
        with pytest.raises(DomainError) as refusal:
            actions.create_order(
                world["patient_user"],
                pharmacy_id=pharmacy,
                how=HOME,
                payment_method=PaymentMethod.SANDBOX,
                idempotency_key="otc-order-0002",
                patient_id=world["patient"].pk,
                otc=[OtcItem(world["otc"].pk, 2)],
            )
        assert refusal.value.code == "not_enough_stock"
        assert refusal.value.params["available"] == 1


def test_a_prescription_drug_is_never_sold_as_otc_and_unknown_products_are_refused(world):
    with clock.frozen(NOON):

        def otc(pack_id, pharmacy="pharmacy_a"):
            return actions.create_order(
                world["patient_user"],
                pharmacy_id=world[pharmacy].pk,
                how=HOME,
                payment_method=PaymentMethod.SANDBOX,
                idempotency_key=f"otc-{pack_id}-{pharmacy}",
                patient_id=world["patient"].pk,
                otc=[OtcItem(pack_id, 1)],
            )

        assert code_of(lambda: otc(world["amlodipine"].pk)) == "needs_prescription"
        assert code_of(lambda: otc(world["otc"].pk, "pharmacy_b")) == "not_sold_here"
        assert not Order.objects.exists()


def test_a_prescribed_drug_the_pharmacy_does_not_sell_is_refused(world, clinic):
    with clock.frozen(NOON):
        simvastatin_rx = approved_prescription(clinic, drug="t-simvastatin-20")
        # Pharmacy B has no price for simvastatin; pharmacy A has one but no boxes.
        assert code_of(lambda: order_rx(world, key="b-simvastatin-1", rx=simvastatin_rx,
                                        pharmacy_id=world["pharmacy_b"].pk)) == "not_sold_here"  # fmt: skip
        assert code_of(lambda: order_rx(world, key="a-simvastatin-1", rx=simvastatin_rx)) == "not_enough_stock"


def test_delivery_details_and_cash_only_at_a_station(world):
    with clock.frozen(NOON):
        no_address = Delivery(Fulfilment.DELIVERY, recipient_name="张伟", recipient_phone="13800001234")
        assert code_of(lambda: order_rx(world, how=no_address)) == "delivery_details_required"
        bad_phone = Delivery(Fulfilment.DELIVERY, recipient_name="张伟", recipient_phone="12345", address="某地")
        assert code_of(lambda: order_rx(world, how=bad_phone)) == "phone_invalid"
        assert code_of(lambda: order_rx(world, method=PaymentMethod.CASH_AT_STATION)) == "cash_only_at_station"
        no_station = Delivery(Fulfilment.STATION_PICKUP, station_id=world["pharmacy_b"].pk)
        assert code_of(lambda: order_rx(world, how=no_station)) == "station_required"
        assert not Order.objects.exists()


# --- payments and refunds -----------------------------------------------------------------------------------------
def test_sandbox_payment_declined_then_paid_and_same_key_is_the_same_payment(world):
    with clock.frozen(NOON):
        order = order_rx(world).order
        assert code_of(lambda: pay(world, order, "pay-declined-1", SANDBOX_DECLINED)) == "payment_declined"
        assert code_of(lambda: pay(world, order, "pay-declined-1", SANDBOX_DECLINED)) == "payment_declined"
        assert code_of(lambda: pay(world, order, "pay-poor-00001", SANDBOX_INSUFFICIENT_FUNDS)) == "payment_declined"
        assert list(Payment.objects.filter(order=order).values_list("status", flat=True)) == ["failed", "failed"]
        order.refresh_from_db()
        assert order.status == OrderStatus.AWAITING_PAYMENT
        payment = pay(world, order, "pay-success-01")
        assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_reference.startswith("sbx_ch_")
        assert pay(world, order, "pay-success-01").pk == payment.pk  # a retried request
        assert code_of(lambda: pay(world, order, "pay-success-02")) == "order_not_awaiting_payment"
        order.refresh_from_db()
        assert (order.status, order.paid_at) == (OrderStatus.AWAITING_DISPENSING, NOON)


def test_cancel_before_dispensing_refunds_and_releases_scanned_boxes(world):
    with clock.frozen(NOON):
        order = order_rx(world).order
        payment = pay(world, order)
        actions.scan_box(world["pharmacist_a"], order.pk, element_string(world["early"][0]))
        cancelled = actions.cancel_order(world["patient_user"], order.pk, "不需要了")
        assert cancelled.status == OrderStatus.CANCELLED and cancelled.cancel_reason == "不需要了"
        payment.refresh_from_db()
        refund = Refund.objects.get(payment=payment)
        assert (payment.status, refund.status, refund.amount) == (
            PaymentStatus.REFUNDED,
            RefundStatus.SUCCEEDED,
            Decimal("32.50"),
        )
        assert refund.provider_reference.startswith("sbx_re_")
        assert not DispenseScan.objects.filter(released_at__isnull=True).exists()
        assert code_of(lambda: actions.cancel_order(world["patient_user"], order.pk)) == "order_not_cancellable"


def test_cash_at_the_station_is_voided_on_cancel_and_the_pharmacy_cancels_with_a_reason(world):
    with clock.frozen(NOON):
        at_station = Delivery(Fulfilment.STATION_PICKUP, station_id=world["station"].pk)
        order = order_rx(world, how=at_station, method=PaymentMethod.CASH_AT_STATION).order
        assert order.status == OrderStatus.AWAITING_DISPENSING  # cash is taken at pickup
        assert code_of(lambda: actions.cancel_order(world["staff_a"], order.pk)) == "cancel_reason_required"
        assert code_of(lambda: actions.cancel_order(world["staff_b"], order.pk, "缺货")) == "order_not_found"
        actions.cancel_order(world["staff_a"], order.pk, "缺货")
        payment = Payment.objects.get(order=order)
        assert payment.status == PaymentStatus.VOIDED and not Refund.objects.exists()


def test_nobody_cancels_after_dispensing_and_strangers_cannot_cancel(world):
    with clock.frozen(NOON):
        order = order_rx(world).order
        stranger = factories.patient_user(legal_name="赵六")
        assert code_of(lambda: actions.cancel_order(stranger, order.pk)) == "order_not_found"
        pay(world, order)
        actions.scan_box(world["pharmacist_a"], order.pk, element_string(world["early"][0]))
        actions.complete_dispensing(world["pharmacist_a"], order.pk)
        assert code_of(lambda: actions.cancel_order(world["patient_user"], order.pk)) == "order_not_cancellable"
        assert code_of(lambda: actions.cancel_order(world["pharmacist_a"], order.pk, "x")) == "order_not_cancellable"
        order.refresh_from_db()
        assert order.status == OrderStatus.DISPENSED


# --- unpaid orders expire -------------------------------------------------------------------------------------
def test_an_order_not_paid_in_time_is_cancelled_and_frees_prescription_and_stock(
    world, settings, django_capture_on_commit_callbacks
):
    from nethospital.core.models import Notification
    from nethospital.pharmacy import tasks

    settings.NETHOSPITAL_ORDER_PAYMENT_MINUTES = 30
    pharmacy, pack = world["pharmacy_a"].pk, world["amlodipine"].pk
    with clock.frozen(NOON):
        before = stock.available(pharmacy, pack)
        order = order_rx(world).order
        assert stock.available(pharmacy, pack) == before - 1
    with clock.frozen(NOON + dt.timedelta(minutes=29)):
        assert actions.expire_unpaid_orders() == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT
    with clock.frozen(NOON + dt.timedelta(minutes=30)):
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.run_sweep() == {"unpaid_orders_expired": 1}
        assert actions.expire_unpaid_orders() == 0  # once
        order.refresh_from_db()
        assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "not paid in time")
        assert order.cancelled_by is None
        assert AuditEntry.objects.filter(action="pharmacy.order.expire", object_id=str(order.pk)).count() == 1
        assert Notification.objects.filter(user=world["patient_user"], kind="pharmacy.order.expired").count() == 1
        assert stock.available(pharmacy, pack) == before
        again = order_rx(world, key="order-again-0001").order  # the prescription is free again
        assert again.status == OrderStatus.AWAITING_PAYMENT


def test_a_paid_order_never_expires(world, settings):
    # (Cash at the station is never waiting for an online payment: it goes to the pharmacist at once.)
    settings.NETHOSPITAL_ORDER_PAYMENT_MINUTES = 30
    with clock.frozen(NOON):
        order = order_rx(world).order
        pay(world, order)
    with clock.frozen(NOON + dt.timedelta(days=2)):
        assert actions.expire_unpaid_orders() == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_DISPENSING
