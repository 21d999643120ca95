"""The prescription pages: the doctor writes (htmx findings after every change, per-field errors,
override, sign), the pharmacist reviews, the patient sees the result (R16 notice), the public
verification page and the regulator's statistics (R12); every page for every role, anonymous too."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.test import Client

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Role
from nethospital.core import clock
from nethospital.prescriptions import actions
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.choices import PrescriptionStatus
from nethospital.prescriptions.models import Drug, PharmacistReview, Prescription, PrescriptionItem
from nethospital.prescriptions.tests.conftest import NOON, follow_up_consultation
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def noon():
    with clock.frozen(NOON):
        yield


@pytest.fixture
def doctor(clinic, login_as) -> Client:
    client = login_as(clinic["doctor"].user, mfa=True)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def pharmacist(clinic, login_as) -> Client:
    return login_as(clinic["pharmacist"], mfa=True)


@pytest.fixture
def patient(clinic, login_as) -> Client:
    return login_as(clinic["patient_user"])


def html(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode()


def element(response, element_id: str) -> str:  # type: ignore[no-untyped-def]
    """The text of the element with this id, up to the end of its line (enough for assertions)."""
    match = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</(div|ul|p|span|dd|section)>', html(response), re.S)
    return match.group(1) if match else ""


def row_data(drug: str, *, dose: str = "1", frequency: str = "qd", days: str = "7", index: int = 0) -> dict[str, str]:
    return {
        f"items-{index}-drug": drug,
        f"items-{index}-dose": dose,
        f"items-{index}-frequency": frequency,
        f"items-{index}-days": days,
    }


def start(doctor: Client, clinic, key: str | None = None) -> int:  # type: ignore[no-untyped-def]
    response = doctor.post(
        f"/consultations/{clinic['consultation'].pk}/prescriptions/new/",
        {
            "draft-supply_kind": "normal",
            "draft-valid_days": "1",
            "draft-notes": "饭后服用",
            "draft-idempotency_key": key or uuid.uuid4().hex,
        },
    )
    assert response.status_code == 302, html(response)
    return int(response["Location"].split("/")[2])


def signed_prescription(clinic, drug: str = "t-amlodipine-5") -> Prescription:  # type: ignore[no-untyped-def]
    doctor_user = clinic["doctor"].user
    rx = actions.create_prescription(doctor_user, clinic["consultation"].pk)
    actions.set_items(doctor_user, rx.pk, [ItemInput(drug=drug, dose="1", frequency="qd", days=7)])
    return actions.sign_prescription(doctor_user, rx.pk)


# --- the doctor writes -----------------------------------------------------------------------------
def test_doctor_writes_sees_the_allergy_warning_overrides_and_signs(doctor, clinic):
    page = doctor.get(f"/consultations/{clinic['consultation'].pk}/prescriptions/new/")
    assert page.status_code == 200
    assert "青霉素" in element(page, "patient-allergies") and "I10" in element(page, "diagnoses")
    rx_id = start(doctor, clinic)
    editor = doctor.get(f"/prescriptions/{rx_id}/edit/")
    assert editor.status_code == 200
    assert 'id="sign-button" disabled' in html(editor)  # nothing to sign yet

    # htmx: the findings come back at once, the item row says what was saved.
    answer = doctor.post(
        f"/prescriptions/{rx_id}/items/", row_data("t-amoxicillin-500", frequency="tid", days="5"), **HTMX
    )
    assert answer.status_code == 200
    body = html(answer)
    assert body.lstrip().startswith('<section class="card" id="rx-findings"')
    assert 'data-rule="allergy"' in body and 'data-severity="warning"' in body and "青霉素" in body
    assert 'id="sign-button" disabled' in body
    assert 'id="items-0-status" class="row-status" hx-swap-oob="true"' in body
    assert 'data-drug="t-amoxicillin-500"' in body and "(computed: 1)" in body

    # Override without a reason: refused in place; with one: the sign button is enabled.
    refused = doctor.post(
        f"/prescriptions/{rx_id}/override/", {"rule": "allergy", "subject": "item:0", "reason": ""}, **HTMX
    )
    assert refused.status_code == 400
    assert "Give the reason for going on despite the warning." in html(refused)
    done = doctor.post(
        f"/prescriptions/{rx_id}/override/", {"rule": "allergy", "subject": "item:0", "reason": "皮试阴性"}, **HTMX
    )
    assert done.status_code == 200
    assert "皮试阴性" in html(done) and 'id="sign-button">' in html(done)

    signed = doctor.post(f"/prescriptions/{rx_id}/sign/")
    assert signed.status_code == 302 and signed["Location"] == f"/prescriptions/{rx_id}/"
    rx = Prescription.objects.get(pk=rx_id)
    assert rx.status == PrescriptionStatus.PENDING_REVIEW and rx.notes == "饭后服用"
    detail = doctor.get(f"/prescriptions/{rx_id}/")
    assert detail.status_code == 200 and "皮试阴性" in html(detail)
    # A signed prescription is no longer edited: the editor sends the doctor to the detail.
    assert doctor.get(f"/prescriptions/{rx_id}/edit/")["Location"] == f"/prescriptions/{rx_id}/"


def test_each_refusal_is_shown_next_to_its_field(doctor, clinic):
    rx_id = start(doctor, clinic)
    items = f"/prescriptions/{rx_id}/items/"
    zero = doctor.post(items, row_data("t-amlodipine-5", dose="0"), **HTMX)
    assert zero.status_code == 400
    assert "The dose must be more than zero." in element(zero, "id_items-0-dose_errors")
    unknown = doctor.post(items, {**row_data("t-amlodipine-5"), **row_data("no-such-drug", index=2)}, **HTMX)
    assert unknown.status_code == 400
    assert "Unknown drug: no-such-drug." in element(unknown, "id_items-2-drug_errors")
    days = doctor.post(items, row_data("t-amlodipine-5", days="0"), **HTMX)
    assert "Days of supply must be at least 1." in element(days, "id_items-0-days_errors")
    missing = doctor.post(items, {"items-0-drug": "t-amlodipine-5", "items-0-frequency": "qd"}, **HTMX)
    assert missing.status_code == 422 and "required" in element(missing, "id_items-0-dose_errors")
    empty = doctor.post(items, {}, **HTMX)
    assert "Add at least one drug." in element(empty, "items-errors")
    weight = doctor.post(
        f"/prescriptions/{rx_id}/head/",
        {"draft-supply_kind": "normal", "draft-valid_days": "1", "draft-patient_weight_kg": "-3"},
        **HTMX,
    )
    assert weight.status_code == 400
    assert "0.5 to 300" in element(weight, "id_draft-patient_weight_kg_errors")
    assert not PrescriptionItem.all_objects.filter(prescription_id=rx_id).exists()


def test_refusals_are_red_and_have_no_override_form(doctor, clinic):
    rx_id = start(doctor, clinic)
    answer = doctor.post(f"/prescriptions/{rx_id}/items/", row_data("t-morphine-10", days="3"), **HTMX)
    body = html(answer)
    block = body[body.index('data-rule="controlled"') :]
    block = block[: block.index("</article>")]
    assert 'data-severity="refusal"' in block and "R11" in block and "override-form" not in block
    assert '<article class="finding refusal"' in body
    # The head changes the rules too: days over the emergency limit.
    head = doctor.post(
        f"/prescriptions/{rx_id}/head/",
        {"draft-supply_kind": "emergency", "draft-valid_days": "3", "draft-patient_weight_kg": ""},
        **HTMX,
    )
    assert head.status_code == 200 and 'data-rule="controlled"' in html(head)
    refused = doctor.post(f"/prescriptions/{rx_id}/sign/")
    assert refused.status_code == 409 and "R11" in element(refused, "sign-error")
    assert Prescription.objects.get(pk=rx_id).valid_days == 3


def test_without_htmx_the_forms_still_work(doctor, clinic):
    rx_id = start(doctor, clinic)
    saved = doctor.post(f"/prescriptions/{rx_id}/items/", row_data("t-amlodipine-5"))
    assert saved.status_code == 302 and saved["Location"] == f"/prescriptions/{rx_id}/edit/"
    page = doctor.get(saved["Location"])
    assert 'value="t-amlodipine-5"' in html(page) and 'id="all-clear"' in html(page)
    assert 'id="sign-button">' in html(page)
    # The computed quantity is left empty, so it follows the dose and days; a typed one is kept.
    assert 'name="items-0-quantity"' in html(page) and 'name="items-0-quantity" value' not in html(page)
    doctor.post(f"/prescriptions/{rx_id}/items/", {**row_data("t-amlodipine-5", days="7"), "items-0-quantity": "1"})
    assert PrescriptionItem.objects.get(prescription_id=rx_id).quantity == 1
    refused = doctor.post(f"/prescriptions/{rx_id}/items/", row_data("t-amlodipine-5", dose="-1"))
    assert refused.status_code == 400 and "The dose must be more than zero." in html(refused)


def test_the_same_form_posted_twice_starts_one_draft(doctor, clinic):
    page = doctor.get(f"/consultations/{clinic['consultation'].pk}/prescriptions/new/")
    key = re.search(r'name="draft-idempotency_key" value="([0-9a-f]{32})"', html(page))
    assert key is not None, "the form carries a fresh key"
    first = start(doctor, clinic, key.group(1))
    assert start(doctor, clinic, key.group(1)) == first  # the double click lands on the same draft
    assert Prescription.objects.count() == 1
    assert start(doctor, clinic) != first  # a newly rendered form is a new draft
    assert Prescription.objects.count() == 2


def test_advice_only_and_other_doctors_and_no_mfa(doctor, clinic, login_as, city_hospital):
    advice = follow_up_consultation(clinic["doctor"], clinic["patient_user"], clinic["patient"], first_visit=True)
    page = doctor.get(f"/consultations/{advice.pk}/prescriptions/new/")
    assert page.status_code == 200 and 'id="advice-only"' in html(page)
    refused = doctor.post(
        f"/consultations/{advice.pk}/prescriptions/new/",
        {"draft-supply_kind": "normal", "draft-valid_days": "1", "draft-idempotency_key": uuid.uuid4().hex},
    )
    assert refused.status_code == 409 and "(R1)" in html(refused)
    colleague = factories.doctor(city_hospital, legal_name="赵医生", admin=clinic["admin"])
    other = login_as(colleague.user, mfa=True)
    url = f"/consultations/{clinic['consultation'].pk}/prescriptions/new/"
    assert other.get(url).status_code == 404  # not a participant: the consultation is not confirmed to exist
    no_mfa = login_as(clinic["doctor"].user)
    response = no_mfa.get(url)
    assert response.status_code == 403 and 'data-code="mfa_required"' in html(response)
    assert not Prescription.objects.exists()


def test_doctor_list_shows_the_question_and_amends(doctor, clinic):
    rx = signed_prescription(clinic)
    actions.review_prescription(clinic["pharmacist"], rx.pk, "question", note="请确认剂量")
    page = doctor.get("/doctor/prescriptions/")
    assert page.status_code == 200 and "请确认剂量" in element(page, f"questioned-{rx.pk}")
    refused = doctor.post(f"/prescriptions/{rx.pk}/amend/", {"reason": ""})
    assert refused.status_code == 400 and "Give the reason" in html(refused)
    amended = doctor.post(f"/prescriptions/{rx.pk}/amend/", {"reason": "按药师意见调整"})
    new = Prescription.objects.get(replaces=rx)
    assert amended["Location"] == f"/prescriptions/{new.pk}/edit/"
    editor = doctor.get(amended["Location"])
    assert "按药师意见调整" in element(editor, "amendment-reason") and 'value="t-amlodipine-5"' in html(editor)
    cancelled = doctor.post(f"/prescriptions/{new.pk}/cancel/", {"reason": "改为线下"})
    assert cancelled.status_code == 302
    assert Prescription.objects.get(pk=new.pk).status == PrescriptionStatus.CANCELLED


def test_drug_search_fills_the_datalist(doctor):
    response = doctor.get("/prescriptions/drugs/", {"items-3-drug": "阿莫西林"})
    assert response.status_code == 200 and '<option value="t-amoxicillin-500">' in html(response)
    assert '<option value="t-morphine-10">' in html(doctor.get("/prescriptions/drugs/", {"q": "morphine"}))


# --- the pharmacist ------------------------------------------------------------------------------------
def test_pharmacist_reviews_from_the_queue(pharmacist, clinic):
    doctor_user = clinic["doctor"].user
    rx = actions.create_prescription(doctor_user, clinic["consultation"].pk, patient_weight_kg="70")
    actions.set_items(doctor_user, rx.pk, [ItemInput(drug="t-amoxicillin-500", dose="1", frequency="tid", days=5)])
    actions.override_warning(doctor_user, rx.pk, "allergy", "item:0", "皮试阴性，既往耐受")
    actions.sign_prescription(doctor_user, rx.pk)
    queue = pharmacist.get("/pharmacist/prescriptions/")
    assert queue.status_code == 200 and f'id="queue-{rx.pk}"' in html(queue)
    page = pharmacist.get(f"/pharmacist/prescriptions/{rx.pk}/")
    assert page.status_code == 200
    body = html(page)
    assert clinic["patient"].id_number_masked in element(page, "patient-id")
    assert "青霉素" in element(page, "patient-allergies") and "70.0 kg" in element(page, "patient-weight")
    assert "皮试阴性，既往耐受" in body and 'data-valid="true"' in body
    assert "I10" in element(page, "diagnoses")
    refused = pharmacist.post(f"/pharmacist/prescriptions/{rx.pk}/", {"decision": "reject"})
    assert refused.status_code == 400
    assert "请至少选择一个不通过的理由。" in element(refused, "id_reason_codes_errors")
    done = pharmacist.post(f"/pharmacist/prescriptions/{rx.pk}/", {"decision": "approve", "note": "合理"})
    assert done.status_code == 302 and done["Location"] == "/pharmacist/prescriptions/"
    assert Prescription.objects.get(pk=rx.pk).status == PrescriptionStatus.APPROVED


def test_expired_is_shown_and_cannot_be_approved(pharmacist, clinic):
    rx = signed_prescription(clinic)
    clock.advance(dt.timedelta(hours=12))
    queue = pharmacist.get("/pharmacist/prescriptions/")
    assert f'id="queue-{rx.pk}" data-expired="true"' in html(queue)
    page = pharmacist.get(f"/pharmacist/prescriptions/{rx.pk}/")
    assert 'id="expired-notice"' in html(page) and 'id="submit-review" disabled' in html(page)
    refused = pharmacist.post(f"/pharmacist/prescriptions/{rx.pk}/", {"decision": "approve"})
    assert refused.status_code == 409
    assert not PharmacistReview.objects.exists()
    assert Prescription.objects.get(pk=rx.pk).status == PrescriptionStatus.PENDING_REVIEW


def test_a_tampered_prescription_shows_as_invalid_to_the_pharmacist(pharmacist, clinic):
    rx = signed_prescription(clinic)
    PrescriptionItem.objects.filter(prescription=rx).update(dose=Decimal("3"))
    page = pharmacist.get(f"/pharmacist/prescriptions/{rx.pk}/")
    assert 'id="signature-check" data-valid="false" data-reason="content_changed"' in html(page)
    refused = pharmacist.post(f"/pharmacist/prescriptions/{rx.pk}/", {"decision": "approve"})
    assert refused.status_code == 409


# --- the patient's side ----------------------------------------------------------------------------------
def test_patient_sees_the_result_confirms_the_notice_and_otc_apart(patient, clinic):
    Drug.objects.filter(code="t-amlodipine-10").update(is_prescription=False)
    doctor_user = clinic["doctor"].user
    rx = actions.create_prescription(doctor_user, clinic["consultation"].pk)
    actions.set_items(
        doctor_user,
        rx.pk,
        [
            ItemInput(drug="t-simvastatin-20", dose="1", frequency="qn", days=7),
            ItemInput(drug="t-amlodipine-10", dose="1", frequency="qd", days=7),
        ],
    )
    assert patient.get(f"/prescriptions/{rx.pk}/").status_code == 404  # a draft is not shown
    actions.sign_prescription(doctor_user, rx.pk)
    actions.review_prescription(clinic["pharmacist"], rx.pk, "approve", note="合理")
    listing = patient.get("/prescriptions/")
    assert f'id="prescription-{rx.pk}" data-status="approved"' in html(listing)
    page = patient.get(f"/prescriptions/{rx.pk}/")
    body = html(page)
    assert page.status_code == 200 and 'data-status="approved"' in body
    prescription_drugs = body.split('id="rx-items"')[1].split("</ul>")[0]
    assert 'data-drug="t-simvastatin-20"' in prescription_drugs and "t-amlodipine-10" not in prescription_drugs
    otc = body.split('id="otc-items"')[1].split("</ul>")[0]
    assert "t-amlodipine-10" in otc and "t-simvastatin-20" not in otc
    assert 'id="confirm-notice"' in body and "合理" in body
    assert f"/verify/prescription/{rx.pk}/?hash={rx.canonical_hash}" in element(page, "verification-link")
    assert "<svg" in body.split('id="rx-qr"')[1][:400]
    confirmed = patient.post(f"/prescriptions/{rx.pk}/notice/")
    assert confirmed.status_code == 302
    assert 'id="notice-confirmed"' in html(patient.get(f"/prescriptions/{rx.pk}/"))
    assert Prescription.objects.get(pk=rx.pk).notice_confirmed_at == NOON


def test_expired_is_shown_to_the_patient(patient, clinic):
    rx = signed_prescription(clinic)
    clock.advance(dt.timedelta(days=1))
    page = patient.get(f"/prescriptions/{rx.pk}/")
    assert 'data-status="expired"' in html(page) and 'id="expired-notice"' in html(page)


# --- public verification ----------------------------------------------------------------------------------
def test_verification_page_is_public_and_private(clinic, client):
    rx = signed_prescription(clinic)
    page = client.get(f"/verify/prescription/{rx.pk}/?hash={rx.canonical_hash}")
    body = html(page)
    assert page.status_code == 200 and 'data-valid="true" data-reason="ok"' in body
    assert 'data-matches="true"' in body and rx.number in body and clinic["doctor"].licence_number in body
    for private in (
        clinic["patient"].legal_name,
        clinic["patient"].id_number_masked,
        "amlodipine",
        "氨氯地平",
        "青霉素",
    ):
        assert private not in body
    wrong = client.get(f"/verify/prescription/{rx.pk}/?hash={'ab' * 32}")
    assert 'data-matches="false"' in html(wrong)
    PrescriptionItem.objects.filter(prescription=rx).update(days=6)
    changed = client.get(f"/verify/prescription/{rx.pk}/")
    assert 'data-valid="false" data-reason="content_changed"' in html(changed)
    assert client.get("/verify/prescription/999999/").status_code == 404


# --- every page, every role ------------------------------------------------------------------------------
def _users(clinic, city_hospital):  # type: ignore[no-untyped-def]
    platform = factories.User.objects.filter(is_superuser=True).first()
    platform.is_mfa_verified = True
    reg = factories.staff_user()
    account_actions.grant_role(platform, reg, Role.REGULATOR)
    colleague = factories.doctor(city_hospital, legal_name="赵医生", admin=clinic["admin"])
    return {
        "anonymous": None,
        "patient": (clinic["patient_user"], False),
        "other_patient": (factories.patient_user(), False),
        "doctor": (clinic["doctor"].user, True),
        "doctor_no_mfa": (clinic["doctor"].user, False),
        "other_doctor": (colleague.user, True),
        "pharmacist": (clinic["pharmacist"], True),
        "pharmacist_no_mfa": (clinic["pharmacist"], False),
        "hospital_admin": (clinic["admin"], True),
        "regulator": (reg, True),
    }


ROLES = [
    "anonymous",
    "patient",
    "other_patient",
    "doctor",
    "doctor_no_mfa",
    "other_doctor",
    "pharmacist",
    "pharmacist_no_mfa",
    "hospital_admin",
    "regulator",
]


def expect(default: int, **by_role: int) -> dict[str, int]:
    expected = dict.fromkeys(ROLES, default)
    expected["anonymous"] = 302  # to the login page
    expected.update(by_role)
    return expected


PAGES = [
    ("/prescriptions/", expect(200)),
    (
        "/prescriptions/{rx}/",
        expect(404, patient=200, doctor=200, doctor_no_mfa=403, pharmacist=200, pharmacist_no_mfa=403),
    ),
    (
        "/prescriptions/{rx}/pdf/",
        expect(404, patient=200, doctor=200, doctor_no_mfa=403, pharmacist=200, pharmacist_no_mfa=403),
    ),
    ("/prescriptions/{draft}/edit/", expect(404, doctor=200, doctor_no_mfa=403)),
    ("/consultations/{consultation}/prescriptions/new/", expect(404, patient=403, doctor=200, doctor_no_mfa=403)),
    ("/doctor/prescriptions/", expect(403, doctor=200, other_doctor=200)),
    ("/pharmacist/prescriptions/", expect(403, pharmacist=200)),
    ("/pharmacist/prescriptions/{rx}/", expect(403, pharmacist=200, pharmacist_no_mfa=403)),
    ("/regulator/prescribing-statistics/", expect(403, regulator=200)),
    ("/verify/prescription/{rx}/", dict.fromkeys(ROLES, 200)),
    ("/prescriptions/drugs/?q=amlo", expect(200)),
]


@pytest.mark.parametrize(("path", "expected"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_for_every_role(clinic, city_hospital, login_as, path, expected):
    rx = signed_prescription(clinic)
    draft = actions.create_prescription(clinic["doctor"].user, clinic["consultation"].pk)
    url = path.format(rx=rx.pk, draft=draft.pk, consultation=clinic["consultation"].pk)
    users = _users(clinic, city_hospital)
    for role in ROLES:
        user = users[role]
        client = Client() if user is None else login_as(user[0], mfa=user[1])
        response = client.get(url)
        assert response.status_code == expected[role], (role, response.status_code)
        if role == "anonymous" and response.status_code == 302:
            assert response["Location"].startswith("/accounts/login/")
        if role in ("other_patient", "other_doctor", "hospital_admin") and response.status_code == 200:
            assert clinic["patient"].legal_name not in html(response), role
