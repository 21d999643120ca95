"""Public verification: the JSON answer in the shape of GS1's verification response, the page in
both languages, no personal data, one query for a known code, a rate limit per address."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse

from nethospital.core import clock
from nethospital.testing import factories
from nethospital.traceability import recalls, state
from nethospital.traceability.tests.trace_helpers import (  # noqa: F401 - fixtures
    T0,
    china,
    commission,
    dispense,
    drug_pack_fixture,
    pharmacy_a_fixture,
    pharmacy_b_fixture,
    receive,
    recipients_fixture,
    regulator,
    scan,
    sgtin,
)
from nethospital.traceability.verify import verify_code

H = dt.timedelta(hours=1)
TODAY = dt.datetime(2026, 11, 10, 12, 0, tzinfo=T0.tzinfo)


def verify_json(client, code: str) -> dict:
    response = client.get(reverse("traceability:verify_code", kwargs={"code": code}), {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


@pytest.fixture
def genuine(drug_pack, pharmacy_a):
    box = sgtin(serial="G1")
    commission([box], batch="LOT9", expiry="2028-06-30")
    receive([box], pharmacy_a, time=T0 + H)
    return box


def test_genuine_box(genuine, drug_pack, client):
    with clock.frozen(TODAY):
        answer = verify_json(client, genuine)
    assert answer == {
        "verified": True,
        "verificationFailureReason": None,
        "verificationTimestamp": TODAY.isoformat(),
        "additionalInfo": {
            "code": genuine,
            "codeType": "sgtin",
            "genuine": True,
            "product": {
                "gtin": drug_pack.gtin,
                "chinaProductCode": "8999001",
                "name": {"zh-Hans": "苯磺酸氨氯地平片", "en": "amlodipine besylate tablets"},
                "brand": "测试牌",
                "manufacturer": "测试制药有限公司",
                "strength": "5 mg",
                "dosageForm": answer["additionalInfo"]["product"]["dosageForm"],
                "packSize": 28,
                "unit": "tablet",
            },
            "batch": "LOT9",
            "expiry": "2028-06-30",
            "dispensed": "0",
            "recalled": False,
            "expired": False,
            "status": "received",
        },
    }


def test_dispensed_once_is_still_verified(genuine, pharmacy_a, client):
    dispense([genuine], pharmacy_a, time=T0 + 2 * H)
    answer = verify_json(client, genuine)
    assert (answer["verified"], answer["additionalInfo"]["dispensed"]) == (True, "1")


def test_dispensed_twice(genuine, pharmacy_a, pharmacy_b, client):
    dispense([genuine], pharmacy_a, time=T0 + 2 * H)
    dispense([genuine], pharmacy_b, time=T0 + 30 * H)
    answer = verify_json(client, genuine)
    assert answer["verified"] is False
    assert answer["verificationFailureReason"] == "alreadyDispensed"
    assert answer["additionalInfo"]["dispensed"] == "2+"
    assert answer["additionalInfo"]["genuine"] is True


def test_unknown_serial_of_a_known_product(drug_pack, client):
    answer = verify_json(client, sgtin(serial="NEVER"))
    assert answer["verified"] is False
    assert answer["verificationFailureReason"] == "unknownCode"
    assert answer["additionalInfo"]["genuine"] is False
    assert answer["additionalInfo"]["product"]["gtin"] == drug_pack.gtin


def test_seen_but_never_commissioned_is_not_genuine(drug_pack, pharmacy_a, client):
    box = sgtin()
    receive([box], pharmacy_a, time=T0)
    answer = verify_json(client, box)
    assert (answer["verified"], answer["verificationFailureReason"]) == (False, "unknownCode")
    assert answer["additionalInfo"]["genuine"] is False


def test_china_code_with_a_prefix_not_mapped(db, client):
    answer = verify_json(client, "89997770000000000001")
    assert answer["verified"] is False
    assert answer["verificationFailureReason"] == "unknownProduct"
    assert answer["additionalInfo"]["product"] is None
    assert answer["additionalInfo"]["codeType"] == "china"
    assert answer["additionalInfo"]["code"] == "urn:nethospital:cn-drug-code:89997770000000000001"


def test_china_code_of_a_genuine_box(drug_pack, client):
    code = china("8999001", "1234567890123")
    commission([code], batch="C1")
    answer = verify_json(client, "89990011234567890123")
    assert answer["verified"] is True
    assert answer["additionalInfo"]["product"]["chinaProductCode"] == "8999001"
    assert answer["additionalInfo"]["batch"] == "C1"


def test_recalled(genuine, drug_pack, client):
    recalls.recall_batch(regulator(), drug_pack.gtin, "LOT9", "impurity")
    answer = verify_json(client, genuine)
    assert (answer["verified"], answer["verificationFailureReason"]) == (False, "recalled")
    assert answer["additionalInfo"]["recalled"] is True


def test_expired(drug_pack, client):
    box = sgtin()
    commission([box], expiry="2026-11-09")
    with clock.frozen(TODAY):
        answer = verify_json(client, box)
    assert (answer["verified"], answer["verificationFailureReason"]) == (False, "expired")
    assert answer["additionalInfo"]["expired"] is True


def test_destroyed(genuine, client):
    scan(state.DESTROYING, [genuine], time=T0 + 3 * H)
    answer = verify_json(client, genuine)
    assert (answer["verified"], answer["verificationFailureReason"]) == (False, "decommissioned")
    assert answer["additionalInfo"]["status"] == "destroyed"


@pytest.mark.parametrize("code", ["12345", "8999001000000000000X", "urn:epc:id:grai:0999990.00001.1"])
def test_unreadable_codes(db, client, code):
    response = client.get(reverse("traceability:verify"), {"code": code, "format": "json"})
    answer = json.loads(response.content)
    assert (answer["verified"], answer["verificationFailureReason"]) == (False, "invalidCode")


def test_no_personal_data_in_the_answer(genuine, pharmacy_a, client):
    patient_user = factories.patient_user(legal_name="李秀英")
    dispense([genuine], pharmacy_a, time=T0 + 2 * H)
    scan(state.COURIER_HANDOVER, [genuine], time=T0 + 3 * H)
    text = json.dumps(verify_json(client, genuine), ensure_ascii=False)
    page = client.get(reverse("traceability:verify_code", kwargs={"code": genuine})).content.decode()
    for secret in (
        "李秀英",
        patient_user.email,
        pharmacy_a.name_zh,
        pharmacy_a.name_en,
        state.location_uri_for(pharmacy_a),
        str(pharmacy_a.licence_number),
    ):
        assert secret not in text
        assert secret not in page
    assert set(json.loads(text)["additionalInfo"]) == {
        "code",
        "codeType",
        "genuine",
        "product",
        "batch",
        "expiry",
        "dispensed",
        "recalled",
        "expired",
        "status",
    }


def test_a_known_code_is_one_query(genuine, django_assert_num_queries):
    with django_assert_num_queries(1):
        result = verify_code(genuine)
    assert result.verified


def test_verify_page_in_both_languages(genuine, client):
    english = client.get(
        reverse("traceability:verify_code", kwargs={"code": genuine}), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert 'data-verified="true"' in english
    assert "Genuine box" in english
    assert "amlodipine besylate tablets" in english
    chinese = client.get(
        reverse("traceability:verify_code", kwargs={"code": genuine}), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "苯磺酸氨氯地平片" in chinese
    assert "正品" in chinese


def test_verify_form_and_json_by_accept_header(genuine, client):
    form = client.get(reverse("traceability:verify"))
    assert form.status_code == 200
    assert 'id="verify-form"' in form.content.decode()
    by_query = client.get(reverse("traceability:verify"), {"code": genuine})
    assert 'data-verified="true"' in by_query.content.decode()
    by_accept = client.get(
        reverse("traceability:verify_code", kwargs={"code": genuine}), HTTP_ACCEPT="application/json"
    )
    assert json.loads(by_accept.content)["verified"] is True
    missing = client.get(reverse("traceability:verify"), {"format": "json"})
    assert missing.status_code == 400


def test_failure_is_explained_on_the_page(drug_pack, client):
    page = client.get(
        reverse("traceability:verify_code", kwargs={"code": sgtin(serial="NOPE")}), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert 'data-reason="unknownCode"' in page
    assert "It may be a fake" in page


def test_rate_limited_per_address(genuine, client, settings):
    settings.NETHOSPITAL_VERIFY_RATE_PER_ADDRESS = 3
    url = reverse("traceability:verify_code", kwargs={"code": genuine})
    for _ in range(3):
        assert client.get(url, {"format": "json"}, REMOTE_ADDR="198.51.100.7").status_code == 200
    limited = client.get(url, {"format": "json"}, REMOTE_ADDR="198.51.100.7")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert json.loads(limited.content)["error"]["code"] == "rate_limited"
    assert client.get(url, REMOTE_ADDR="198.51.100.7").status_code == 429
    assert client.get(url, {"format": "json"}, REMOTE_ADDR="198.51.100.8").status_code == 200


# --- What scanners deliver --------------------------------------------------------------------------


@pytest.fixture
def our_prefix(settings):
    # The test products' company prefix is 7 digits; GS1's table does not know it.
    settings.NETHOSPITAL_GS1_COMPANY_PREFIXES = ["0999990"]


@pytest.mark.parametrize(
    "scanned",
    [
        "]d2010099999010001521G1\x1d17280630\x1d10LOT9",  # DataMatrix with the symbology prefix and GS
        "(01)00999990100015(17)280630(10)LOT9(21)G1",  # the human-readable line under the symbol
        "https://id.gs1.org/01/00999990100015/21/G1?17=280630&10=LOT9",  # GS1 Digital Link
        "https://pharma.example.com/p/01/00999990100015/21/G1",  # Digital Link on the maker's domain
    ],
)
def test_scanner_forms_name_the_same_box(genuine, our_prefix, scanned):
    result = verify_code(scanned)
    assert result.identifier == genuine
    assert (result.verified, result.failure_reason) == (True, None)


def test_printed_batch_that_does_not_match_the_commissioned_one(genuine, our_prefix):
    result = verify_code("]d2010099999010001521G1\x1d17280630\x1d10FAKE")
    assert (result.verified, result.failure_reason, result.genuine) == (False, "batchMismatch", True)


def test_printed_expiry_that_does_not_match_the_commissioned_one(genuine, our_prefix):
    result = verify_code("]d2010099999010001521G1\x1d17290630\x1d10LOT9")
    assert (result.verified, result.failure_reason) == (False, "expiryMismatch")


@pytest.mark.parametrize(
    "scanned",
    [
        "]d2010099999010001621G1",  # wrong GTIN check digit
        "]d2010099999010001521G1\x1d17281331",  # month 13
        "urn:epc:class:lgtin:0999990.010001.LOT9",  # a batch, not a box
        "urn:epc:id:sgln:0999990.00001.0",  # a place
    ],
)
def test_codes_that_name_no_box_are_invalid(db, our_prefix, scanned):
    result = verify_code(scanned)
    assert (result.verified, result.failure_reason) == (False, "invalidCode")


def test_dispensing_scan_of_a_datamatrix(genuine, our_prefix, drug_pack, pharmacy_a):
    from nethospital.traceability import anomalies

    scanned = "]d2010099999010001521G1\x1d17280630\x1d10LOT9"
    assert anomalies.check_dispensable(scanned, pharmacy_a, [drug_pack.gtin], T0 + 2 * H) is None
