"""The visit record as a PDF: a real PDF, with the record's text (Chinese in the built-in CID font),
the diagnoses, the masked identity number and the content hash; each version downloadable; only
for the consultation's participants.

The text is read back without a PDF library: the page streams are ASCII85 + Flate encoded by
reportlab; the strings in them are Latin-1 (Courier, Helvetica) or UCS-2 big-endian (STSong-Light)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import zlib
from zoneinfo import ZoneInfo

import pytest

from nethospital.consultations import actions, pdf
from nethospital.consultations.actions import Declaration, RecordInput
from nethospital.consultations.choices import ProofKind, VisitType
from nethospital.consultations.models import VisitRecord
from nethospital.core import clock
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)

FOLLOW_UP = Declaration(
    condition="高血压复诊",
    first_visit=False,
    proof_kind=ProofKind.OTHER_HOSPITAL,
    proof_hospital="县人民医院",
    proof_summary="原发性高血压",
)
RECORD = RecordInput(
    chief_complaint="血压控制复诊",
    present_illness="服药后血压 130/85 <b>&amp;",
    advice="继续服药，低盐饮食",
    diagnosis_codes=["I10", "E78.5"],
)


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(NOON, all_threads=True):
        yield


@pytest.fixture
def signed(city_hospital, internet_hospital):
    doctor = factories.doctor(city_hospital, legal_name="王心")
    doctor.user.is_mfa_verified = True
    user = factories.patient_user(legal_name="张伟")
    patient = factories.patient_of(user)
    consultation = actions.join_queue(user, patient.pk, doctor.department_id, FOLLOW_UP)
    actions.pick_next(doctor.user)
    actions.confirm_visit_type(doctor.user, consultation.pk, VisitType.FOLLOW_UP)
    record = actions.sign_visit_record(doctor.user, consultation.pk, RECORD)
    return {"doctor": doctor, "user": user, "patient": patient, "consultation": consultation, "record": record}


def _literal_strings(stream: bytes) -> list[bytes]:
    """The (…) strings of a content stream, with the PDF escapes undone."""
    strings = []
    for match in re.finditer(rb"\((?:\\.|[^\\)])*\)", stream, re.S):
        raw = match.group(0)[1:-1]
        out = bytearray()
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == 0x5C and i + 1 < len(raw):  # backslash
                nxt = raw[i + 1]
                octal = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
                if octal:
                    out.append(int(octal.group(0), 8) & 0xFF)
                    i += 1 + len(octal.group(0))
                    continue
                out.append({ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        strings.append(bytes(out))
    return strings


def text_of(document: bytes) -> str:
    """All text drawn on the pages, as one string: strings shown in the CID font are UCS-2."""
    cid_fonts = set(re.findall(rb"/BaseFont /STSong-Light /DescendantFonts.*?/Name /(F\d+)", document, re.S))
    pieces: list[str] = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", document, re.S):
        data = match.group(1).strip()
        if data.endswith(b"~>"):
            data = zlib.decompress(base64.a85decode(data[:-2]))
        font = b""
        for token in re.finditer(rb"/(F\d+) [\d.]+ Tf|\((?:\\.|[^\\)])*\)", data, re.S):
            if token.group(1):
                font = token.group(1)
                continue
            string = _literal_strings(token.group(0))[0]
            pieces.append(string.decode("utf-16-be", "replace") if font in cid_fonts else string.decode("latin-1"))
    return "".join(pieces)


def test_the_pdf_is_a_pdf_with_the_record_text_the_diagnoses_and_the_hash(signed):
    record = VisitRecord.objects.select_related("consultation", "patient", "practitioner", "hospital").get()
    document = pdf.render_record(record)
    assert document.startswith(b"%PDF-")
    assert document.rstrip().endswith(b"%%EOF")
    text = text_of(document)
    assert record.content_hash in text.replace(" ", "")
    for expected in (
        "血压控制复诊",
        "继续服药",
        "低盐饮食",
        "I10",
        "原发性高血压",
        "E78.5",
        "高脂血症",
        "王心",
        "张伟",
    ):
        assert expected in text, expected
    assert "130/85 <b>&amp;" in text  # content is text, never markup
    assert signed["patient"].id_number_masked in text
    assert "北京协和医院" in text
    assert f"sha256 {record.content_hash}".encode() in document  # and in the document's metadata


def test_an_advice_only_record_says_so_instead_of_a_diagnosis(city_hospital, internet_hospital):
    doctor = factories.doctor(city_hospital)
    doctor.user.is_mfa_verified = True
    user = factories.patient_user()
    consultation = actions.join_queue(
        user, factories.patient_of(user).pk, doctor.department_id, Declaration(condition="胸闷", first_visit=True)
    )
    actions.pick_next(doctor.user)
    record = actions.sign_visit_record(doctor.user, consultation.pk, RecordInput(chief_complaint="胸闷", advice="面诊"))
    text = text_of(pdf.render_record(VisitRecord.objects.get(pk=record.pk)))
    assert "不作线上诊断" in text
    assert "Advice only" in text


def test_the_pdf_download_gives_each_version_to_participants_only(signed, login_as):
    consultation = signed["consultation"]
    doctor_user = signed["doctor"].user
    corrected = actions.correct_visit_record(
        doctor_user,
        signed["record"].pk,
        RecordInput(chief_complaint="血压复诊（更正）", diagnosis_codes=["I10"]),
        "更正主诉",
    )
    client = login_as(signed["user"])
    current = client.get(f"/consultations/{consultation.pk}/record.pdf")
    assert current.status_code == 200
    assert current["Content-Type"] == "application/pdf"
    assert current["Content-Disposition"] == f'attachment; filename="visit-record-{consultation.pk}-v2.pdf"'
    assert current["X-Content-Type-Options"] == "nosniff"
    assert corrected.content_hash in text_of(current.content).replace(" ", "")
    assert "更正主诉" in text_of(current.content)
    first = client.get(f"/consultations/{consultation.pk}/record.pdf?version=1")
    assert signed["record"].content_hash in text_of(first.content).replace(" ", "")
    assert client.get(f"/consultations/{consultation.pk}/record.pdf?version=9").status_code == 404
    assert client.get(f"/consultations/{consultation.pk}/record.pdf?version=abc").status_code == 404
    outsider = login_as(factories.patient_user(legal_name="孙丽"))
    assert outsider.get(f"/consultations/{consultation.pk}/record.pdf").status_code == 404
