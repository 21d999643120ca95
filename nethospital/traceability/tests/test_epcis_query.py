"""EPCIS queries: filters, paging with signed tokens and the Link header, /epcs/{epc}/events, refusals."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from conftest import login
from nethospital.accounts.choices import Role
from nethospital.testing import factories
from nethospital.traceability.tests.test_epcis_capture import GTIN_URN, document, job_of, object_event, post_capture
from nethospital.traceability.tests.trace_helpers import pharmacy, staff


def _events(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


@pytest.fixture
def stored(db: Any, django_capture_on_commit_callbacks: Any) -> Client:
    client = login(Client(), staff(Role.PHARMACY_STAFF, pharmacy()))
    events = [object_event(str(i), eventTime=f"2026-11-02T0{i}:00:00+08:00") for i in range(1, 6)]
    events.append(
        object_event(
            "3",
            action="OBSERVE",
            bizStep="shipping",
            disposition="in_transit",
            eventTime="2026-11-02T09:30:00+08:00",
            bizLocation={"id": "urn:epc:id:sgln:0614141.00002.0"},
        )
    )
    events.append(
        {
            "type": "AggregationEvent",
            "action": "ADD",
            "bizStep": "packing",
            "eventTime": "2026-11-02T09:40:00+08:00",
            "eventTimeZoneOffset": "+08:00",
            "parentID": "urn:epc:id:sscc:0614141.1234567890",
            "childEPCs": [f"{GTIN_URN}.1", f"{GTIN_URN}.2"],
        }
    )
    job = job_of(client, post_capture(client, document(*events), django_capture_on_commit_callbacks))
    assert job["capturedCount"] == 7
    return client


def test_filters(stored):
    assert len(_events(stored.get("/epcis/events?perPage=100"))) == 7
    assert len(_events(stored.get("/epcis/events?eventType=AggregationEvent"))) == 1
    assert len(_events(stored.get("/epcis/events?EQ_bizStep=shipping"))) == 1
    assert (
        len(_events(stored.get("/epcis/events?EQ_bizStep=" + quote("https://ref.gs1.org/cbv/BizStep-shipping")))) == 1
    )
    assert len(_events(stored.get("/epcis/events?EQ_disposition=active|in_transit"))) == 6
    assert len(_events(stored.get("/epcis/events?EQ_action=OBSERVE"))) == 1
    assert len(_events(stored.get("/epcis/events?EQ_bizLocation=urn:epc:id:sgln:0614141.00002.0"))) == 1
    assert len(_events(stored.get(f"/epcis/events?MATCH_epc={GTIN_URN}.1"))) == 2  # epcList and childEPCs
    assert len(_events(stored.get("/epcis/events?MATCH_parentID=urn:epc:id:sscc:0614141.1234567890"))) == 1
    assert len(_events(stored.get(f"/epcis/events?MATCH_anyEPC={GTIN_URN}.3"))) == 2
    pattern = quote("urn:epc:idpat:sgtin:0614141.107346.*")
    assert len(_events(stored.get(f"/epcis/events?perPage=100&MATCH_epc={pattern}"))) == 7
    link = quote("https://id.gs1.org/01/10614141073464/21/4", safe="")
    assert len(_events(stored.get(f"/epcis/events?MATCH_anyEPC={link}"))) == 1
    since = quote("2026-11-02T04:00:00+08:00")
    assert (
        len(
            _events(stored.get(f"/epcis/events?GE_eventTime={since}&LT_eventTime={quote('2026-11-02T09:35:00+08:00')}"))
        )
        == 3
    )
    assert len(_events(stored.get("/epcis/events?GE_recordTime=" + quote("2000-01-01T00:00:00Z")))) == 7
    assert _events(stored.get("/epcis/events?LT_recordTime=" + quote("2000-01-01T00:00:00Z"))) == []


def test_events_of_one_epc_by_urn_or_digital_link(stored):
    by_urn = _events(stored.get(f"/epcis/epcs/{quote(GTIN_URN + '.3', safe='')}/events"))
    by_link = _events(stored.get(f"/epcis/epcs/{quote('https://id.gs1.org/01/10614141073464/21/3', safe='')}/events"))

    assert [e["bizStep"] for e in by_urn] == ["commissioning", "shipping"]
    assert by_urn == by_link


def test_paging_with_next_page_token_and_link_header(stored):
    first = stored.get("/epcis/events?perPage=2&eventType=ObjectEvent")
    link = first["Link"]
    assert link.endswith('>; rel="next"')
    second = stored.get(link[1 : link.index(">")])
    third = stored.get(second["Link"][1 : second["Link"].index(">")])

    ids = [e["eventID"] for page in (first, second, third) for e in _events(page)]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert "Link" not in third


def test_a_page_token_is_tied_to_its_query_and_cannot_be_forged(stored):
    first = stored.get("/epcis/events?perPage=2")
    token = first["Link"].split("nextPageToken=")[1].split("&")[0].split(">")[0]

    other_query = stored.get(f"/epcis/events?perPage=2&EQ_action=ADD&nextPageToken={token}")
    forged = stored.get("/epcis/events?perPage=2&nextPageToken=abc")

    for response in (other_query, forged):
        assert response.status_code == 400
        assert response.json()["type"] == "epcisException:QueryParameterException"


@pytest.mark.parametrize(
    "query",
    [
        "colour=red",
        "EQ_bizStep=shiping",
        "GE_eventTime=yesterday",
        "GE_eventTime=2026-11-02T00:00:00",
        "perPage=0",
        "EQ_action=MAYBE",
    ],
)
def test_bad_parameters_are_400_in_the_exception_format(stored, query):
    response = stored.get(f"/epcis/events?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "epcisException:QueryParameterException" and body["status"] == 400


def test_per_page_is_bounded(stored):
    assert len(_events(stored.get("/epcis/events?perPage=1000000"))) == 7


def test_unknown_event_is_404(stored):
    response = stored.get("/epcis/events/" + quote("urn:uuid:00000000-0000-4000-8000-000000000000", safe=""))

    assert response.status_code == 404
    assert response.json()["type"] == "epcisException:NoSuchResourceException"


def test_a_regulator_with_a_second_factor_may_query_others_may_not(stored, db):
    regulator = staff(Role.REGULATOR)

    assert Client().get("/epcis/events").status_code == 401
    assert login(Client(), regulator).get("/epcis/events").status_code == 403  # no second factor
    assert len(_events(login(Client(), regulator, mfa=True).get("/epcis/events"))) == 7
    assert login(Client(), factories.patient_user()).get("/epcis/events").status_code == 403
