"""Dispensing by scanning each box (R9, R15, R19, R20): every refusal reason, FEFO, the one
transaction that records the EPCIS event, marks the prescription used and writes who got which box;
the recall resolver."""

from __future__ import annotations

import datetime as dt

import pytest

from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry, Notification
from nethospital.pharmacy import actions, stock
from nethospital.pharmacy.choices import OrderStatus
from nethospital.pharmacy.models import DispensedPack, DispenseScan
from nethospital.pharmacy.tests.conftest import (
    NOON,
    SHIPPED,
    approved_prescription,
    box_urn,
    element_string,
    manufacture,
)
from nethospital.pharmacy.tests.test_orders import order_rx, pay
from nethospital.pharmacy.traceability import patients_for_packs
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.traceability import recalls, state
from nethospital.traceability.choices import AlertKind, PackStatus
from nethospital.traceability.models import Alert, EPCISEvent, Pack
from nethospital.traceability.tests import trace_helpers

pytestmark = pytest.mark.django_db


def refusal(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


@pytest.fixture
def paid(world):
    """The patient's prescription ordered at pharmacy A and paid."""
    with clock.frozen(NOON):
        order = order_rx(world).order
        pay(world, order)
        order.refresh_from_db()
    return order


def scan(world, order, identifier, *, user="pharmacist_a", **printed):
    return actions.scan_box(world[user], order.pk, element_string(identifier, **printed))


def test_fefo_suggests_the_earliest_expiry_first(world, paid):
    with clock.frozen(NOON):
        line = paid.lines.get()
        suggestion = stock.suggestion_for(line, world["pharmacy_a"].pk, limit=3)
        assert [p.batch for p in suggestion] == ["EARLY", "EARLY", "LATE"]
        scan(world, paid, world["early"][0])
        # A box scanned for an order is not suggested again.
        assert world["early"][0] not in [p.identifier for p in stock.suggestion_for(line, world["pharmacy_a"].pk)]


def test_the_whole_dispensing_in_one_transaction(world, paid):
    with clock.frozen(NOON):
        box = world["late"][0]  # not the FEFO suggestion: allowed, it is a suggestion
        outcome = scan(world, paid, box, batch="LATE", expiry=dt.date(2028, 6, 30))
        assert (outcome.line_scanned, outcome.all_scanned) == (1, True)
        assert Pack.objects.get(identifier=box).status == PackStatus.RECEIVED  # nothing left the shelf yet
        clock.advance(dt.timedelta(minutes=5))
        order = actions.complete_dispensing(world["pharmacist_a"], paid.pk)
        assert (order.status, order.dispensed_by_id) == (OrderStatus.DISPENSED, world["pharmacist_a"].pk)
        world["rx"].refresh_from_db()
        assert world["rx"].status == PrescriptionStatus.DISPENSED  # R15
        pack = Pack.objects.get(identifier=box)
        assert (pack.status, pack.dispensed_count) == (PackStatus.DISPENSED, 1)
        record = DispensedPack.objects.get()
        assert (record.identifier, record.patient_id, record.prescription_id, record.order_id, record.batch) == (
            box,
            world["patient"].pk,
            world["rx"].pk,
            paid.pk,
            "LATE",
        )
        event = EPCISEvent.objects.get(event_id=record.event_id)
        assert state.cbv_word(event.biz_step) == "dispensing"
        assert event.biz_location == state.location_uri_for(world["pharmacy_a"])
        assert event.document["epcList"] == [box]
        assert "patient" not in str(event.document) and world["patient"].legal_name not in str(event.document)
        assert AuditEntry.objects.filter(action="pharmacy.dispense", patient_id=world["patient"].pk).exists()
        # The recall resolver knows who got the box.
        assert patients_for_packs([box, world["late"][1]]) == {box: world["patient"]}


def test_r9_nothing_is_dispensed_before_payment_or_when_the_prescription_expired(world):
    with clock.frozen(NOON):
        order = order_rx(world).order  # not paid
        assert refusal(lambda: scan(world, order, world["early"][0])).code == "order_not_awaiting_dispensing"
        pay(world, order)
        scan(world, order, world["early"][0])
        clock.advance(dt.timedelta(hours=13))  # past the prescription's validity
        assert refusal(lambda: actions.complete_dispensing(world["pharmacist_a"], order.pk)).code == (
            "prescription_expired"
        )
        order.refresh_from_db()
        assert order.status == OrderStatus.AWAITING_DISPENSING
        assert not DispensedPack.objects.exists()
        assert Pack.objects.get(identifier=world["early"][0]).status == PackStatus.RECEIVED
        assert not EPCISEvent.objects.filter(biz_step__endswith="dispensing").exists()
        world["rx"].refresh_from_db()
        assert world["rx"].status == PrescriptionStatus.APPROVED


def test_complete_needs_every_box(world, clinic):
    with clock.frozen(NOON):
        rx = approved_prescription(  # 30 tablets: two boxes of 28
            clinic, days=30, rx_fields={"supply_kind": "chronic", "supply_reason": "高血压稳定期长期用药"}
        )
        order = order_rx(world, key="two-box-order", rx=rx).order
        pay(world, order)
        assert order.lines.get().quantity == 2
        scan(world, order, world["early"][0])
        error = refusal(lambda: actions.complete_dispensing(world["pharmacist_a"], order.pk))
        assert error.code == "not_all_scanned" and "× 1" in error.message
        assert scan(world, order, world["early"][1]).all_scanned
        actions.complete_dispensing(world["pharmacist_a"], order.pk)
        assert DispensedPack.objects.filter(order=order).count() == 2


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown_serial", "pack_not_found"),
        ("wrong_product", "pack_wrong_product"),
        ("other_pharmacy", "pack_not_in_stock"),
        ("expired", "pack_expired"),
        ("recalled", "pack_recalled"),
        ("decommissioned", "pack_end_of_life"),
        ("never_commissioned", "pack_never_commissioned"),
        ("case_code", "container_code"),
        ("unreadable", "code_bad_check_digit"),
        ("line_complete", "line_complete"),
        ("scanned_for_another_order", "already_scanned"),
    ],
)
def test_each_refusal_says_which_and_why(world, paid, case, expected):
    with clock.frozen(NOON):
        amlodipine = world["amlodipine"]
        code = element_string(world["early"][0])
        if case == "unknown_serial":
            code = element_string(box_urn(amlodipine, "NEVER-MADE"))
        elif case == "wrong_product":
            code = element_string(world["otc_boxes"][0])
        elif case == "other_pharmacy":
            code = element_string(world["b_boxes"][0])
        elif case == "expired":
            (old,) = manufacture(amlodipine, 1, batch="OLD", expiry="2026-10-31")
            trace_helpers.ship([old], time=SHIPPED)
            actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [old])
            code = element_string(old)
        elif case == "recalled":
            recalls.recall_batch(trace_helpers.regulator(), amlodipine.gtin, "EARLY", "溶出度不合格")
        elif case == "decommissioned":
            trace_helpers.scan(state.DECOMMISSIONING, [world["early"][0]], time=NOON + dt.timedelta(minutes=1))
        elif case == "never_commissioned":
            forged = box_urn(amlodipine, "FORGED-1")
            actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [forged])
            code = element_string(forged)
        elif case == "case_code":
            code = world["case"]
        elif case == "unreadable":
            code = "]d2010099999220001921FOO"  # a wrong GTIN check digit
        elif case == "line_complete":
            scan(world, paid, world["late"][0])
        elif case == "scanned_for_another_order":
            other = order_rx(world, key="other-order-0001", rx=approved_prescription(world)).order
            pay(world, other, key="other-pay-0001")
            scan(world, other, world["early"][0])
        scans_before = DispenseScan.objects.filter(order=paid, released_at__isnull=True).count()
        error = refusal(lambda: actions.scan_box(world["pharmacist_a"], paid.pk, code))
        assert error.code == expected
        assert error.message and "%(" not in error.message
        assert DispenseScan.objects.filter(order=paid, released_at__isnull=True).count() == scans_before
        assert not DispensedPack.objects.exists()


def test_a_box_already_dispensed_is_refused_and_raises_the_dispensed_twice_alert(world, paid, clinic):
    with clock.frozen(NOON):
        box = world["early"][0]
        scan(world, paid, box)
        actions.complete_dispensing(world["pharmacist_a"], paid.pk)
        second = order_rx(world, key="second-order-0001", rx=approved_prescription(clinic)).order
        pay(world, second, key="second-pay-00001")
        error = refusal(lambda: scan(world, second, box))
        assert error.code == "pack_already_dispensed" and "R20" in error.message
        alert = Alert.objects.get(kind=AlertKind.DISPENSED_TWICE, identifier=box)  # committed with the refusal
        assert alert.organization_id == world["pharmacy_a"].pk
        assert alert.evidence["attempt"]["scan"] == "dispensing"
        assert AuditEntry.objects.filter(action="pharmacy.dispense.scan", outcome="denied").exists()


def test_a_box_recalled_after_it_was_scanned_leaves_the_order_at_completion(world, paid):
    with clock.frozen(NOON):
        scan(world, paid, world["early"][0])
        recalls.recall_batch(trace_helpers.regulator(), world["amlodipine"].gtin, "EARLY", "杂质超标")
        error = refusal(lambda: actions.complete_dispensing(world["pharmacist_a"], paid.pk))
        assert error.code == "pack_recalled"
        assert not DispenseScan.objects.filter(order=paid, released_at__isnull=True).exists()
        world["rx"].refresh_from_db()
        assert world["rx"].status == PrescriptionStatus.APPROVED
        scan(world, paid, world["late"][0])
        actions.complete_dispensing(world["pharmacist_a"], paid.pk)


def test_release_a_scanned_box(world, paid):
    with clock.frozen(NOON):
        outcome = scan(world, paid, world["early"][0])
        actions.release_scan(world["pharmacist_a"], paid.pk, outcome.scan.pk)
        assert refusal(lambda: actions.release_scan(world["pharmacist_a"], paid.pk, outcome.scan.pk)).code == (
            "scan_not_found"
        )
        assert scan(world, paid, world["early"][0]).all_scanned


def test_who_may_dispense(world, paid):
    with clock.frozen(NOON):
        box = element_string(world["early"][0])
        assert refusal(lambda: actions.scan_box(world["staff_a"], paid.pk, box)).code == "not_dispensing_pharmacist"
        assert refusal(lambda: actions.scan_box(world["pharmacist_b"], paid.pk, box)).code == (
            "not_dispensing_pharmacist"
        )
        assert refusal(lambda: actions.scan_box(world["patient_user"], paid.pk, box)).code == (
            "not_dispensing_pharmacist"
        )
        assert refusal(lambda: actions.scan_box(world["courier_a"], paid.pk, box)).code == "not_dispensing_pharmacist"
        world["pharmacist_a"].is_mfa_verified = False
        assert refusal(lambda: actions.scan_box(world["pharmacist_a"], paid.pk, box)).code == "mfa_required"
        assert not DispenseScan.objects.exists()


def test_a_recall_tells_the_patient_who_received_the_batch(world, paid, django_capture_on_commit_callbacks):
    with clock.frozen(NOON):
        scan(world, paid, world["early"][0])
        actions.complete_dispensing(world["pharmacist_a"], paid.pk)
    with clock.frozen(NOON + dt.timedelta(days=1)), django_capture_on_commit_callbacks(execute=True):
        recalls.recall_batch(trace_helpers.regulator(), world["amlodipine"].gtin, "EARLY", "溶出度不合格")
    told = Notification.objects.get(user=world["patient_user"], kind="traceability.recall.patient")
    assert told.link == f"/traceability/journey/{world['early'][0]}/"
    # The pharmacy still holding a box of the batch is told too.
    assert Notification.objects.filter(user=world["staff_a"], kind="traceability.recall.pharmacy").exists()
