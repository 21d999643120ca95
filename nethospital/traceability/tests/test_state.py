"""Pack state derived from EPCIS events: commissioning to delivery, aggregation resolved, unknown
codes, erroneous events, places."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from nethospital.core import clock
from nethospital.traceability import state
from nethospital.traceability.choices import AlertKind, EventType, PackStatus, Severity
from nethospital.traceability.models import Alert, Location, Pack
from nethospital.traceability.tests.trace_helpers import (  # noqa: F401 - fixtures
    FACTORY,
    T0,
    WAREHOUSE,
    capture,
    china,
    commission,
    dispense,
    drug_pack_fixture,
    event,
    gtin_of,
    pack_into,
    pack_of,
    pharmacy_a_fixture,
    pharmacy_b_fixture,
    product,
    receive,
    recipients_fixture,
    scan,
    sgtin,
    ship,
    sscc,
    unpack,
)

H = dt.timedelta(hours=1)


def test_commissioning_takes_batch_and_expiry_from_ilmd(drug_pack):
    box = sgtin(serial="A1")
    commission([box], batch="LOT-7", expiry="2027-05-31")
    pack = pack_of(box)
    assert pack.status == PackStatus.COMMISSIONED
    assert pack.gtin == gtin_of("10001") == drug_pack.gtin
    assert pack.serial == "A1"
    assert pack.product_code == drug_pack.gtin
    assert pack.drug_pack_id == drug_pack.pk
    assert (pack.batch, pack.expiry) == ("LOT-7", dt.date(2027, 5, 31))
    assert pack.commissioned_at == T0
    assert pack.location == FACTORY
    assert not Alert.objects.exists()


def test_bare_cbv_words_and_urns_are_accepted(drug_pack):
    box, other = sgtin(), sgtin()
    capture(event(action="ADD", biz_step="commissioning", disposition="active", epcs=[box], bare=True))
    capture(
        event(
            action="ADD",
            biz_step="urn:epcglobal:cbv:bizstep:commissioning",
            disposition="urn:epcglobal:cbv:disp:active",
            epcs=[other],
        )
    )
    assert pack_of(box).status == PackStatus.COMMISSIONED
    assert pack_of(other).status == PackStatus.COMMISSIONED
    assert state.cbv_word("https://ref.gs1.org/cbv/BizStep-receiving") == "receiving"
    assert state.cbv_word("https://example.org/steps/x") == "https://example.org/steps/x"


def test_batch_from_the_lgtin_when_there_is_no_ilmd(drug_pack):
    box = sgtin()
    capture(
        event(
            action="ADD",
            biz_step="commissioning",
            epcs=[box],
            quantities=["urn:epc:class:lgtin:0999990.010001.LOT-Q"],
        )
    )
    assert pack_of(box).batch == "LOT-Q"


def test_china_code_maps_to_the_catalogue_by_its_prefix(drug_pack):
    code = china("8999001")
    commission([code], batch="B20")
    pack = pack_of(code)
    assert pack.china_code == code.rsplit(":", 1)[1]
    assert pack.product_code == "8999001"
    assert pack.drug_pack_id == drug_pack.pk
    assert pack.gtin == drug_pack.gtin  # recalls by GTIN reach China-coded boxes too


def test_whole_way_from_factory_to_the_door(drug_pack, pharmacy_a):
    boxes = [sgtin() for _ in range(3)]
    case, pallet = sscc(), sscc()
    commission(boxes, time=T0)
    pack_into(case, boxes, time=T0 + H)
    pack_into(pallet, [case], time=T0 + 2 * H)
    assert pack_of(boxes[0]).status == PackStatus.PACKED
    assert pack_of(boxes[0]).parent.identifier == case
    assert pack_of(case).is_container and pack_of(case).commissioned_at == T0 + H
    assert pack_of(case).parent.identifier == pallet

    ship([pallet], time=T0 + 3 * H)
    assert {pack_of(b).status for b in boxes} == {PackStatus.SHIPPED}

    received = receive([pallet], pharmacy_a, time=T0 + 30 * H)
    for identifier in [*boxes, case, pallet]:
        pack = pack_of(identifier)
        assert pack.status == PackStatus.RECEIVED
        assert pack.owner_id == pharmacy_a.pk
        assert pack.received_at == T0 + 30 * H
        assert pack.last_event_id == received.pk

    dispense([boxes[0]], pharmacy_a, time=T0 + 40 * H)
    pack = pack_of(boxes[0])
    assert (pack.status, pack.dispensed_count, pack.dispensed_at) == (PackStatus.DISPENSED, 1, T0 + 40 * H)
    assert pack_of(boxes[1]).status == PackStatus.RECEIVED

    scan(state.COURIER_HANDOVER, [boxes[0]], time=T0 + 41 * H)
    assert pack_of(boxes[0]).status == PackStatus.WITH_COURIER
    scan(state.DELIVERY, [boxes[0]], time=T0 + 43 * H)
    pack = pack_of(boxes[0])
    assert (pack.status, pack.dispensed_count, pack.owner_id) == (PackStatus.DELIVERED, 1, pharmacy_a.pk)
    assert not Alert.objects.exists()


def test_shipping_after_dispensing_is_the_courier_hand_over(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    dispense([box], pharmacy_a, time=T0 + 2 * H)
    ship([box], time=T0 + 3 * H)
    assert pack_of(box).status == PackStatus.WITH_COURIER


def test_unpacking_frees_the_children(drug_pack, pharmacy_a):
    kept, freed = sgtin(), sgtin()
    case = sscc()
    commission([kept, freed])
    pack_into(case, [kept, freed], time=T0 + H)
    unpack(case, [freed], time=T0 + 2 * H)
    assert pack_of(freed).parent is None
    assert pack_of(freed).status == PackStatus.COMMISSIONED
    assert pack_of(kept).parent.identifier == case

    receive([case], pharmacy_a, time=T0 + 30 * H)
    assert pack_of(kept).status == PackStatus.RECEIVED
    assert pack_of(freed).status == PackStatus.COMMISSIONED  # no longer in the case
    assert pack_of(freed).owner is None


def test_unpacking_without_children_frees_them_all(drug_pack):
    boxes = [sgtin(), sgtin()]
    case = sscc()
    commission(boxes)
    pack_into(case, boxes, time=T0 + H)
    unpack(case, time=T0 + 2 * H)
    assert [pack_of(b).parent for b in boxes] == [None, None]


def test_packing_and_receiving_in_one_capture(drug_pack, pharmacy_a):
    """The batch engine resolves aggregation made earlier in the same document."""
    boxes = [sgtin(), sgtin()]
    case = sscc()
    commission(boxes)
    rows = [
        event(
            event_type=EventType.AGGREGATION,
            action="ADD",
            biz_step="packing",
            time=T0 + H,
            parent=case,
            children=boxes,
        ),
        event(biz_step="shipping", disposition="in_transit", time=T0 + 2 * H, epcs=[case]),
        event(
            biz_step="receiving",
            disposition="sellable_accessible",
            location=state.location_uri_for(pharmacy_a),
            time=T0 + 20 * H,
            epcs=[case],
        ),
    ]
    capture(*rows)
    assert {pack_of(b).status for b in boxes} == {PackStatus.RECEIVED}
    assert {pack_of(b).owner_id for b in boxes} == {pharmacy_a.pk}
    assert pack_of(boxes[0]).parent.identifier == case


def test_child_in_two_parents_stays_with_the_first(drug_pack):
    box = sgtin()
    first, second = sscc(), sscc()
    commission([box])
    pack_into(first, [box], time=T0 + H)
    clash = pack_into(second, [box], time=T0 + 2 * H, location=WAREHOUSE)
    assert pack_of(box).parent.identifier == first
    alert = Alert.objects.get(kind=AlertKind.TWO_PARENTS)
    assert alert.identifier == box
    assert alert.severity == Severity.WARNING
    assert alert.event_id == clash.pk
    assert alert.evidence["firstParent"] == first
    assert alert.evidence["secondParent"] == second
    assert alert.evidence["kept"] == first
    assert alert.evidence["events"][0]["eventID"] == clash.event_id
    assert alert.evidence["events"][0]["bizLocation"] == WAREHOUSE


def test_unknown_code_of_a_known_product_is_a_warning(drug_pack, pharmacy_a):
    box = sgtin()
    seen = receive([box], pharmacy_a, time=T0)
    pack = pack_of(box)
    assert pack.status == PackStatus.RECEIVED
    assert pack.commissioned_at is None
    assert pack.drug_pack_id == drug_pack.pk
    alert = Alert.objects.get(kind=AlertKind.UNKNOWN_CODE)
    assert (alert.severity, alert.identifier, alert.organization_id) == (Severity.WARNING, box, pharmacy_a.pk)
    assert alert.evidence["productKnown"] is True
    assert alert.evidence["events"][0]["eventID"] == seen.event_id
    assert alert.evidence["events"][0]["organization"] == pharmacy_a.pk


def test_unknown_code_of_an_unknown_product_is_critical(db, pharmacy_a):
    code = china("8999777")
    receive([code], pharmacy_a, time=T0)
    assert pack_of(code).status == PackStatus.RECEIVED
    alert = Alert.objects.get(kind=AlertKind.UNKNOWN_CODE)
    assert alert.severity == Severity.CRITICAL
    assert alert.evidence["productKnown"] is False
    assert alert.product_code == "8999777"


def test_children_first_seen_in_packing_are_unknown_but_the_new_case_is_not(drug_pack):
    box = sgtin()
    case = sscc()
    pack_into(case, [box], time=T0)
    assert pack_of(case).commissioned_at == T0
    assert list(Alert.objects.values_list("kind", "identifier")) == [(AlertKind.UNKNOWN_CODE, box)]


def test_an_older_event_captured_late_does_not_move_the_state_back(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + 10 * H)
    ship([box], time=T0 + 5 * H)  # happened before the receiving, captured after it
    pack = pack_of(box)
    assert pack.status == PackStatus.RECEIVED
    assert pack.last_event_time == T0 + 10 * H


def test_decommissioning_and_destroying(drug_pack):
    gone, burnt = sgtin(), sgtin()
    commission([gone, burnt])
    scan(state.DECOMMISSIONING, [gone], time=T0 + H)
    scan(state.DESTROYING, [burnt], time=T0 + H)
    assert pack_of(gone).status == PackStatus.DECOMMISSIONED
    assert pack_of(burnt).status == PackStatus.DESTROYED


def test_erroneous_events_do_not_count(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    wrong = dispense([box], pharmacy_a, time=T0 + 2 * H)
    assert pack_of(box).dispensed_count == 1
    # The capture marks the original erroneous (errorDeclaration) and hands it to apply_events.
    wrong.declared_erroneous_at = T0 + 3 * H
    wrong.declaration_reason = "https://ref.gs1.org/cbv/ER-incorrect_data"
    wrong.save()
    capture(wrong)
    pack = pack_of(box)
    assert (pack.status, pack.dispensed_count, pack.dispensed_at) == (PackStatus.RECEIVED, 0, None)
    assert pack.owner_id == pharmacy_a.pk
    assert pack.commissioned_at == T0
    # Later dispensing is a first dispensing, not a second one.
    dispense([box], pharmacy_a, time=T0 + 4 * H)
    assert pack_of(box).dispensed_count == 1
    assert not Alert.objects.filter(kind=AlertKind.DISPENSED_TWICE).exists()


def test_an_error_declaration_row_rebuilds_the_packs_it_names(drug_pack):
    box = sgtin()
    case = sscc()
    commission([box])
    packing = pack_into(case, [box], time=T0 + H)
    packing.declared_erroneous_at = T0 + 2 * H
    packing.save()
    declaration = event(
        event_type=EventType.AGGREGATION,
        action="ADD",
        biz_step="packing",
        time=T0 + H,
        parent=case,
        children=[box],
        extra={"errorDeclaration": {"declarationTime": (T0 + 2 * H).isoformat()}},
    )
    capture(declaration)
    pack = pack_of(box)
    assert pack.parent is None
    assert pack.status == PackStatus.COMMISSIONED


def test_places_map_to_organisations(pharmacy_a, pharmacy_b):
    state.register_location("urn:epc:id:sgln:0999990.00077.0", pharmacy_b, name_en="B store room")
    assert state.organization_for_location(state.location_uri_for(pharmacy_a)) == pharmacy_a
    assert state.organization_for_location("urn:epc:id:sgln:0999990.00077.0") == pharmacy_b
    # Another room of the same site (an SGLN extension) is the same organisation.
    assert state.organization_for_location("urn:epc:id:sgln:0999990.00077.12") == pharmacy_b
    assert state.organization_for_location("urn:epc:id:sgln:0999990.00078.0") is None
    assert state.organization_for_location("https://nethospital.example/loc/org/999999") is None
    assert state.organization_for_location("") is None
    assert Location.objects.get(sgln="urn:epc:id:sgln:0999990.00077.0").name_en == "B store room"


def test_receiving_at_an_sgln_sets_the_owner(drug_pack, pharmacy_a):
    state.register_location("urn:epc:id:sgln:0999990.00500.0", pharmacy_a)
    box = sgtin()
    commission([box])
    capture(
        event(
            biz_step="receiving",
            disposition="sellable_accessible",
            location="urn:epc:id:sgln:0999990.00500.3",
            epcs=[box],
            time=T0 + H,
        )
    )
    assert pack_of(box).owner_id == pharmacy_a.pk


def test_a_batch_of_events_costs_a_bounded_number_of_queries(drug_pack, pharmacy_a, django_assert_max_num_queries):
    boxes = [sgtin() for _ in range(200)]
    rows = [
        event(action="ADD", biz_step="commissioning", epcs=[b], time=T0, ilmd={"cbvmda:lotNumber": "L"}) for b in boxes
    ]
    rows.append(event(biz_step="receiving", location=state.location_uri_for(pharmacy_a), epcs=boxes, time=T0 + H))
    with django_assert_max_num_queries(20), transaction.atomic():
        state.apply_events(rows)
    assert Pack.objects.filter(identifier__in=boxes, status=PackStatus.RECEIVED, batch="L").count() == 200


def test_clock_frozen_does_not_matter_for_event_times(drug_pack):
    """State follows event times, not the wall clock."""
    box = sgtin()
    with clock.frozen(T0 + 1000 * H):
        commission([box], time=T0)
    assert pack_of(box).commissioned_at == T0


@pytest.mark.parametrize(
    ("biz_step", "disposition", "action", "expected"),
    [
        ("commissioning", "active", "ADD", state.Transition.COMMISSION),
        ("shipping", "in_transit", "OBSERVE", state.Transition.SHIP),
        ("receiving", "sellable_accessible", "OBSERVE", state.Transition.RECEIVE),
        ("dispensing", "dispensed", "OBSERVE", state.Transition.DISPENSE),
        ("dispensing", "dispensed", "DELETE", state.Transition.DISPENSE),
        ("retail_selling", "retail_sold", "OBSERVE", state.Transition.DISPENSE),
        ("decommissioning", "inactive", "DELETE", state.Transition.DECOMMISSION),
        ("destroying", "destroyed", "OBSERVE", state.Transition.DESTROY),
        ("storing", "sellable_accessible", "OBSERVE", state.Transition.OBSERVE),
    ],
)
def test_transition_table(db, biz_step, disposition, action, expected):
    row = event(action=action, biz_step=biz_step, disposition=disposition)
    assert state.transition_of(row) == expected


def test_transitions_after_dispensing(db):
    departing = event(biz_step="departing", disposition="in_transit")
    arriving = event(biz_step="arriving", disposition="dispensed")
    assert state.transition_of(departing, PackStatus.DISPENSED) == state.Transition.HAND_TO_COURIER
    assert state.transition_of(arriving, PackStatus.WITH_COURIER) == state.Transition.DELIVER
    assert state.transition_of(departing, PackStatus.RECEIVED) == state.Transition.SHIP
    assert state.transition_of(arriving, PackStatus.SHIPPED) == state.Transition.RECEIVE


def test_identifiers_that_name_no_pack_are_ignored(db):
    capture(event(action="ADD", biz_step="commissioning", epcs=["urn:epc:id:grai:0999990.00001.1"]))
    assert not Pack.objects.exists()
    assert not Alert.objects.exists()


def test_product_helper_makes_distinct_products(db):
    first, second = product("10001", "8999001"), product("10002", "8999002")
    assert first.gtin != second.gtin


# --- Through the EPCIS capture ----------------------------------------------------------------------

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"cbvmda": "urn:epcglobal:cbv:mda:"}]


def epcis_event(**fields):
    event = {
        "@context": CONTEXT,
        "type": "ObjectEvent",
        "eventTime": T0.isoformat(),
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
    }
    event.update(fields)
    return event


def test_the_capture_keeps_packs_up_to_date(drug_pack, pharmacy_a):
    from nethospital.accounts.choices import Role
    from nethospital.traceability import capture
    from nethospital.traceability.tests.trace_helpers import staff

    user = staff(Role.PHARMACY_STAFF, pharmacy_a, mfa=False)
    box = sgtin(serial="CAP1")
    here = {"id": state.location_uri_for(pharmacy_a)}
    capture.capture_single_event(
        user,
        epcis_event(
            action="ADD",
            epcList=[box],
            bizStep="commissioning",
            disposition="active",
            ilmd={"cbvmda:lotNumber": "LOT-C", "cbvmda:itemExpirationDate": "2028-01-31"},
        ),
    )
    capture.capture_single_event(
        user,
        epcis_event(
            eventTime=(T0 + H).isoformat(),
            epcList=[box],
            bizStep="receiving",
            disposition="sellable_accessible",
            bizLocation=here,
        ),
    )
    dispensing = epcis_event(
        eventTime=(T0 + 2 * H).isoformat(),
        epcList=[box],
        bizStep="dispensing",
        disposition="dispensed",
        bizLocation=here,
    )
    capture.capture_single_event(user, dispensing)
    pack = pack_of(box)
    assert (pack.status, pack.batch, pack.expiry, pack.owner_id, pack.dispensed_count) == (
        PackStatus.DISPENSED,
        "LOT-C",
        dt.date(2028, 1, 31),
        pharmacy_a.pk,
        1,
    )
    # The pharmacy declares the dispensing wrong: the box is back in stock.
    captured = capture.capture_single_event(
        user,
        {
            **dispensing,
            "errorDeclaration": {"declarationTime": (T0 + 3 * H).isoformat(), "reason": "incorrect_data"},
        },
    )
    assert captured.event.declared_erroneous_at is not None
    pack = pack_of(box)
    assert (pack.status, pack.dispensed_count) == (PackStatus.RECEIVED, 0)
    assert not Alert.objects.exists()
