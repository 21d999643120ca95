"""The visit record as a PDF (R21), built with reportlab.

Chinese text uses Adobe's built-in CID font ``STSong-Light`` (``UnicodeCIDFont``): PDF readers supply
the glyphs, so no font file ships with the project. The labels are bilingual (Chinese / English)
whatever the reader's language, as on a paper outpatient record; the content hash is printed in a
Latin font so that it can be compared with the record's hash character by character.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from nethospital.consultations.choices import ConsultationChannel, ConsultationKind, VisitType
from nethospital.consultations.models import VisitRecord

CJK_FONT = "STSong-Light"
LATIN_MONO = "Courier"

SECTIONS: tuple[tuple[str, str], ...] = (
    ("chief_complaint", "主诉 Chief complaint"),
    ("present_illness", "现病史 Present illness"),
    ("past_history", "既往史 Past history"),
    ("allergies", "过敏史 Allergies"),
    ("findings", "患者报告的检查结果 Findings reported"),
    ("advice", "处理意见 Advice"),
    ("followup_plan", "随访计划 Follow-up plan"),
)
VISIT_TYPES: dict[str, str] = {
    VisitType.FOLLOW_UP: "复诊 Follow-up visit",
    VisitType.ADVICE_ONLY: "仅咨询建议（不作诊断）Advice only (no diagnosis online)",
    VisitType.UNDECIDED: "未确认 Not confirmed",
}
KINDS: dict[str, str] = {
    ConsultationKind.BOOKED: "预约问诊 Booked visit",
    ConsultationKind.QUEUE: "科室排队 Department queue",
    ConsultationKind.ASK: "图文咨询 Ask a doctor",
}
CHANNELS: dict[str, str] = {ConsultationChannel.TEXT: "图文 Text", ConsultationChannel.VIDEO: "视频 Video"}
SEXES: dict[str, str] = {"M": "男 Male", "F": "女 Female"}


def _register_fonts() -> None:
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=CJK_FONT, fontSize=10.5, leading=15, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=16, leading=22, alignment=1, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=10, alignment=1, textColor=colors.grey),
        "heading": ParagraphStyle(
            "heading", parent=base, fontSize=11, leading=16, spaceBefore=6, textColor=colors.navy
        ),
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8.5, leading=12, textColor=colors.grey),
        "hash": ParagraphStyle("hash", fontName=LATIN_MONO, fontSize=8, leading=11, wordWrap="CJK"),
    }


def _text(value: str) -> str:
    """Reportlab's paragraphs read a little markup: escape the content, keep the line breaks."""
    return escape(value or "—").replace("\n", "<br/>")


def render_record(record: VisitRecord) -> bytes:
    """The PDF of one version of a visit record."""
    _register_fonts()
    styles = _styles()
    consultation = record.consultation
    patient = record.patient
    practitioner = record.practitioner
    hospital = record.hospital
    signed = timezone.localtime(record.signed_at)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Visit record {consultation.pk} v{record.version}",
        author=f"{hospital.name_en} / {practitioner.legal_name}",
        subject=f"sha256 {record.content_hash}",
        creator="Net Hospital",
    )
    story: list[object] = [
        Paragraph(_text(hospital.name_zh), styles["title"]),
        Paragraph(_text(f"{hospital.name_en} · 互联网诊疗记录 Online visit record"), styles["subtitle"]),
        Spacer(1, 5 * mm),
    ]
    department = consultation.department
    age = patient.age_on(signed.date())
    visit = f"{KINDS.get(consultation.kind, consultation.kind)} · {CHANNELS.get(consultation.channel, '')}"
    facts = [
        ("患者 Patient", f"{patient.legal_name}  {SEXES.get(patient.sex, patient.sex)}  {age} 岁 years"),
        ("身份证号 ID number", patient.id_number_masked),
        ("医生 Doctor", f"{practitioner.legal_name}  {practitioner.get_title_display()}"),
        ("科室 Department", f"{department.name_zh} {department.name_en}" if department else "—"),
        ("就诊方式 Visit", visit),
        ("类型 Visit type", VISIT_TYPES.get(consultation.visit_type, consultation.visit_type)),
        ("签署时间 Signed", signed.strftime("%Y-%m-%d %H:%M %Z")),
        ("版本 Version", f"{record.version}  (consultation #{consultation.pk}, record #{record.pk})"),
    ]
    if record.replaces_id:
        facts.append(("更正原因 Correction", record.correction_reason))
    table = Table(
        [[Paragraph(_text(label), styles["small"]), Paragraph(_text(value), styles["body"])] for label, value in facts],
        colWidths=[38 * mm, None],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    story += [table, Spacer(1, 4 * mm)]
    for name, label in SECTIONS:
        story.append(Paragraph(_text(label), styles["heading"]))
        story.append(Paragraph(_text(getattr(record, name)), styles["body"]))
    story.append(Paragraph(_text("诊断 Diagnoses (ICD-10)"), styles["heading"]))
    rows = list(record.diagnosis_rows.select_related("code").order_by("position"))
    if rows:
        for row in rows:
            story.append(Paragraph(_text(f"{row.code.code}  {row.code.name_zh}  {row.code.name_en}"), styles["body"]))
    elif consultation.visit_type == VisitType.ADVICE_ONLY:
        story.append(
            Paragraph(
                _text("本次为咨询建议，不作线上诊断（首诊或无既往诊断证明）。 "
                      "Advice only: no diagnosis is made online at a first visit or without proof of an earlier one."),
                styles["body"],
            )
        )  # fmt: skip
    else:
        story.append(Paragraph(_text("—"), styles["body"]))
    story += [
        Spacer(1, 6 * mm),
        Paragraph(_text("内容哈希 Content hash (SHA-256)"), styles["small"]),
        Paragraph(record.content_hash, styles["hash"]),
        Spacer(1, 2 * mm),
        Paragraph(
            _text(
                f"电子签名 Signed electronically by {practitioner.legal_name}. "
                f"保存至 Kept until {record.retain_until.isoformat()} (R21)."
            ),
            styles["small"],
        ),
    ]
    document.build(story)
    return buffer.getvalue()
