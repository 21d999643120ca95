"""Pharmacy writes under real concurrency on PostgreSQL (threads with their own connections, released
together): one box scanned for two orders at once goes to one of them, and one prescription ordered
from several requests at once makes one order (R15). Only in the PostgreSQL pass of ``make test``."""

from __future__ import annotations

from collections import Counter

import pytest

from nethospital.core import clock
from nethospital.pharmacy import actions
from nethospital.pharmacy.models import DispenseScan, Order
from nethospital.pharmacy.tests.conftest import NOON, approved_prescription, element_string
from nethospital.pharmacy.tests.test_orders import order_rx, pay
from nethospital.scheduling.tests.test_concurrency import run_together
from nethospital.testing import factories

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def icd10_codes(transactional_db):  # type: ignore[no-untyped-def]
    """The ICD-10 subset comes from a data migration; a transactional test's flush removes it."""
    factories.icd10_subset()


def counted(results) -> Counter[str]:
    return Counter(
        "ok" if kind == "ok" else (value if kind == "refused" else f"crashed: {value}") for kind, value in results
    )


def test_one_box_scanned_for_two_orders_at_once_goes_to_one(world, clinic):
    with clock.frozen(NOON, all_threads=True):
        second_rx = approved_prescription(clinic)
        orders = [order_rx(world, key=f"race-order-{i}", rx=rx).order for i, rx in enumerate([world["rx"], second_rx])]
        for i, order in enumerate(orders):
            pay(world, order, key=f"race-pay-key-{i}")
        code = element_string(world["early"][0])
        results = run_together(2, lambda i: actions.scan_box(world["pharmacist_a"], orders[i].pk, code).scan.pk)
        assert counted(results) == Counter({"ok": 1, "already_scanned": 1})
        assert DispenseScan.objects.filter(released_at__isnull=True).count() == 1


def test_one_prescription_ordered_from_many_requests_at_once_makes_one_order(world):
    with clock.frozen(NOON, all_threads=True):
        results = run_together(4, lambda i: order_rx(world, key=f"many-order-{i:04d}").order.pk)
        assert counted(results) == Counter({"ok": 1, "prescription_already_ordered": 3})
        assert Order.objects.count() == 1
