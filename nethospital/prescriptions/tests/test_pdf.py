"""The printable prescription: a PDF with the Chinese CID font, the items, the signature block and
the QR code of the verification URL (which carries the signed hash)."""

from __future__ import annotations

import re

import pytest

from nethospital.core import clock
from nethospital.prescriptions import actions, pdf, presentation
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.tests.conftest import NOON

pytestmark = pytest.mark.django_db
ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _literal(content: bytes, start: int) -> tuple[bytes, int]:
    """The PDF literal string opening at ``content[start] == b"("``, unescaped, and where it ends."""
    out = bytearray()
    i = start + 1
    while i < len(content):
        char = content[i : i + 1]
        if char == b"\\":
            following = content[i + 1 : i + 2]
            if following.isdigit():
                digits = re.match(rb"[0-7]{1,3}", content[i + 1 : i + 4])
                assert digits is not None
                out.append(int(digits.group(), 8))
                i += 1 + len(digits.group())
                continue
            out += ESCAPES.get(following, following)
            i += 2
            continue
        if char == b")":
            return bytes(out), i + 1
        out += char
        i += 1
    return bytes(out), i


def page_text(content: bytes) -> str:
    """The text drawn on the page: each ``(...) Tj`` string unescaped; Chinese-font strings are
    UCS-2 (big-endian) in the STSong-Light CID font, the others plain."""
    texts = []
    position = content.find(b"(")
    while position != -1:
        data, end = _literal(content, position)
        if content[end : end + 3] == b" Tj":
            if len(data) % 2 == 0 and (b"\x00" in data or any(b >= 0x80 for b in data)):
                texts.append(data.decode("utf-16-be", errors="replace"))
            else:
                texts.append(data.decode("latin-1"))
            position = content.find(b"(", end)
        else:
            position = content.find(b"(", position + 1)
    return "\n".join(texts)


@pytest.fixture
def approved(clinic):  # type: ignore[no-untyped-def]
    with clock.frozen(NOON):
        doctor_user = clinic["doctor"].user
        rx = actions.create_prescription(doctor_user, clinic["consultation"].pk, patient_weight_kg="70")
        actions.set_items(doctor_user, rx.pk, [ItemInput(drug="t-amlodipine-5", dose="1", frequency="qd", days=7)])
        rx = actions.sign_prescription(doctor_user, rx.pk)
        actions.review_prescription(clinic["pharmacist"], rx.pk, "approve")
        yield rx


def test_pdf_carries_the_verification_url_as_qr_code_link_and_text(clinic, approved, login_as, monkeypatch):
    encoded: list[str] = []
    real_matrix = presentation.qr_matrix

    def recording_matrix(text: str) -> list[list[bool]]:
        encoded.append(text)
        return real_matrix(text)

    monkeypatch.setattr(presentation, "qr_matrix", recording_matrix)
    with clock.frozen(NOON):
        response = login_as(clinic["patient_user"]).get(f"/prescriptions/{approved.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    content = response.content
    assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")
    url = f"http://testserver/verify/prescription/{approved.pk}/?hash={approved.canonical_hash}"
    # The QR code was made for exactly this URL, the URL is the link over it, and its address is printed.
    assert encoded == [url]
    assert f"/URI ({url})".encode() in content
    assert f"(http://testserver/verify/prescription/{approved.pk}/) Tj".encode() in content
    half = len(approved.canonical_hash) // 2
    assert f"({approved.canonical_hash[:half]}) Tj".encode() in content
    assert f"({approved.canonical_hash[half:]}) Tj".encode() in content
    assert b"/BaseFont /STSong-Light" in content
    assert f"(key {approved.signing_key.key_id}) Tj".encode() in content
    text = page_text(content)
    assert "处方笺 Prescription" in text and "姓名 Name: 张伟" in text
    assert "1. 氨氯地平 5 mg 片剂 tablet" in text and "每日一次 (qd)" in text
    assert "药师审核 Pharmacist review: 通过 (approve)" in text
    # The QR code is drawn as filled squares: many "re" operators in the page stream.
    assert len(re.findall(rb" re\b", content)) > 100


def test_the_pdf_is_for_those_who_may_see_the_prescription(clinic, approved, login_as, client):
    from nethospital.testing import factories

    with clock.frozen(NOON):
        assert login_as(factories.patient_user()).get(f"/prescriptions/{approved.pk}/pdf/").status_code == 404
        assert login_as(clinic["doctor"].user, mfa=True).get(f"/prescriptions/{approved.pk}/pdf/").status_code == 200
        anonymous = client.get(f"/prescriptions/{approved.pk}/pdf/")
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
        draft = actions.create_prescription(clinic["doctor"].user, clinic["consultation"].pk)
        unsigned = login_as(clinic["doctor"].user, mfa=True).get(f"/prescriptions/{draft.pk}/pdf/")
        assert unsigned.status_code == 404


def test_render_directly_lists_otc_drugs_apart(clinic, approved):
    from nethospital.prescriptions.models import Drug

    Drug.objects.filter(code="t-amlodipine-5").update(is_prescription=False)
    approved.refresh_from_db()
    content = pdf.render_prescription(approved, "https://example.org/verify/prescription/1/?hash=x")
    assert content.startswith(b"%PDF-")
    assert b"(https://example.org/verify/prescription/1/) Tj" in content
    text = page_text(content)
    assert "非处方药 OTC (non-prescription) drugs" in text
    assert "1. 氨氯地平 5 mg 片剂 tablet [OTC]" in text
