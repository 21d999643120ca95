"""R20 anomalies with their evidence, the dispensing gate, and who sees and acknowledges alerts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from nethospital.accounts.choices import Role
from nethospital.core import clock
from nethospital.core.models import AuditEntry
from nethospital.testing import factories
from nethospital.traceability import anomalies, recalls, state
from nethospital.traceability.choices import AlertKind, Severity
from nethospital.traceability.models import Alert
from nethospital.traceability.tests.trace_helpers import (  # noqa: F401 - fixtures
    T0,
    commission,
    dispense,
    drug_pack_fixture,
    gtin_of,
    pack_into,
    pack_of,
    pharmacy,
    pharmacy_a_fixture,
    pharmacy_b_fixture,
    product,
    receive,
    recipients_fixture,
    regulator,
    scan,
    sgtin,
    ship,
    sscc,
    staff,
)

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind).order_by("pk"))


def test_dispensed_twice_is_critical_with_both_dispensings(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    first = dispense([box], pharmacy_a, time=T0 + 2 * H)
    second = dispense([box], pharmacy_a, time=T0 + 30 * H)
    [alert] = alerts(AlertKind.DISPENSED_TWICE)
    assert alert.severity == Severity.CRITICAL
    assert alert.organization_id == pharmacy_a.pk
    assert alert.event_id == second.pk
    assert [e["eventID"] for e in alert.evidence["events"]] == [first.event_id, second.event_id]
    assert dt.datetime.fromisoformat(alert.evidence["events"][0]["eventTime"]) == T0 + 2 * H
    assert alert.evidence["dispensedBefore"] == 1
    assert pack_of(box).dispensed_count == 2


def test_two_places_in_an_impossible_time(drug_pack, pharmacy_a, pharmacy_b, settings):
    settings.NETHOSPITAL_TRACE_MIN_TRAVEL_MINUTES = 10
    box = sgtin()
    commission([box])
    here = receive([box], pharmacy_a, time=T0 + H)
    there = dispense([box], pharmacy_b, time=T0 + H + 3 * M)
    [alert] = alerts(AlertKind.IMPOSSIBLE_TRAVEL)
    assert alert.severity == Severity.CRITICAL
    assert alert.organization_id == pharmacy_b.pk
    assert [e["eventID"] for e in alert.evidence["events"]] == [here.event_id, there.event_id]
    assert [e["organization"] for e in alert.evidence["events"]] == [pharmacy_a.pk, pharmacy_b.pk]
    assert alert.evidence["minutesApart"] == 3.0
    assert alert.evidence["minimumMinutes"] == 10.0


def test_two_places_far_enough_apart_in_time_are_fine(drug_pack, pharmacy_a, pharmacy_b, settings):
    settings.NETHOSPITAL_TRACE_MIN_TRAVEL_MINUTES = 10
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    receive([box], pharmacy_b, time=T0 + H + 11 * M)
    assert alerts(AlertKind.IMPOSSIBLE_TRAVEL) == []


def test_two_rooms_of_one_organisation_are_one_place(drug_pack, pharmacy_a, settings):
    settings.NETHOSPITAL_TRACE_MIN_TRAVEL_MINUTES = 10
    state.register_location("urn:epc:id:sgln:0999990.00300.1", pharmacy_a)
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    scan(state.PHARMACY_DISPENSING, [box], time=T0 + H + M, location="urn:epc:id:sgln:0999990.00300.1")
    assert alerts(AlertKind.IMPOSSIBLE_TRAVEL) == []


def test_event_after_destruction(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    destroyed = scan(state.DESTROYING, [box], time=T0 + H)
    later = receive([box], pharmacy_a, time=T0 + 5 * H)
    [alert] = alerts(AlertKind.AFTER_END_OF_LIFE)
    assert alert.severity == Severity.CRITICAL
    assert [e["eventID"] for e in alert.evidence["events"]] == [destroyed.event_id, later.event_id]
    assert alert.evidence["endOfLife"] == "destroyed"
    assert pack_of(box).status == "destroyed"  # the end of life is final


def test_event_after_decommissioning(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    scan(state.DECOMMISSIONING, [box], time=T0 + H)
    dispense([box], pharmacy_a, time=T0 + 2 * H)
    assert [a.evidence["endOfLife"] for a in alerts(AlertKind.AFTER_END_OF_LIFE)] == ["decommissioned"]


def test_dispensed_where_it_was_never_received(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    dispensing = dispense([box], pharmacy_a, time=T0 + H)
    [alert] = alerts(AlertKind.DISPENSED_BEFORE_RECEIVED)
    assert alert.severity == Severity.WARNING
    assert alert.organization_id == pharmacy_a.pk
    assert alert.evidence["events"][0]["eventID"] == dispensing.event_id
    assert alert.evidence["receivedAt"] is None


def test_dispensed_at_another_pharmacy_than_the_one_that_received_it(drug_pack, pharmacy_a, pharmacy_b):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    dispense([box], pharmacy_b, time=T0 + 20 * H)
    [alert] = alerts(AlertKind.DISPENSED_BEFORE_RECEIVED)
    assert alert.organization_id == pharmacy_b.pk
    assert alert.evidence["receivedBy"] == pharmacy_a.pk


def test_dispensed_before_the_receiving_time(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + 10 * H)
    dispense([box], pharmacy_a, time=T0 + 5 * H)
    assert len(alerts(AlertKind.DISPENSED_BEFORE_RECEIVED)) == 1


def test_received_and_dispensed_after_expiry(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box], expiry="2026-11-02")  # T0 is 2026-11-02 09:00 Shanghai
    receive([box], pharmacy_a, time=T0 + H)  # the last day of use: fine
    assert alerts(AlertKind.EXPIRED) == []
    receive([box], pharmacy_a, time=T0 + 24 * H)
    dispense([box], pharmacy_a, time=T0 + 25 * H)
    received, dispensed = alerts(AlertKind.EXPIRED)
    assert (received.severity, dispensed.severity) == (Severity.WARNING, Severity.CRITICAL)
    assert dispensed.evidence["expiry"] == "2026-11-02"
    assert dispensed.evidence["batch"] == "LOT1"


def test_events_for_a_recalled_batch_after_the_recall(drug_pack, pharmacy_a):
    before, after = sgtin(), sgtin()
    commission([before, after], batch="BAD1")
    receive([before], pharmacy_a, time=T0 + H)
    with clock.frozen(T0 + 2 * H):
        recall = recalls.recall_batch(regulator(), drug_pack.gtin, "BAD1", "contamination")
    receive([after], pharmacy_a, time=T0 + 3 * H)
    dispense([before], pharmacy_a, time=T0 + 4 * H)
    received, dispensed = alerts(AlertKind.RECALLED)
    assert (received.identifier, received.severity) == (after, Severity.WARNING)
    assert (dispensed.identifier, dispensed.severity) == (before, Severity.CRITICAL)
    assert dispensed.evidence["recall"] == recall.pk
    assert dt.datetime.fromisoformat(dispensed.evidence["recalledAt"]) == T0 + 2 * H


def test_receiving_a_pallet_of_a_recalled_batch_is_one_alert_listing_the_boxes(drug_pack, pharmacy_a):
    boxes = [sgtin() for _ in range(3)]
    good = product("10002", "8999002")
    other = sgtin("10002")
    case, pallet = sscc(), sscc()
    commission(boxes, batch="BAD2")
    commission([other], batch="BAD2")
    pack_into(case, [*boxes, other], time=T0 + H)
    pack_into(pallet, [case], time=T0 + H)
    with clock.frozen(T0 + 2 * H):
        recalls.recall_batch(regulator(), gtin_of("10001"), "BAD2", "label error")
    ship([pallet], time=T0 + 3 * H)
    received = receive([pallet], pharmacy_a, time=T0 + 20 * H)
    shipped_alert, received_alert = alerts(AlertKind.RECALLED)
    assert received_alert.identifier == pallet
    assert received_alert.event_id == received.pk
    assert received_alert.organization_id == pharmacy_a.pk
    assert received_alert.evidence["count"] == 3
    assert sorted(received_alert.evidence["packs"]) == sorted(boxes)
    assert received_alert.evidence["gtin"] == gtin_of("10001") != good.gtin
    assert shipped_alert.evidence["count"] == 3


def test_check_dispensable_accepts_a_box_in_stock(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    assert anomalies.check_dispensable(box, pharmacy_a, [drug_pack.gtin], T0 + 2 * H) is None


@pytest.mark.parametrize(
    "case", ["not_found", "unknown_product", "other_pharmacy", "wrong_product", "expired", "destroyed"]
)
def test_check_dispensable_refusals(case, drug_pack, pharmacy_a, pharmacy_b):
    other_product = product("10009", "8999009")
    box = sgtin()
    expected = {
        "not_found": "pack_not_found",
        "unknown_product": "pack_not_found",
        "other_pharmacy": "pack_not_in_stock",
        "wrong_product": "pack_wrong_product",
        "expired": "pack_expired",
        "destroyed": "pack_end_of_life",
    }[case]
    if case == "unknown_product":
        box = "urn:nethospital:cn-drug-code:89997770000000000001"
        receive([box], pharmacy_a, time=T0)
    elif case != "not_found":
        commission([box], expiry="2026-11-03")
        receive([box], pharmacy_a if case != "other_pharmacy" else pharmacy_b, time=T0 + H)
    if case == "destroyed":
        scan(state.DESTROYING, [box], time=T0 + 2 * H)
    prescribed = [other_product.gtin] if case == "wrong_product" else [drug_pack.gtin]
    at = T0 + (48 * H if case == "expired" else 3 * H)
    refusal = anomalies.check_dispensable(box, pharmacy_a, prescribed, at)
    assert refusal is not None
    assert refusal.code == expected
    assert refusal.message
    if case == "wrong_product":
        assert "amlodipine" in refusal.message
    if case == "expired":
        assert "2026-11-03" in refusal.message


def test_check_dispensable_refuses_a_recalled_batch_at_once(drug_pack, pharmacy_a):
    box = sgtin()
    commission([box], batch="R1")
    receive([box], pharmacy_a, time=T0 + H)
    recalls.recall_batch(regulator(), drug_pack.gtin, "R1", "sterility")
    refusal = anomalies.check_dispensable(box, pharmacy_a, [drug_pack.gtin], T0 + 2 * H)
    assert refusal is not None and refusal.code == "pack_recalled"
    assert "R1" in refusal.message


def test_check_dispensable_of_a_dispensed_box_records_the_attempt(drug_pack, pharmacy_a, pharmacy_b):
    box = sgtin()
    commission([box])
    receive([box], pharmacy_a, time=T0 + H)
    first = dispense([box], pharmacy_a, time=T0 + 2 * H)
    refusal = anomalies.check_dispensable(box, pharmacy_b, [drug_pack.gtin], T0 + 5 * H)
    assert refusal is not None and refusal.code == "pack_already_dispensed"
    [alert] = alerts(AlertKind.DISPENSED_TWICE)
    assert alert.severity == Severity.CRITICAL
    assert alert.organization_id == pharmacy_b.pk
    assert alert.event_id is None
    assert alert.evidence["attempt"] == {
        "at": (T0 + 5 * H).isoformat(),
        "organization": pharmacy_b.pk,
        "scan": "dispensing",
    }
    assert [e["eventID"] for e in alert.evidence["events"]] == [first.event_id]


def test_check_dispensable_reads_scanner_text(drug_pack, pharmacy_a):
    code = "urn:nethospital:cn-drug-code:89990010000000012345"
    commission([code])
    receive([code], pharmacy_a, time=T0 + H)
    assert anomalies.check_dispensable("89990010000000012345", pharmacy_a, [drug_pack.gtin], T0 + 2 * H) is None


# --- Who sees alerts ------------------------------------------------------------------------------


@pytest.fixture
def two_alerts(drug_pack, pharmacy_a, pharmacy_b):
    receive([sgtin()], pharmacy_a, time=T0)
    receive([sgtin()], pharmacy_b, time=T0)
    a, b = Alert.objects.order_by("pk")
    assert (a.organization_id, b.organization_id) == (pharmacy_a.pk, pharmacy_b.pk)
    return a, b


def test_regulator_sees_every_alert(two_alerts, login_as):
    response = login_as(regulator(), mfa=True).get(reverse("traceability:alerts"))
    assert response.status_code == 200
    assert [r["alert"].pk for r in response.context["rows"]] == [two_alerts[1].pk, two_alerts[0].pk]


def test_pharmacy_sees_its_own_alerts_only(two_alerts, pharmacy_a, login_as):
    for role, mfa in ((Role.PHARMACIST, True), (Role.PHARMACY_STAFF, False)):
        client = login_as(staff(role, pharmacy_a, mfa=mfa), mfa=mfa)
        response = client.get(reverse("traceability:alerts"))
        assert response.status_code == 200
        assert [r["alert"].pk for r in response.context["rows"]] == [two_alerts[0].pk]
        assert f'id="alert-{two_alerts[1].pk}"' not in response.content.decode()


@pytest.mark.parametrize("who", ["patient", "doctor", "pharmacist_without_mfa", "regulator_without_mfa"])
def test_others_may_not_see_alerts(who, two_alerts, pharmacy_a, city_hospital, login_as):
    if who == "patient":
        client = login_as(factories.patient_user())
    elif who == "doctor":
        client = login_as(factories.doctor(city_hospital).user, mfa=True)
    elif who == "pharmacist_without_mfa":
        client = login_as(staff(Role.PHARMACIST, pharmacy_a, mfa=False))
    else:
        client = login_as(regulator(mfa=False))
    response = client.get(reverse("traceability:alerts"))
    assert response.status_code == 403
    assert "alert-" not in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(two_alerts, client):
    response = client.get(reverse("traceability:alerts"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_alert_filters(two_alerts, pharmacy_a, login_as):
    client = login_as(regulator(), mfa=True)
    response = client.get(reverse("traceability:alerts"), {"organization": pharmacy_a.pk, "state": "open"})
    assert [r["alert"].pk for r in response.context["rows"]] == [two_alerts[0].pk]
    response = client.get(reverse("traceability:alerts"), {"kind": AlertKind.DISPENSED_TWICE, "state": "all"})
    assert response.context["rows"] == []
    response = client.get(reverse("traceability:alerts"), {"severity": Severity.WARNING, "state": "all"})
    assert len(response.context["rows"]) == 2


def test_pharmacy_acknowledges_its_alert_audited(two_alerts, pharmacy_a, login_as):
    pharmacist = staff(Role.PHARMACIST, pharmacy_a)
    client = login_as(pharmacist, mfa=True)
    with clock.frozen(T0 + H):
        response = client.post(reverse("traceability:acknowledge", args=[two_alerts[0].pk]))
    assert response.status_code == 302
    alert = Alert.objects.get(pk=two_alerts[0].pk)
    assert (alert.acknowledged_by_id, alert.acknowledged_at) == (pharmacist.pk, T0 + H)
    entry = AuditEntry.objects.get(action="traceability.alert.acknowledge")
    assert (entry.actor_id, entry.object_id) == (pharmacist.pk, str(alert.pk))
    # Acknowledged alerts leave the default (open) list.
    response = client.get(reverse("traceability:alerts"))
    assert response.context["rows"] == []


def test_pharmacy_may_not_acknowledge_another_pharmacys_alert(two_alerts, pharmacy_a, login_as):
    client = login_as(staff(Role.PHARMACY_STAFF, pharmacy_a, mfa=False))
    response = client.post(reverse("traceability:acknowledge", args=[two_alerts[1].pk]))
    assert response.status_code == 404
    assert Alert.objects.get(pk=two_alerts[1].pk).acknowledged_at is None
    assert not AuditEntry.objects.filter(action="traceability.alert.acknowledge").exists()


def test_regulator_acknowledges_any_alert(two_alerts, login_as):
    client = login_as(regulator(), mfa=True)
    response = client.post(
        reverse("traceability:acknowledge", args=[two_alerts[1].pk]), {"next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("traceability:alerts")
    assert Alert.objects.get(pk=two_alerts[1].pk).acknowledged_at is not None


def test_alert_page_in_chinese(two_alerts, login_as):
    client = login_as(regulator(), mfa=True)
    response = client.get(reverse("traceability:alerts"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    body = response.content.decode()
    assert "溯源预警" in body
    assert "未知追溯码" in body  # the kind of both alerts
