"""Recalls: dispensing refused at once, the pharmacies holding the batch and the patients who received
it are told, audited; the recall page; the journey page of a received box."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import translation

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Role, Sex
from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry, Notification
from nethospital.testing import factories
from nethospital.traceability import anomalies, recalls, state
from nethospital.traceability.journey import journey_for
from nethospital.traceability.models import Recall
from nethospital.traceability.tests.trace_helpers import (  # noqa: F401 - fixtures
    FACTORY,
    RECIPIENTS,
    T0,
    commission,
    dispense,
    drug_pack_fixture,
    pack_into,
    pharmacy_a_fixture,
    pharmacy_b_fixture,
    receive,
    recipients_fixture,
    regulator,
    scan,
    sgtin,
    ship,
    sscc,
    staff,
    unpack,
)

H = dt.timedelta(hours=1)


@pytest.fixture
def world(drug_pack, pharmacy_a, pharmacy_b):
    """Batch BAD: two boxes in stock at pharmacy A, one dispensed there to a patient; pharmacy B holds
    only another batch."""
    in_stock, dispensed, other_batch = sgtin(), sgtin(), sgtin()
    commission([in_stock, dispensed], batch="BAD")
    commission([other_batch], batch="GOOD")
    receive([in_stock, dispensed], pharmacy_a, time=T0 + H)
    receive([other_batch], pharmacy_b, time=T0 + H)
    dispense([dispensed], pharmacy_a, time=T0 + 2 * H)
    patient_user = factories.patient_user()
    RECIPIENTS[dispensed] = factories.patient_of(patient_user)
    return {
        "in_stock": in_stock,
        "dispensed": dispensed,
        "other_batch": other_batch,
        "patient_user": patient_user,
        "pharmacist_a": staff(Role.PHARMACIST, pharmacy_a),
        "staff_a": staff(Role.PHARMACY_STAFF, pharmacy_a, mfa=False),
        "pharmacist_b": staff(Role.PHARMACIST, pharmacy_b),
        "drug_pack": drug_pack,
        "pharmacy_a": pharmacy_a,
    }


def test_recall_blocks_dispensing_at_once_and_tells_pharmacy_and_patient(world, django_capture_on_commit_callbacks):
    boss = regulator()
    assert anomalies.check_dispensable(world["in_stock"], world["pharmacy_a"], [world["drug_pack"].gtin]) is None
    with clock.frozen(T0 + 5 * H), django_capture_on_commit_callbacks(execute=True):
        recall = recalls.recall_batch(boss, world["drug_pack"].gtin, " BAD ", "contamination found")
    assert (recall.gtin, recall.batch, recall.recalled_by_id, recall.recalled_at) == (
        world["drug_pack"].gtin,
        "BAD",
        boss.pk,
        T0 + 5 * H,
    )
    refusal = anomalies.check_dispensable(world["in_stock"], world["pharmacy_a"], [world["drug_pack"].gtin])
    assert refusal is not None and refusal.code == "pack_recalled"

    told = Notification.objects.filter(kind="traceability.recall.pharmacy")
    assert sorted(n.user_id for n in told) == sorted([world["pharmacist_a"].pk, world["staff_a"].pk])
    assert "BAD" in told[0].title
    [to_patient] = Notification.objects.filter(kind="traceability.recall.patient")
    assert to_patient.user_id == world["patient_user"].pk
    assert "BAD" in to_patient.body
    assert to_patient.link == reverse("traceability:journey", kwargs={"identifier": world["dispensed"]})
    assert not Notification.objects.filter(user=world["pharmacist_b"]).exists()

    entry = AuditEntry.objects.get(action="traceability.recall")
    assert (entry.actor_id, entry.object_id) == (boss.pk, str(recall.pk))
    assert entry.detail == {"gtin": recall.gtin, "batch": "BAD", "pharmacies": 1, "patients": 1}
    patient_entry = AuditEntry.objects.get(action="traceability.recall.notify_patient")
    assert patient_entry.patient_id == factories.patient_of(world["patient_user"]).pk


def test_family_members_acting_for_the_patient_are_told(world, django_capture_on_commit_callbacks):
    parent = factories.patient_user(email="parent@example.org")
    link = account_actions.add_family_member(
        parent,
        legal_name="张小宝",
        id_number=factories.identity_number(dt.date(2022, 3, 1), Sex.FEMALE),
        birth_date=dt.date(2022, 3, 1),
        sex=Sex.FEMALE,
        relationship=Relationship.CHILD,
    )
    box = sgtin()
    commission([box], batch="BAD")
    receive([box], world["pharmacy_a"], time=T0 + H)
    dispense([box], world["pharmacy_a"], time=T0 + 3 * H)
    RECIPIENTS[box] = link.patient
    with django_capture_on_commit_callbacks(execute=True):
        recalls.recall_batch(regulator(), world["drug_pack"].gtin, "BAD", "contamination")
    assert sorted(
        Notification.objects.filter(kind="traceability.recall.patient").values_list("user_id", flat=True)
    ) == sorted([world["patient_user"].pk, parent.pk])


def test_patients_who_received_reads_the_pharmacy_record(world):
    assert recalls.patients_who_received(world["drug_pack"].gtin, "BAD") == [RECIPIENTS[world["dispensed"]]]
    assert recalls.patients_who_received(world["drug_pack"].gtin, "GOOD") == []


def test_without_the_pharmacy_hook_nobody_is_found(world, settings):
    settings.NETHOSPITAL_TRACE_RECIPIENTS = "nethospital.no_such_module.patients_for_packs"
    assert recalls.patients_who_received(world["drug_pack"].gtin, "BAD") == []


@pytest.mark.parametrize(
    ("gtin", "batch", "reason", "code"),
    [
        ("12345", "BAD", "x", "recall_gtin_invalid"),
        ("00999990100016", "BAD", "x", "recall_gtin_invalid"),  # wrong check digit
        ("00999990100015", "", "x", "recall_batch_required"),
        ("00999990100015", "B" * 21, "x", "recall_batch_required"),
        ("00999990100015", "BAD", "  ", "recall_reason_required"),
    ],
)
def test_recall_input_is_checked(world, gtin, batch, reason, code):
    with pytest.raises(DomainError) as refused:
        recalls.recall_batch(regulator(), gtin, batch, reason)
    assert refused.value.code == code
    assert not Recall.objects.exists()


def test_a_batch_is_recalled_once(world):
    recalls.recall_batch(regulator(), world["drug_pack"].gtin, "BAD", "first")
    with pytest.raises(DomainError) as refused:
        recalls.recall_batch(regulator(), world["drug_pack"].gtin, "BAD", "again")
    assert (refused.value.code, refused.value.status) == ("already_recalled", 409)
    assert Recall.objects.count() == 1


def test_short_gtins_are_normalised(world):
    assert recalls.normalize_gtin("9506000134352") == "09506000134352"
    assert recalls.normalize_gtin("9506000134353") is None


@pytest.mark.parametrize("who", ["pharmacist", "regulator_without_mfa", "patient"])
def test_only_a_regulator_with_mfa_recalls(world, who):
    user = {
        "pharmacist": lambda: world["pharmacist_a"],
        "regulator_without_mfa": lambda: regulator(mfa=False),
        "patient": lambda: world["patient_user"],
    }[who]()
    with pytest.raises(DomainError) as refused:
        recalls.recall_batch(user, world["drug_pack"].gtin, "BAD", "x")
    assert refused.value.status == 403
    assert not Recall.objects.exists()


# --- Recall page ----------------------------------------------------------------------------------


def test_regulator_recalls_from_the_page(world, login_as, django_capture_on_commit_callbacks):
    client = login_as(regulator(), mfa=True)
    page = client.get(reverse("traceability:recalls"))
    assert page.status_code == 200
    assert 'id="recall-form"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("traceability:recalls"), {"gtin": world["drug_pack"].gtin, "batch": "BAD", "reason": "impurity"}
        )
    assert response.status_code == 302
    recall = Recall.objects.get()
    assert recall.reason == "impurity"
    assert Notification.objects.filter(kind="traceability.recall.pharmacy").count() == 2


def test_recall_page_shows_refusals_on_the_form(world, login_as):
    client = login_as(regulator(), mfa=True)
    response = client.post(
        reverse("traceability:recalls"), {"gtin": "123", "batch": "BAD", "reason": "x"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 422
    assert "check digit" in response.content.decode()
    assert not Recall.objects.exists()


def test_pharmacy_sees_recalls_but_no_form(world, login_as):
    recalls.recall_batch(regulator(), world["drug_pack"].gtin, "BAD", "impurity")
    client = login_as(world["staff_a"])
    page = client.get(reverse("traceability:recalls"))
    assert page.status_code == 200
    assert 'id="recall-form"' not in page.content.decode()
    assert "impurity" in page.content.decode()
    response = client.post(
        reverse("traceability:recalls"), {"gtin": world["drug_pack"].gtin, "batch": "X", "reason": "y"}
    )
    assert response.status_code == 403
    assert Recall.objects.count() == 1


def test_regulator_without_mfa_gets_no_recall_form(world, login_as):
    client = login_as(regulator(mfa=False))
    page = client.get(reverse("traceability:recalls"))
    assert 'id="recall-mfa"' in page.content.decode()
    response = client.post(
        reverse("traceability:recalls"), {"gtin": world["drug_pack"].gtin, "batch": "BAD", "reason": "y"}
    )
    assert response.status_code == 403
    assert not Recall.objects.exists()


def test_patients_do_not_see_recall_page(world, login_as):
    assert login_as(world["patient_user"]).get(reverse("traceability:recalls")).status_code == 403


# --- Journey --------------------------------------------------------------------------------------


def test_the_patient_sees_the_whole_way_of_a_box_they_received(world, login_as):
    state.register_location(FACTORY, None, name_zh="测试制药厂", name_en="Test factory")
    box, case = sgtin(), sscc()
    commission([box], time=T0)
    pack_into(case, [box], time=T0 + H)
    ship([case], time=T0 + 2 * H)
    receive([case], world["pharmacy_a"], time=T0 + 20 * H)
    dispense([box], world["pharmacy_a"], time=T0 + 22 * H)
    scan(state.COURIER_HANDOVER, [box], time=T0 + 23 * H)
    scan(state.DELIVERY, [box], time=T0 + 25 * H)
    patient = factories.patient_of(world["patient_user"])
    RECIPIENTS[box] = patient

    with translation.override("en"):
        journey = journey_for(world["patient_user"], box)
    assert [(s.what, s.place) for s in journey.steps] == [
        ("Made and given its code", "Test factory"),
        ("Packed into a case or pallet", "Test factory"),
        ("Shipped", ""),
        ("Received", world["pharmacy_a"].name_en),
        ("Dispensed by the pharmacist", world["pharmacy_a"].name_en),
        ("Handed to the courier", ""),
        ("Delivered", ""),
    ]
    assert journey.steps[3].container == case  # received through its case
    entry = AuditEntry.objects.filter(action="traceability.journey.view").latest("sequence")
    assert (entry.actor_id, entry.patient_id, entry.outcome) == (world["patient_user"].pk, patient.pk, "success")

    page = login_as(world["patient_user"]).get(reverse("traceability:journey", kwargs={"identifier": box}))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Test factory" in body or "测试制药厂" in body
    assert patient.legal_name not in body


def test_events_of_the_case_after_the_box_left_it_are_not_in_the_journey(world):
    box, case = sgtin(), sscc()
    commission([box], time=T0)
    pack_into(case, [box], time=T0 + H)
    unpack(case, [box], time=T0 + 2 * H)
    ship([case], time=T0 + 3 * H)
    RECIPIENTS[box] = factories.patient_of(world["patient_user"])
    with translation.override("en"):
        whats = [s.what for s in journey_for(world["patient_user"], box).steps]
    assert whats == ["Made and given its code", "Packed into a case or pallet", "Taken out of its case"]


def test_nobody_else_sees_the_journey(world, login_as):
    RECIPIENTS[world["dispensed"]] = factories.patient_of(world["patient_user"])
    stranger = factories.patient_user()
    url = reverse("traceability:journey", kwargs={"identifier": world["dispensed"]})
    assert login_as(stranger).get(url).status_code == 404
    assert login_as(world["pharmacist_b"], mfa=True).get(url).status_code == 404
    denied = AuditEntry.objects.filter(action="traceability.journey.view", outcome="denied")
    assert denied.count() == 2
    assert login_as(regulator(), mfa=True).get(url).status_code == 200


def failing_lookup(identifiers):
    raise RuntimeError("the pharmacy database is down")


def test_a_recall_is_made_even_if_the_recipients_cannot_be_looked_up(
    world, settings, django_capture_on_commit_callbacks
):
    settings.NETHOSPITAL_TRACE_RECIPIENTS = f"{__name__}.failing_lookup"
    with django_capture_on_commit_callbacks(execute=True):
        recall = recalls.recall_batch(regulator(), world["drug_pack"].gtin, "BAD", "contamination")
    assert Recall.objects.get() == recall
    assert AuditEntry.objects.get(action="traceability.recall").detail["patientLookupFailed"] is True
    assert Notification.objects.filter(kind="traceability.recall.pharmacy").count() == 2
    assert (
        anomalies.check_dispensable(world["in_stock"], world["pharmacy_a"], [world["drug_pack"].gtin]).code
        == "pack_recalled"
    )


# --- Every traceability page, every role ----------------------------------------------------------

MATRIX_ACTORS = [
    "anonymous",
    "recipient",
    "other_patient",
    "doctor",
    "pharmacist_a",
    "pharmacist_b",
    "pharmacy_staff_a",
    "courier",
    "station_operator",
    "hospital_admin",
    "regulator_no_mfa",
    "regulator",
    "platform_admin",
]
# page → expected status per actor (anything not listed: 403); 302 after a POST means it was done.
EXPECTED = {
    "alerts": {"anonymous": 302, "pharmacist_a": 200, "pharmacist_b": 200, "pharmacy_staff_a": 200, "regulator": 200},
    "acknowledge": {
        "anonymous": 302,
        "pharmacist_a": 302,
        "pharmacist_b": 404,
        "pharmacy_staff_a": 302,
        "regulator": 302,
    },
    "recalls": {
        "anonymous": 302,
        "pharmacist_a": 200,
        "pharmacist_b": 200,
        "pharmacy_staff_a": 200,
        "regulator_no_mfa": 200,
        "regulator": 200,
    },
    "recall": {"anonymous": 302, "regulator": 302},
    "journey": {
        "anonymous": 302,
        "recipient": 200,
        "regulator": 200,
        **dict.fromkeys(
            [
                "other_patient",
                "doctor",
                "pharmacist_a",
                "pharmacist_b",
                "pharmacy_staff_a",
                "courier",
                "station_operator",
                "hospital_admin",
                "platform_admin",
            ],
            404,
        ),
    },
    "verify": dict.fromkeys(MATRIX_ACTORS, 200),
}


def _actor(name, world, city_hospital):
    """(user, passed a second factor) for each actor of the matrix."""
    if name == "anonymous":
        return None, False
    if name == "recipient":
        return world["patient_user"], False
    if name == "other_patient":
        return factories.patient_user(), False
    if name == "doctor":
        return factories.doctor(city_hospital).user, True
    if name == "pharmacist_a":
        return world["pharmacist_a"], True
    if name == "pharmacist_b":
        return world["pharmacist_b"], True
    if name == "pharmacy_staff_a":
        return world["staff_a"], False
    if name == "courier":
        return staff(Role.COURIER, world["pharmacy_a"], mfa=False), False
    if name == "station_operator":
        return staff(Role.STATION_OPERATOR, world["pharmacy_a"], mfa=False), False
    if name == "hospital_admin":
        return factories.hospital_admin(city_hospital), True
    if name == "regulator_no_mfa":
        return regulator(mfa=False), False
    if name == "regulator":
        return regulator(), True
    platform = staff(Role.PLATFORM_ADMIN)
    return platform, True


@pytest.mark.parametrize("page", list(EXPECTED))
@pytest.mark.parametrize("actor", MATRIX_ACTORS)
def test_traceability_pages_by_role(world, city_hospital, client, login_as, actor, page):
    from nethospital.traceability.models import Alert

    RECIPIENTS[world["dispensed"]] = factories.patient_of(world["patient_user"])
    receive([sgtin()], world["pharmacy_a"], time=T0)  # an unknown code: an alert for pharmacy A
    alert = Alert.objects.get(organization=world["pharmacy_a"])
    user, mfa = _actor(actor, world, city_hospital)
    browser = login_as(user, mfa=mfa) if user is not None else client
    urls = {
        "alerts": ("get", reverse("traceability:alerts"), None),
        "acknowledge": ("post", reverse("traceability:acknowledge", args=[alert.pk]), {}),
        "recalls": ("get", reverse("traceability:recalls"), None),
        "recall": (
            "post",
            reverse("traceability:recalls"),
            {"gtin": world["drug_pack"].gtin, "batch": "BAD", "reason": "matrix"},
        ),
        "journey": ("get", reverse("traceability:journey", kwargs={"identifier": world["dispensed"]}), None),
        "verify": ("get", reverse("traceability:verify_code", kwargs={"code": world["dispensed"]}), None),
    }
    method, url, data = urls[page]
    response = getattr(browser, method)(url, data or {})
    expected = EXPECTED[page].get(actor, 403)
    assert response.status_code == expected
    done = expected == 302 and actor != "anonymous"
    alert.refresh_from_db()
    assert (alert.acknowledged_at is not None) == (page == "acknowledge" and done)
    assert Recall.objects.exists() == (page == "recall" and done)


def test_the_matrix_covers_every_traceability_page():
    from nethospital.traceability import urls as traceability_urls

    covered = {"alerts", "acknowledge", "recalls", "journey", "verify", "verify_code"}
    assert {url.name for url in traceability_urls.urlpatterns} == covered
