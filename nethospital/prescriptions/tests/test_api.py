"""The prescriptions JSON API: each prescribing rule with its reason (issue 5, point 3), bad input
refused with a clear code and nothing changed, the signature and its public verification, review
(expired never approved), the patient's side (R16) and R12. The clock is frozen at the fixture's
noon; every request goes through the real session login (MFA for clinicians, R6)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Relationship, Role, Sex
from nethospital.accounts.identity import make_number
from nethospital.core import clock
from nethospital.core.models import AuditEntry
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.models import (
    PharmacistReview,
    Prescription,
    PrescriptionItem,
    RuleOverride,
)
from nethospital.prescriptions.tests.conftest import NOON, follow_up_consultation
from nethospital.testing import factories

pytestmark = pytest.mark.django_db


class Api:
    """A logged-in JSON client: ``call(method, path, body)`` → (status, json)."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        kwargs: dict = {"content_type": "application/json"}
        if body is not None:
            kwargs["data"] = json.dumps(body)
        response = getattr(self.client, method)(f"/api{path}", **kwargs)
        return response.status_code, response.json() if response.content else {}

    def get(self, path: str) -> tuple[int, dict]:
        return self.call("get", path)

    def post(self, path: str, body: object = None) -> tuple[int, dict]:
        return self.call("post", path, body if body is not None else {})

    def put(self, path: str, body: object) -> tuple[int, dict]:
        return self.call("put", path, body)

    def patch(self, path: str, body: object) -> tuple[int, dict]:
        return self.call("patch", path, body)


@pytest.fixture
def noon():
    with clock.frozen(NOON):
        yield


@pytest.fixture
def doctor_api(clinic, login_as, noon) -> Api:
    return Api(login_as(clinic["doctor"].user, mfa=True))


@pytest.fixture
def pharmacist_api(clinic, login_as, noon) -> Api:
    return Api(login_as(clinic["pharmacist"], mfa=True))


@pytest.fixture
def patient_api(clinic, login_as, noon) -> Api:
    return Api(login_as(clinic["patient_user"]))


def regulator():  # type: ignore[no-untyped-def]
    user = factories.staff_user()
    platform = factories.User.objects.filter(is_superuser=True).first()
    platform.is_mfa_verified = True
    account_actions.grant_role(platform, user, Role.REGULATOR)
    return user


def item(drug: str, dose: object = "1", frequency: str = "qd", days: int = 7, **extra: object) -> dict:
    return {"drug": drug, "dose": dose, "frequency": frequency, "days": days, **extra}


def create(api: Api, consultation_id: int, **fields: object) -> dict:
    status, body = api.post("/prescriptions", {"consultation_id": consultation_id, **fields})
    assert status == 201, body
    return body


def draft_with(api: Api, clinic, items: list[dict], **fields: object) -> tuple[int, dict]:
    """A new draft with these items: (prescription id, the set-items answer)."""
    rx = create(api, clinic["consultation"].pk, **fields)
    status, body = api.put(f"/prescriptions/{rx['id']}/items", {"items": items})
    assert status == 200, body
    return rx["id"], body


def findings(body: dict) -> dict[str, dict]:
    return {f["rule"]: f for f in body["findings"]}


def signed(api: Api, clinic, drug: str = "t-amlodipine-5", **fields: object) -> int:
    rx_id, _ = draft_with(api, clinic, [item(drug)], **fields)
    status, body = api.post(f"/prescriptions/{rx_id}/sign")
    assert status == 200, body
    return rx_id


def error_code(answer: tuple[int, dict]) -> tuple[int, str]:
    status, body = answer
    return status, body["error"]["code"]


# --- writing: a draft from one's own follow-up consultation (R1, R8) ----------------------------
def test_a_draft_is_the_doctors_until_it_is_signed(doctor_api, patient_api, pharmacist_api, clinic):
    rx_id, _ = draft_with(doctor_api, clinic, [item("t-amlodipine-5")])
    assert error_code(patient_api.get(f"/prescriptions/{rx_id}")) == (404, "prescription_not_found")
    assert error_code(pharmacist_api.get(f"/prescriptions/{rx_id}")) == (404, "prescription_not_found")
    assert doctor_api.get(f"/prescriptions/{rx_id}")[0] == 200
    assert doctor_api.post(f"/prescriptions/{rx_id}/sign")[0] == 200
    assert patient_api.get(f"/prescriptions/{rx_id}")[0] == 200
    assert pharmacist_api.get(f"/prescriptions/{rx_id}")[0] == 200


def test_create_set_items_and_the_computed_quantity(doctor_api, clinic):
    rx = create(doctor_api, clinic["consultation"].pk, supply_kind="normal", valid_days=2, notes="饭后服用")
    assert (rx["status"], rx["display_status"], rx["diagnoses"], rx["valid_days"]) == ("draft", "draft", ["I10"], 2)
    status, body = doctor_api.put(
        f"/prescriptions/{rx['id']}/items", {"items": [item("t-amoxicillin-500", frequency="tid", days=7)]}
    )
    assert status == 200
    (row,) = body["prescription"]["prescription_items"]
    assert (row["drug"], row["quantity"], row["computed_quantity"], row["route"]) == ("t-amoxicillin-500", 1, 1, "oral")
    assert body["prescription"]["otc_items"] == []


def test_a_consultation_not_ones_own_is_refused(clinic, login_as, noon, city_hospital):
    colleague = factories.doctor(city_hospital, legal_name="赵医生", admin=clinic["admin"])
    api = Api(login_as(colleague.user, mfa=True))
    assert error_code(api.post("/prescriptions", {"consultation_id": clinic["consultation"].pk})) == (
        403,
        "not_treating_doctor",
    )
    advice = follow_up_consultation(clinic["doctor"], clinic["patient_user"], clinic["patient"], first_visit=True)
    doctor = Api(login_as(clinic["doctor"].user, mfa=True))
    assert error_code(doctor.post("/prescriptions", {"consultation_id": advice.pk})) == (
        409,
        "advice_only_no_prescription",
    )
    no_mfa = Api(login_as(clinic["doctor"].user))
    assert error_code(no_mfa.post("/prescriptions", {"consultation_id": clinic["consultation"].pk})) == (
        403,
        "mfa_required",
    )
    assert not Prescription.objects.exists()


# --- each rule with its reason, through the API --------------------------------------------------
def test_a_retried_create_with_its_idempotency_key_returns_the_same_draft(doctor_api, clinic):
    path = "/api/prescriptions"
    body = json.dumps({"consultation_id": clinic["consultation"].pk, "notes": "first"})
    post = doctor_api.client.post
    first = post(path, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="rx-draft-0001")
    assert first.status_code == 201, first.json()
    again = post(path, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="rx-draft-0001")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert Prescription.objects.filter(created_by=clinic["doctor"].user).count() == 1
    assert AuditEntry.objects.filter(action="prescription.create").count() == 1
    # Another key is another draft; no key at all is a new draft each time, as before.
    other = post(path, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="rx-draft-0002")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert Prescription.objects.filter(created_by=clinic["doctor"].user).count() == 2


def test_an_idempotency_key_of_another_consultation_or_malformed_is_refused(doctor_api, clinic):
    post = doctor_api.client.post
    body = json.dumps({"consultation_id": clinic["consultation"].pk})
    first = post("/api/prescriptions", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="rx-key-0001")
    assert first.status_code == 201
    second = follow_up_consultation(clinic["doctor"], clinic["patient_user"], clinic["patient"], "I10")
    reused = post(
        "/api/prescriptions",
        data=json.dumps({"consultation_id": second.pk}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="rx-key-0001",
    )
    assert (reused.status_code, reused.json()["error"]["code"]) == (409, "idempotency_key_reused")
    short = post("/api/prescriptions", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc")
    assert (short.status_code, short.json()["error"]["code"]) == (400, "idempotency_key_invalid")
    assert "idempotency_key" in short.json()["error"]["fields"]
    assert list(Prescription.objects.values_list("consultation_id", flat=True)) == [clinic["consultation"].pk]


def test_controlled_drug_is_refused_and_cannot_be_overridden(doctor_api, clinic):
    rx_id, body = draft_with(doctor_api, clinic, [item("t-morphine-10", days=3)])
    found = findings(body)["controlled"]
    assert found["severity"] == "refusal" and "R11" in found["message"] and found["blocks"]
    assert body["may_sign"] is False
    answer = doctor_api.post(
        f"/prescriptions/{rx_id}/overrides", {"rule": "controlled", "subject": "item:0", "reason": "癌痛"}
    )
    assert error_code(answer) == (409, "rule_not_overridable")
    status, refusal = doctor_api.post(f"/prescriptions/{rx_id}/sign")
    assert (status, refusal["error"]["code"]) == (409, "prescription_blocked")
    assert any("R11" in text for text in refusal["error"]["fields"]["rules"])
    assert Prescription.objects.get(pk=rx_id).signature == ""
    assert not RuleOverride.objects.exists()


@pytest.mark.parametrize(
    ("supply_kind", "days", "reason", "refused"),
    [
        ("normal", 7, "", None),
        ("normal", 8, "", "days_of_supply"),
        ("emergency", 3, "", None),
        ("emergency", 4, "", "days_of_supply"),
        ("chronic", 30, "", "supply_reason"),
        ("chronic", 30, "稳定期高血压", None),
        ("chronic", 31, "稳定期高血压", "days_of_supply"),
        ("long", 84, "长期处方：病情稳定", None),
        ("long", 85, "长期处方：病情稳定", "days_of_supply"),
    ],
)
def test_days_of_supply(doctor_api, clinic, supply_kind, days, reason, refused):
    rx_id, body = draft_with(
        doctor_api, clinic, [item("t-amlodipine-5", days=days)], supply_kind=supply_kind, supply_reason=reason
    )
    refusals = {f["rule"]: f["message"] for f in body["findings"] if f["severity"] == "refusal"}
    status, signed_body = doctor_api.post(f"/prescriptions/{rx_id}/sign")
    if refused is None:
        assert refusals == {}
        assert (status, signed_body["status"]) == (200, "pending_review")
    else:
        assert "R13" in refusals[refused]
        if refused == "days_of_supply":
            assert f"用药 {days} 天" in refusals[refused]
        assert (status, signed_body["error"]["code"]) == (409, "prescription_blocked")


def test_longer_supply_needs_a_chronic_diagnosis(doctor_api, clinic):
    acute = follow_up_consultation(clinic["doctor"], clinic["patient_user"], clinic["patient"], "J06.9")
    rx = create(doctor_api, acute.pk, supply_kind="chronic", supply_reason="患者要求")
    status, body = doctor_api.put(f"/prescriptions/{rx['id']}/items", {"items": [item("t-amlodipine-5", days=20)]})
    assert status == 200
    assert findings(body)["supply_not_chronic"]["severity"] == "refusal"


def test_allergy_warning_is_overridden_with_a_reason_then_signed(doctor_api, clinic):
    rx_id, body = draft_with(doctor_api, clinic, [item("t-amoxicillin-500", frequency="tid", days=5)])
    allergy = findings(body)["allergy"]
    assert allergy["severity"] == "warning" and "青霉素" in allergy["message"] and allergy["blocks"]
    assert error_code(doctor_api.post(f"/prescriptions/{rx_id}/sign")) == (409, "prescription_blocked")
    no_reason = doctor_api.post(
        f"/prescriptions/{rx_id}/overrides", {"rule": "allergy", "subject": allergy["subject"], "reason": " "}
    )
    assert error_code(no_reason) == (400, "override_reason_required")
    unknown = doctor_api.post(
        f"/prescriptions/{rx_id}/overrides", {"rule": "allergy", "subject": "item:9", "reason": "x"}
    )
    assert error_code(unknown) == (400, "no_such_warning")
    status, body = doctor_api.post(
        f"/prescriptions/{rx_id}/overrides",
        {"rule": "allergy", "subject": allergy["subject"], "reason": "皮试阴性，既往耐受"},
    )
    assert status == 200 and body["may_sign"] is True
    overridden = findings(body)["allergy"]
    assert (overridden["overridden"], overridden["override_reason"], overridden["blocks"]) == (
        True,
        "皮试阴性，既往耐受",
        False,
    )
    status, body = doctor_api.post(f"/prescriptions/{rx_id}/sign")
    assert (status, body["status"]) == (200, "pending_review")
    assert body["verification_url"].endswith(f"/verify/prescription/{rx_id}/?hash={body['content_hash']}")


def test_duplicate_ingredient_and_class_are_warnings(doctor_api, clinic):
    _, body = draft_with(doctor_api, clinic, [item("t-amlodipine-5"), item("t-amlodipine-10"), item("t-nifedipine-30")])
    found = findings(body)
    assert found["duplicate_ingredient"]["severity"] == "warning"
    assert found["duplicate_ingredient"]["message"] == "同一成分重复开具（第 1, 2 项）。"
    assert found["duplicate_class"]["severity"] == "warning"


def test_interactions(doctor_api, clinic):
    _, body = draft_with(doctor_api, clinic, [item("t-simvastatin-20"), item("t-clarithromycin-250", frequency="bid")])
    interaction = findings(body)["interaction"]
    assert interaction["severity"] == "refusal" and "横纹肌溶解" in interaction["message"]
    _, body = draft_with(doctor_api, clinic, [item("t-warfarin-3"), item("t-aspirin-100")])
    assert findings(body)["interaction"]["severity"] == "warning"


def test_maximum_daily_dose(doctor_api, clinic):
    rx_id, body = draft_with(doctor_api, clinic, [item("t-amlodipine-5", dose="2", frequency="bid")])
    refusal = findings(body)["max_daily_dose"]
    assert refusal["severity"] == "refusal"
    assert refusal["message"] == "氨氯地平 / amlodipine：每日 20 mg，超过最大日剂量 10 mg。"
    # The same reason in English for an English-speaking client.
    english = doctor_api.client.get(f"/api/prescriptions/{rx_id}", HTTP_ACCEPT_LANGUAGE="en").json()
    (found,) = [f for f in english["findings"] if f["rule"] == "max_daily_dose"]
    assert found["message"] == "氨氯地平 / amlodipine: 20 mg a day is over the maximum of 10 mg."


def test_children_need_a_weight_and_suitable_drugs(doctor_api, clinic):
    birth = dt.date(2018, 3, 1)
    link = account_actions.add_family_member(
        clinic["patient_user"],
        legal_name="张小明",
        id_number=make_number("110101", birth, 12, Sex.MALE),
        birth_date=birth,
        sex=Sex.MALE,
        relationship=Relationship.CHILD,
    )
    consultation = follow_up_consultation(clinic["doctor"], clinic["patient_user"], link.patient, "J45.9")
    rx = create(doctor_api, consultation.pk)
    status, body = doctor_api.put(
        f"/prescriptions/{rx['id']}/items", {"items": [item("t-aspirin-100"), item("t-amlodipine-5")]}
    )
    found = findings(body)
    assert (found["child_weight"]["severity"], found["paediatric"]["severity"]) == ("refusal", "refusal")
    assert found["paediatric_caution"]["severity"] == "warning"
    assert error_code(doctor_api.patch(f"/prescriptions/{rx['id']}", {"patient_weight_kg": "-3"})) == (
        400,
        "weight_invalid",
    )
    status, body = doctor_api.patch(f"/prescriptions/{rx['id']}", {"patient_weight_kg": 24.5})
    assert status == 200 and body["prescription"]["patient_weight_kg"] == "24.5"
    assert "child_weight" not in findings(body)


# --- bad input: a clear code, nothing changed ----------------------------------------------------
def test_bad_items_are_refused_with_a_clear_code(doctor_api, clinic):
    rx_id, _ = draft_with(doctor_api, clinic, [item("t-amlodipine-5")])
    path = f"/prescriptions/{rx_id}/items"
    cases = [
        ([item("t-amlodipine-5"), item("no-such-drug")], 400, "unknown_drug", "items.1.drug"),
        ([item("t-amlodipine-5", dose="0")], 400, "dose_not_positive", "items.0.dose"),
        ([item("t-amlodipine-5", dose=-1)], 400, "dose_not_positive", "items.0.dose"),
        ([item("t-amlodipine-5"), item("t-amlodipine-10", days=0)], 400, "days_not_positive", "items.1.days"),
        ([item("t-amlodipine-5", days=400)], 400, "days_too_many", "items.0.days"),
        ([item("t-amlodipine-5", dose="20000")], 400, "dose_too_large", "items.0.dose"),
        ([item("t-amlodipine-5", quantity=0)], 400, "quantity_invalid", "items.0.quantity"),
        ([], 400, "prescription_empty", "items"),
        ([item("t-amlodipine-5", frequency="hourly")], 422, "invalid_input", "items.0.frequency"),
        ([item("t-amlodipine-5", dose="abc")], 422, "invalid_input", "items.0.dose"),
    ]
    for items, status, code, field in cases:
        answer_status, body = doctor_api.put(path, {"items": items})
        assert (answer_status, body["error"]["code"]) == (status, code), items
        assert field in body["error"]["fields"], (field, body)
    assert [(i.drug.code, i.dose) for i in PrescriptionItem.objects.filter(prescription_id=rx_id)] == [
        ("t-amlodipine-5", Decimal("1.000"))
    ]
    assert error_code(
        doctor_api.post("/prescriptions", {"consultation_id": clinic["consultation"].pk, "valid_days": 4})
    ) == (
        400,
        "valid_days_invalid",
    )
    malformed = doctor_api.client.put(f"/api/prescriptions/{rx_id}/items", "{", content_type="application/json")
    assert malformed.status_code == 400 and "code" in malformed.json()["error"]
    assert Prescription.objects.count() == 1


def test_signing_someone_elses_prescription_or_a_signed_one_is_refused(doctor_api, clinic, login_as, city_hospital):
    rx_id, _ = draft_with(doctor_api, clinic, [item("t-amlodipine-5")])
    colleague = factories.doctor(city_hospital, legal_name="赵医生", admin=clinic["admin"])
    other = Api(login_as(colleague.user, mfa=True))
    assert error_code(other.post(f"/prescriptions/{rx_id}/sign")) == (404, "prescription_not_found")
    assert error_code(other.put(f"/prescriptions/{rx_id}/items", {"items": [item("t-amlodipine-10")]})) == (
        404,
        "prescription_not_found",
    )
    assert Prescription.objects.get(pk=rx_id).status == PrescriptionStatus.DRAFT
    assert doctor_api.post(f"/prescriptions/{rx_id}/sign")[0] == 200
    # A signed prescription never changes: replaying a changed item list is refused.
    assert error_code(doctor_api.put(f"/prescriptions/{rx_id}/items", {"items": [item("t-amlodipine-10")]})) == (
        409,
        "prescription_not_draft",
    )
    assert error_code(doctor_api.post(f"/prescriptions/{rx_id}/sign")) == (409, "prescription_not_draft")


# --- the signature and its public verification (R10) --------------------------------------------
VERIFY_KEYS = {
    "prescription_id",
    "valid",
    "reason",
    "reason_text",
    "number",
    "version",
    "issued_at",
    "valid_until",
    "hospital",
    "doctor_name",
    "doctor_licence",
    "key_id",
    "public_key",
    "content_hash",
    "signed_hash",
    "status",
    "status_label",
    "hash_given",
    "hash_matches",
}


def test_verification_is_public_and_shows_no_patient_and_no_drugs(doctor_api, clinic, client):
    rx_id = signed(doctor_api, clinic)
    rx = Prescription.objects.get(pk=rx_id)
    response = client.get(f"/api/prescriptions/{rx_id}/verify")
    body = response.json()
    assert response.status_code == 200 and set(body) == VERIFY_KEYS
    assert (body["valid"], body["reason"], body["number"], body["version"]) == (True, "ok", rx.number, 1)
    assert (body["doctor_name"], body["doctor_licence"]) == (
        clinic["doctor"].legal_name,
        clinic["doctor"].licence_number,
    )
    assert body["content_hash"] == body["signed_hash"] == rx.canonical_hash
    assert body["public_key"] == rx.signing_key.public_key and len(body["public_key"]) == 64
    assert body["status"] == "pending_review"
    text = response.content.decode("unicode_escape")
    for private in (clinic["patient"].legal_name, clinic["patient"].id_number_masked, "amlodipine", "氨氯地平", "I10"):
        assert private not in text
    matching = client.get(f"/api/prescriptions/{rx_id}/verify?hash={rx.canonical_hash}").json()
    assert (matching["hash_given"], matching["hash_matches"]) == (rx.canonical_hash, True)
    other = client.get(f"/api/prescriptions/{rx_id}/verify?hash={'0' * 64}").json()
    assert other["hash_matches"] is False
    assert client.get("/api/prescriptions/999999/verify").json()["error"]["code"] == "prescription_not_found"


def test_a_draft_verifies_as_unsigned_and_tells_nothing(doctor_api, clinic, client):
    rx_id, _ = draft_with(doctor_api, clinic, [item("t-amlodipine-5")])
    body = client.get(f"/api/prescriptions/{rx_id}/verify").json()
    assert (body["valid"], body["reason"], body["number"], body["doctor_name"]) == (False, "unsigned", None, None)


def test_a_row_changed_after_signing_fails_verification_and_review(doctor_api, pharmacist_api, clinic, client):
    rx_id = signed(doctor_api, clinic)
    PrescriptionItem.objects.filter(prescription_id=rx_id).update(dose=Decimal("2"))
    body = client.get(f"/api/prescriptions/{rx_id}/verify").json()
    assert (body["valid"], body["reason"]) == (False, "content_changed")
    assert body["content_hash"] != body["signed_hash"]
    assert error_code(pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "approve"})) == (
        409,
        "signature_invalid",
    )
    assert not PharmacistReview.objects.exists()
    # A forged signature over the original content fails too.
    PrescriptionItem.objects.filter(prescription_id=rx_id).update(dose=Decimal("1"))
    Prescription.objects.filter(pk=rx_id).update(signature="00" * 64)
    assert client.get(f"/api/prescriptions/{rx_id}/verify").json()["reason"] == "bad_signature"


def test_verification_is_rate_limited_per_address(doctor_api, clinic, client, monkeypatch):
    from nethospital.prescriptions import api as rx_api

    monkeypatch.setattr(rx_api, "VERIFY_RATE_PER_ADDRESS", 2)
    rx_id = signed(doctor_api, clinic)
    assert [client.get(f"/api/prescriptions/{rx_id}/verify").status_code for _ in range(3)] == [200, 200, 429]


# --- the pharmacist (R10) ------------------------------------------------------------------------
def test_review_queue_approve_and_the_patient_sees_it(doctor_api, pharmacist_api, patient_api, clinic):
    rx_id = signed(doctor_api, clinic)
    status, queue = pharmacist_api.get("/pharmacist/review-queue")
    assert status == 200 and [row["id"] for row in queue] == [rx_id]
    status, detail = pharmacist_api.get(f"/prescriptions/{rx_id}")
    assert status == 200 and {f["rule"] for f in detail["findings"]} == set()
    status, body = pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "approve", "note": "合理"})
    assert (status, body["status"], body["review"]["decision"]) == (200, "approved", "approve")
    assert pharmacist_api.get("/pharmacist/review-queue")[1] == []
    status, mine = patient_api.get("/prescriptions/mine")
    assert [(row["id"], row["display_status"]) for row in mine] == [(rx_id, "approved")]
    status, detail = patient_api.get(f"/prescriptions/{rx_id}")
    assert detail["reviews"][0]["decision"] == "approve" and detail["findings"] == []
    assert AuditEntry.objects.filter(action="prescription.view", object_id=str(rx_id)).exists()


def test_reject_needs_reasons_and_question_needs_text(doctor_api, pharmacist_api, clinic):
    rx_id = signed(doctor_api, clinic)
    assert error_code(pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "reject"})) == (
        400,
        "reject_reason_required",
    )
    assert error_code(
        pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "reject", "reason_codes": ["cheap"]})
    ) == (422, "invalid_input")
    assert error_code(pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "question"})) == (
        400,
        "question_required",
    )
    assert error_code(pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "maybe"})) == (
        422,
        "invalid_input",
    )
    status, body = pharmacist_api.post(
        f"/prescriptions/{rx_id}/review", {"decision": "reject", "reason_codes": ["dose", "other"], "note": "剂量偏大"}
    )
    assert (status, body["status"], body["review"]["reason_codes"]) == (200, "rejected", ["dose", "other"])


def test_question_amend_sign_approve(doctor_api, pharmacist_api, clinic):
    rx_id = signed(doctor_api, clinic)
    pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "question", "note": "请确认剂量"})
    assert error_code(doctor_api.post(f"/prescriptions/{rx_id}/amend", {"reason": ""})) == (
        400,
        "override_reason_required",
    )
    status, amended = doctor_api.post(f"/prescriptions/{rx_id}/amend", {"reason": "按药师意见调整"})
    assert (status, amended["version"], amended["replaces_id"], amended["status"]) == (201, 2, rx_id, "draft")
    new_id = amended["id"]
    doctor_api.put(f"/prescriptions/{new_id}/items", {"items": [item("t-amlodipine-5", days=5)]})
    assert doctor_api.post(f"/prescriptions/{new_id}/sign")[0] == 200
    assert Prescription.objects.get(pk=rx_id).status == PrescriptionStatus.SUPERSEDED
    assert pharmacist_api.post(f"/prescriptions/{new_id}/review", {"decision": "approve"})[1]["status"] == "approved"
    status, mine = doctor_api.get("/doctor/prescriptions")
    assert [(row["id"], row["status"]) for row in mine] == [(new_id, "approved")]


def test_cancel(doctor_api, clinic):
    rx_id = signed(doctor_api, clinic)
    status, body = doctor_api.post(f"/prescriptions/{rx_id}/cancel", {"reason": "患者改为线下就诊"})
    assert (status, body["status"]) == (200, "cancelled")
    assert error_code(doctor_api.post(f"/prescriptions/{rx_id}/cancel", {"reason": "again"})) == (409, "not_amendable")


def test_nobody_reviews_their_own_prescription(doctor_api, clinic, login_as, city_hospital):
    rx_id = signed(doctor_api, clinic)
    platform = factories.User.objects.filter(is_superuser=True).first()
    platform.is_mfa_verified = True
    account_actions.grant_role(platform, clinic["doctor"].user, Role.PHARMACIST, organization_id=city_hospital.pk)
    both = Api(login_as(clinic["doctor"].user, mfa=True))
    assert error_code(both.post(f"/prescriptions/{rx_id}/review", {"decision": "approve"})) == (403, "own_prescription")
    assert both.get("/pharmacist/review-queue")[1] == []
    assert Prescription.objects.get(pk=rx_id).status == PrescriptionStatus.PENDING_REVIEW


def test_an_expired_prescription_cannot_be_approved(doctor_api, pharmacist_api, clinic):
    rx_id = signed(doctor_api, clinic)
    clock.advance(dt.timedelta(hours=12))  # past midnight: valid on the day of issue only (R13)
    _, queue = pharmacist_api.get("/pharmacist/review-queue")
    assert [(row["id"], row["status"], row["display_status"]) for row in queue] == [
        (rx_id, "pending_review", "expired")
    ]
    assert error_code(pharmacist_api.post(f"/prescriptions/{rx_id}/review", {"decision": "approve"})) == (
        409,
        "prescription_expired",
    )
    assert Prescription.objects.get(pk=rx_id).status == PrescriptionStatus.PENDING_REVIEW
    assert not PharmacistReview.objects.exists()


def test_a_pharmacist_of_another_hospital_or_without_mfa_cannot_review(doctor_api, clinic, login_as):
    rx_id = signed(doctor_api, clinic)
    outsider = factories.staff_user()
    platform = factories.User.objects.filter(is_superuser=True).first()
    platform.is_mfa_verified = True
    other = factories.hospital(name_zh="他院", name_en="Other")
    account_actions.grant_role(platform, outsider, Role.PHARMACIST, organization_id=other.pk)
    api = Api(login_as(outsider, mfa=True))
    assert error_code(api.post(f"/prescriptions/{rx_id}/review", {"decision": "approve"})) == (403, "not_a_reviewer")
    assert error_code(api.get(f"/prescriptions/{rx_id}")) == (404, "prescription_not_found")
    assert api.get("/pharmacist/review-queue")[1] == []
    no_mfa = Api(login_as(clinic["pharmacist"]))
    assert error_code(no_mfa.get("/pharmacist/review-queue")) == (403, "mfa_required")
    assert error_code(no_mfa.post(f"/prescriptions/{rx_id}/review", {"decision": "approve"})) == (403, "mfa_required")


# --- the patient's side (R16) ----------------------------------------------------------------------
def test_patient_sees_prescription_and_otc_drugs_apart_and_confirms_the_notice(doctor_api, patient_api, clinic):
    from nethospital.prescriptions.models import Drug

    otc = Drug.objects.get(code="t-amlodipine-10")
    otc.is_prescription = False
    otc.save()
    rx_id, _ = draft_with(doctor_api, clinic, [item("t-simvastatin-20"), item("t-amlodipine-10")])
    # A draft is not a prescription yet: the patient's side does not see it.
    assert error_code(patient_api.get(f"/prescriptions/{rx_id}")) == (404, "prescription_not_found")
    assert patient_api.get("/prescriptions/mine")[1] == []
    assert doctor_api.post(f"/prescriptions/{rx_id}/sign")[0] == 200
    status, body = patient_api.get(f"/prescriptions/{rx_id}")
    assert [i["drug"] for i in body["prescription_items"]] == ["t-simvastatin-20"]
    assert [i["drug"] for i in body["otc_items"]] == ["t-amlodipine-10"]
    assert body["notice_confirmed_at"] is None and body["findings"] == []
    status, body = patient_api.post(f"/prescriptions/{rx_id}/notice")
    assert status == 200 and body["notice_confirmed_at"] == "2026-11-23T04:00:00Z"


def test_strangers_see_nothing(doctor_api, clinic, login_as):
    rx_id = signed(doctor_api, clinic)
    stranger = Api(login_as(factories.patient_user()))
    assert error_code(stranger.get(f"/prescriptions/{rx_id}")) == (404, "prescription_not_found")
    assert error_code(stranger.post(f"/prescriptions/{rx_id}/notice")) == (404, "prescription_not_found")
    assert stranger.get("/prescriptions/mine")[1] == []
    assert error_code(stranger.get("/doctor/prescriptions")) == (403, "permission_denied")
    assert error_code(stranger.get("/pharmacist/review-queue")) == (403, "permission_denied")
    assert Prescription.objects.get(pk=rx_id).notice_confirmed_at is None


def test_drug_search_by_chinese_english_name_or_code(doctor_api):
    for query, expected in (
        ("阿莫西林", "t-amoxicillin-500"),
        ("Simvastatin", "t-simvastatin-20"),
        ("t-warf", "t-warfarin-3"),
    ):
        status, rows = doctor_api.get(f"/drugs?q={query}")
        assert status == 200 and expected in [r["code"] for r in rows], query
    status, rows = doctor_api.get("/drugs?q=t-morphine")
    assert [(r["code"], r["is_controlled"], r["control_class"]) for r in rows] == [("t-morphine-10", True, "narcotic")]
    assert doctor_api.get("/drugs?q=")[0] == 422


# --- R12: per-doctor statistics for the regulator only ----------------------------------------------
def test_prescribing_statistics_are_for_the_regulator_only(doctor_api, clinic, login_as, client):
    signed(doctor_api, clinic)
    for user, mfa in (
        (clinic["doctor"].user, True),
        (clinic["pharmacist"], True),
        (clinic["admin"], True),
        (clinic["patient_user"], False),
    ):
        assert error_code(Api(login_as(user, mfa=mfa)).get("/regulator/prescribing-statistics")) == (
            403,
            "statistics_forbidden",
        )
    assert client.get("/api/regulator/prescribing-statistics").status_code == 401
    status, rows = Api(login_as(regulator(), mfa=True)).get("/regulator/prescribing-statistics")
    assert status == 200
    assert rows == [
        {
            "practitioner_id": clinic["doctor"].pk,
            "doctor_name": clinic["doctor"].legal_name,
            "hospital_id": clinic["consultation"].hospital_id,
            "hospital": str(clinic["consultation"].hospital),
            "prescriptions": 1,
        }
    ]


def test_the_openapi_document_lists_the_prescription_endpoints(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in (
        "/api/drugs",
        "/api/prescriptions",
        "/api/prescriptions/{prescription_id}/items",
        "/api/prescriptions/{prescription_id}/sign",
        "/api/prescriptions/{prescription_id}/verify",
        "/api/pharmacist/review-queue",
        "/api/regulator/prescribing-statistics",
    ):
        assert path in paths, path
