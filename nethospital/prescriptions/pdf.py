"""The printable prescription (处方笺): an A5 page in Chinese and English, with the QR code of the
public verification URL (which carries the signed hash) so that anyone holding the paper can check
it against the system (R10). Drawn with reportlab; Chinese text in the Adobe CID font STSong-Light
(no font file to ship); the QR code made by the ``qrcode`` package and drawn as vector squares."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

from django.utils import timezone, translation
from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from nethospital.core import clock
from nethospital.prescriptions import presentation
from nethospital.prescriptions.choices import DosageForm, ReviewDecision, Route, SupplyKind
from nethospital.prescriptions.models import Prescription, PrescriptionItem

CJK = "STSong-Light"
LATIN = "Helvetica"
MARGIN = 12 * mm
QR_SIZE = 30 * mm
STATUS_ZH = {
    "draft": "草稿",
    "pending_review": "待药师审核",
    "questioned": "退回医生",
    "approved": "审核通过",
    "rejected": "审核未通过",
    "cancelled": "已作废",
    "superseded": "已被修改版本替代",
    "dispensed": "已调配（已使用）",
    "expired": "已过期",
}
DECISION_ZH: dict[str, str] = {
    ReviewDecision.APPROVE: "通过",
    ReviewDecision.REJECT: "不通过",
    ReviewDecision.QUESTION: "退回医生",
}
FREQUENCY_ZH = {
    "qd": "每日一次",
    "bid": "每日两次",
    "tid": "每日三次",
    "qid": "每日四次",
    "qn": "每晚一次",
    "q8h": "每8小时一次",
    "q12h": "每12小时一次",
    "qw": "每周一次",
}
SEX_ZH = {"M": "男", "F": "女"}


def _register_fonts() -> None:
    if CJK not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK))


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _when(moment) -> str:  # type: ignore[no-untyped-def]
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "—"


class _Page:
    """A cursor down an A5 page that wraps text to the width."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.width, self.height = A5
        self.y = self.height - MARGIN

    def text(self, text: str, *, size: float = 9, font: str = CJK, indent: float = 0, gap: float = 1.5) -> None:
        width = self.width - 2 * MARGIN - indent
        for line in simpleSplit(text, font, size, width) or [""]:
            self.y -= size + gap
            self.canvas.setFont(font, size)
            self.canvas.drawString(MARGIN + indent, self.y, line)

    def rule(self, space: float = 3) -> None:
        self.y -= space
        self.canvas.setLineWidth(0.5)
        self.canvas.line(MARGIN, self.y, self.width - MARGIN, self.y)
        self.y -= space

    def space(self, amount: float = 3) -> None:
        self.y -= amount


def _both(label: object) -> str:
    """A choice label in Chinese and English ("口服 by mouth"), once if they are the same."""
    with translation.override("zh-hans"):
        zh = str(label)
    with translation.override("en"):
        en = str(label)
    return zh if zh == en else f"{zh} {en}"


def _item_lines(item: PrescriptionItem) -> tuple[str, str]:
    drug = item.drug
    form = _both(DosageForm(drug.dosage_form).label) if drug.dosage_form in DosageForm.values else drug.dosage_form
    route = _both(Route(item.route).label) if item.route in Route.values else item.route
    title = f"{drug.generic_name_zh}  {drug.strength}  {form}"
    usage = (
        f"{drug.generic_name_en}; 每次 {_number(item.dose)} {drug.unit}; "
        f"{FREQUENCY_ZH.get(item.frequency, item.frequency)} ({item.frequency}); {route}; "
        f"{item.days} 天 days; 共 {item.quantity} 盒 packs × {drug.pack_size} {drug.unit}"
    )
    if item.notes:
        usage += f"; {item.notes}"
    return title, usage


def _draw_qr(canvas: Canvas, text: str, x: float, y: float, size: float) -> None:
    matrix = presentation.qr_matrix(text)
    count = len(matrix)
    module = size / count
    path = canvas.beginPath()
    for row_index, row in enumerate(matrix):
        for column_index, dark in enumerate(row):
            if dark:
                path.rect(x + column_index * module, y + size - (row_index + 1) * module, module, module)
    canvas.setFillGray(0)
    canvas.drawPath(path, stroke=0, fill=1)


def render_prescription(prescription: Prescription, verification_url: str) -> bytes:
    """The PDF bytes. Uncompressed page streams: the verification URL and hash are plain text in it
    (and the URL is also a link annotation), which keeps the paper checkable by simple tools."""
    _register_fonts()
    buffer = BytesIO()
    canvas = Canvas(buffer, pagesize=A5, pageCompression=0, invariant=1)
    canvas.setTitle(f"处方笺 Prescription {prescription.number} v{prescription.version}")
    canvas.setAuthor(str(prescription.hospital))
    page = _Page(canvas)
    patient = prescription.patient
    shown = presentation.display_status(prescription)

    page.text(str(prescription.hospital), size=13)
    page.text("处方笺  Prescription", size=11)
    page.text(
        f"No. {prescription.number}  v{prescription.version}   状态 Status: {STATUS_ZH.get(shown, shown)} ({shown})",
        size=8,
    )
    page.rule()
    weight = f"  体重 Weight: {_number(prescription.patient_weight_kg)} kg" if prescription.patient_weight_kg else ""
    page.text(
        f"姓名 Name: {patient.legal_name}   性别 Sex: {SEX_ZH.get(patient.sex, patient.sex)}   "
        f"年龄 Age: {patient.age_on(clock.today())}{weight}"
    )
    page.text(f"身份证号 ID: {patient.id_number_masked}")
    diagnoses = "; ".join(
        f"{d['code']} {d['name_zh'] or d['name_en']}" for d in presentation.diagnoses(prescription.diagnosis_codes)
    )
    page.text(f"诊断 Diagnosis: {diagnoses or '—'}")
    supply = _both(SupplyKind(prescription.supply_kind).label)
    reason = f"; {prescription.supply_reason}" if prescription.supply_reason else ""
    page.text(f"用药类型 Supply: {supply}{reason}")
    page.rule()

    items = presentation.live_items(prescription)
    rx_items, otc_items = presentation.split_items(items)
    page.text("Rp. 处方药 Prescription drugs", size=11)
    for number, item in enumerate(rx_items, start=1):
        title, usage = _item_lines(item)
        page.text(f"{number}. {title}", size=10)
        page.text(usage, size=8, indent=4 * mm)
    if otc_items:
        page.space()
        page.text("非处方药 OTC (non-prescription) drugs", size=10)
        for number, item in enumerate(otc_items, start=1):
            title, usage = _item_lines(item)
            page.text(f"{number}. {title}  [OTC]", size=10)
            page.text(usage, size=8, indent=4 * mm)
    if prescription.notes:
        page.text(f"备注 Notes: {prescription.notes}", size=8)
    page.rule()

    doctor = prescription.practitioner
    page.text(f"医师 Doctor: {doctor.legal_name}   执业证号 Licence: {doctor.licence_number}")
    page.text(f"开具 Issued: {_when(prescription.signed_at)}   有效至 Valid until: {_when(prescription.valid_until)}")
    review = presentation.latest_review(prescription)
    if review is not None:
        page.text(
            f"药师审核 Pharmacist review: {DECISION_ZH.get(review.decision, review.decision)} ({review.decision}); "
            f"{review.pharmacist}, {_when(review.reviewed_at)}"
        )
    else:
        page.text("药师审核 Pharmacist review: 待审核 pending")
    page.text("处方药须凭处方在药师指导下购买和使用。", size=8)
    page.text("Prescription drugs are bought and used on a prescription under a pharmacist's guidance.", size=7)

    # The signature block at the foot: QR code left, key and hash right.
    qr_y = MARGIN
    _draw_qr(canvas, verification_url, MARGIN, qr_y, QR_SIZE)
    canvas.linkURL(verification_url, (MARGIN, qr_y, MARGIN + QR_SIZE, qr_y + QR_SIZE), relative=0)
    text_x = MARGIN + QR_SIZE + 4 * mm
    key_id = prescription.signing_key.key_id if prescription.signing_key else "—"
    lines = [
        (CJK, 8, "电子签名 Electronic signature (Ed25519)"),
        (LATIN, 7, f"key {key_id}"),
        (LATIN, 7, "SHA-256"),
        (LATIN, 6.5, prescription.canonical_hash[:32]),
        (LATIN, 6.5, prescription.canonical_hash[32:]),
        (CJK, 8, "扫码或访问以下网址验证 Scan or open to verify:"),
    ]
    # The address without its query fits one line; the hash it carries is printed just above.
    lines.append((LATIN, 6.5, verification_url.split("?", 1)[0]))
    y = qr_y + QR_SIZE - 8
    for font, size, text in lines:
        canvas.setFont(font, size)
        canvas.drawString(text_x, y, text)
        y -= size + 2
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
