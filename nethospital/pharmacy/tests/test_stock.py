"""Receiving stock by scanning cases (aggregation resolves the boxes, R19), stock per product and per
box, what is not stock (unknown codes, expired, recalled), and who may receive."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry
from nethospital.pharmacy import actions, stock
from nethospital.pharmacy.models import StockReceipt
from nethospital.pharmacy.tests.conftest import (
    NOON,
    SHIPPED,
    box_urn,
    case_of,
    drug_pack,
    element_string,
    manufacture,
)
from nethospital.prescriptions.models import Drug
from nethospital.traceability import recalls, state
from nethospital.traceability.choices import AlertKind, PackStatus
from nethospital.traceability.models import Alert, EPCISEvent, Pack
from nethospital.traceability.tests import trace_helpers

pytestmark = pytest.mark.django_db


def refusal(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def test_scanning_a_case_receives_every_box_in_it(world):
    with clock.frozen(NOON):
        receipts = StockReceipt.objects.filter(pharmacy=world["pharmacy_a"])
        (receipt,) = [r for r in receipts if world["case"] in r.scanned_codes]
        assert receipt.box_count == 9  # six boxes in the case, three scanned on their own
        event = EPCISEvent.objects.get(event_id=receipt.event_id)
        assert state.cbv_word(event.biz_step) == "receiving"
        assert event.biz_location == state.location_uri_for(world["pharmacy_a"])
        boxes = Pack.objects.filter(identifier__in=world["early"] + world["late"])
        assert {(p.status, p.owner_id) for p in boxes} == {(PackStatus.RECEIVED, world["pharmacy_a"].pk)}
        rows = {row.drug_pack.gtin: row for row in stock.stock_by_product(world["pharmacy_a"].pk)}
        amlodipine = rows[world["amlodipine"].gtin]
        assert (amlodipine.sellable, amlodipine.earliest_expiry) == (6, dt.date(2027, 1, 31))
        assert amlodipine.price == Decimal("32.50")
        assert rows[world["otc"].gtin].sellable == 3
        assert rows[world["simvastatin"].gtin].sellable == 0  # offered, none in stock
        per_box = stock.sellable_packs(world["pharmacy_a"].pk).filter(gtin=world["amlodipine"].gtin)
        assert sorted((p.batch, p.expiry.isoformat()) for p in per_box)[:2] == [
            ("EARLY", "2027-01-31"),
            ("EARLY", "2027-01-31"),
        ]


def test_a_pallet_of_cases_resolves_two_levels_and_element_strings_work(world):
    with clock.frozen(NOON):
        boxes = manufacture(world["amlodipine"], 4, batch="PAL", expiry="2029-01-31")
        first = trace_helpers.sscc()
        second = trace_helpers.sscc()
        trace_helpers.pack_into(first, boxes[:2], time=NOON - dt.timedelta(days=15))
        trace_helpers.pack_into(second, boxes[2:], time=NOON - dt.timedelta(days=15))
        pallet = case_of([first, second])
        result = actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [pallet])
        assert sorted(p.identifier for p in result.in_stock) == sorted(boxes)
        # A box typed as its DataMatrix element string is the same box.
        assert stock.sellable_packs(world["pharmacy_a"].pk).filter(identifier=boxes[0]).exists()
        assert element_string(boxes[0]).startswith("]d201")


def test_unreadable_codes_record_nothing(world):
    with clock.frozen(NOON):
        before = EPCISEvent.objects.count()
        error = refusal(
            lambda: actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [world["late"][0], "hello"])
        )
        assert error.code == "unreadable_codes" and "hello" in error.message
        assert EPCISEvent.objects.count() == before
        assert refusal(lambda: actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [" "])).code == (
            "nothing_scanned"
        )


def test_a_code_nobody_commissioned_is_recorded_and_alerted_but_is_not_stock(world):
    with clock.frozen(NOON):
        forged = box_urn(world["amlodipine"], "FAKE-0001")
        result = actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [forged])
        assert [p.identifier for p in result.not_genuine] == [forged] and not result.in_stock
        assert Alert.objects.filter(kind=AlertKind.UNKNOWN_CODE, identifier=forged).exists()
        assert not stock.sellable_packs(world["pharmacy_a"].pk).filter(identifier=forged).exists()


def test_expired_and_recalled_boxes_are_on_the_shelf_but_not_for_sale(world):
    with clock.frozen(NOON):
        (old,) = manufacture(world["amlodipine"], 1, batch="OLD", expiry="2026-10-31")
        trace_helpers.ship([old], time=SHIPPED)
        result = actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [old])
        assert [p.identifier for p in result.not_stock] == [old]
        recalls.recall_batch(trace_helpers.regulator(), world["amlodipine"].gtin, "EARLY", "杂质超标")
        unsellable = {p.identifier for p in stock.unsellable_packs(world["pharmacy_a"].pk)}
        assert unsellable == {old, *world["early"]}
        assert stock.available(world["pharmacy_a"].pk, world["amlodipine"].pk) == 4
        # An expiry date is the last day of use: sellable on that day, not the day after.
        (today,) = manufacture(world["amlodipine"], 1, batch="TODAY", expiry=NOON.date().isoformat())
        trace_helpers.ship([today], time=SHIPPED)
        actions.receive_stock(world["staff_a"], world["pharmacy_a"].pk, [today])
        assert stock.sellable_counts(world["pharmacy_a"].pk, NOON)[world["amlodipine"].pk] == 5
        tomorrow = NOON + dt.timedelta(days=1)
        assert stock.sellable_counts(world["pharmacy_a"].pk, tomorrow)[world["amlodipine"].pk] == 4


def test_otc_offers_list_what_is_available_in_three_queries_however_many_products(world):
    pharmacy = world["pharmacy_a"].pk

    def offers() -> tuple[list[tuple[str, int]], int]:
        with CaptureQueriesContext(connection) as queries:
            listed = stock.otc_offers(pharmacy)
        # the same figure, product by product, as the per-product reading
        assert all(left == stock.available(pharmacy, offer.drug_pack_id) for offer, left in listed)
        return [(offer.drug_pack.drug.code, left) for offer, left in listed], len(queries)

    with clock.frozen(NOON):
        one, queries_for_one = offers()
        # amlodipine and simvastatin are on sale too, but need a prescription
        assert one == [("t-loratadine-10", 3)]
        cetirizine = Drug.objects.get(code="t-loratadine-10")
        cetirizine.pk, cetirizine.code, cetirizine.generic_name_en = None, "t-cetirizine-10", "cetirizine tablets"
        cetirizine.save()
        pack = drug_pack(cetirizine, "20004", "8999104")
        sold_out = drug_pack(cetirizine, "20005", "8999105", pack_size=12)
        for product in (pack, sold_out):
            actions.set_price(world["staff_a"], pharmacy, product.pk, "9.90")
        boxes = manufacture(pack, 2, batch="CET1", expiry="2028-03-31")
        trace_helpers.ship(boxes, time=SHIPPED)
        actions.receive_stock(world["staff_a"], pharmacy, boxes)

        three, queries_for_three = offers()

    # a product on sale with no box left is not offered
    assert three == [("t-cetirizine-10", 2), ("t-loratadine-10", 3)]
    assert queries_for_three == queries_for_one == 3


def test_who_may_receive_stock(world):
    with clock.frozen(NOON):
        (box,) = manufacture(world["amlodipine"], 1, batch="X", expiry="2029-01-31")
        a = world["pharmacy_a"].pk
        assert refusal(lambda: actions.receive_stock(world["courier_a"], a, [box])).code == "not_pharmacy_staff"
        assert refusal(lambda: actions.receive_stock(world["staff_b"], a, [box])).code == "not_pharmacy_staff"
        assert refusal(lambda: actions.receive_stock(world["patient_user"], a, [box])).code == "not_pharmacy_staff"
        assert refusal(lambda: actions.receive_stock(world["staff_a"], world["station"].pk, [box])).code == (
            "pharmacy_not_found"
        )
        world["pharmacist_a"].is_mfa_verified = False
        assert refusal(lambda: actions.receive_stock(world["pharmacist_a"], a, [box])).code == "mfa_required"
        world["pharmacist_a"].is_mfa_verified = True
        assert actions.receive_stock(world["pharmacist_a"], a, [box]).in_stock
        assert AuditEntry.objects.filter(action="pharmacy.stock.receive", actor_id=world["pharmacist_a"].pk).exists()


def test_prices_are_set_by_the_pharmacy_only(world):
    with clock.frozen(NOON):
        offer = actions.set_price(world["pharmacist_a"], world["pharmacy_a"].pk, world["otc"].pk, "9.90")
        assert str(offer.price) == "9.90"
        zero = refusal(lambda: actions.set_price(world["staff_a"], world["pharmacy_a"].pk, world["otc"].pk, "0"))
        assert zero.code == "price_invalid"
        assert refusal(
            lambda: actions.set_price(world["courier_a"], world["pharmacy_a"].pk, world["otc"].pk, "5")
        ).code == ("not_pharmacy_staff")
