"""Demo consultations, made through the real actions (so every rule and audit entry is real):

- patient01 and Dr 陈志远 (cardiology): a completed hypertension follow-up with a signed visit record
  (I10), a few messages and a review waiting for the hospital's moderation;
- patient02 and Dr 王建国 (endocrinology): a text chat in progress, confirmed as a follow-up;
- patient04: waiting in the city hospital's cardiology queue (a first visit: advice only);
- patient06: a question to Dr 林晓燕 waiting to be accepted (it lapses after
  NETHOSPITAL_ASK_ACCEPT_HOURS if nobody accepts it).

Idempotent: a scenario whose patient already has a consultation for that condition is skipped.
Doctors act as in a trusted set-up script (``is_mfa_verified`` set on the object), as the other
demo seeds do; everything else is checked as in production.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from nethospital.accounts.models import Patient, User
from nethospital.consultations import actions
from nethospital.consultations.actions import Declaration, RecordInput
from nethospital.consultations.choices import ConsultationChannel, ProofKind, VisitType
from nethospital.consultations.models import Consultation
from nethospital.directory.models import Practitioner

EMAIL_DOMAIN = "nethospital.example"

HYPERTENSION = Declaration(
    condition="高血压复诊 Hypertension follow-up",
    first_visit=False,
    proof_kind=ProofKind.OTHER_HOSPITAL,
    proof_hospital="青溪县人民医院 Qingxi County Hospital",
    proof_summary="2024-05 诊断：原发性高血压 (I10)，服用氨氯地平 5 mg qd。",
)
DIABETES = Declaration(
    condition="2型糖尿病复诊 Type 2 diabetes follow-up",
    first_visit=False,
    proof_kind=ProofKind.OTHER_HOSPITAL,
    proof_hospital="杭州市第一人民医院",
    proof_summary="2023-11 诊断：2型糖尿病 (E11.9)，二甲双胍 0.5 g bid。",
)
CHEST = Declaration(condition="胸闷两周 Chest tightness for two weeks", first_visit=True)
PALPITATIONS = Declaration(condition="心慌 Palpitations", first_visit=True)


def _email(local: str) -> str:
    return f"{local}@{EMAIL_DOMAIN}"


def _user(local: str) -> User | None:
    return User.objects.filter(email=_email(local), is_active=True).first()


def _patient(local: str) -> tuple[User, Patient] | None:
    user = _user(local)
    patient = Patient.objects.filter(account=user).first() if user else None
    return (user, patient) if user and patient else None


def _doctor(local: str) -> Practitioner | None:
    practitioner = Practitioner.objects.select_related("user").filter(user__email=_email(local)).first()
    if practitioner is not None:
        practitioner.user.is_mfa_verified = True  # a trusted set-up step, as if they had passed MFA
    return practitioner


def _exists(patient: Patient, declaration: Declaration) -> bool:
    return Consultation.objects.filter(patient=patient, declared_condition=declaration.condition).exists()


def _completed_follow_up() -> bool:
    found, doctor = _patient("patient01"), _doctor("chen.zhiyuan")
    if found is None or doctor is None or _exists(found[1], HYPERTENSION):
        return False
    user, patient = found
    consultation = actions.ask_doctor(
        user, patient.pk, doctor.pk, HYPERTENSION, "陈医生您好，最近早上血压 145/90 左右，药量需要调整吗？", "demo-q1"
    )
    actions.accept_request(doctor.user, consultation.pk)
    actions.post_message(doctor.user, consultation.pk, "demo-d1", "您好。晚上的血压多少？有没有头晕、胸闷？")
    actions.post_message(user, consultation.pk, "demo-p1", "晚上 130/85 左右，没有头晕。")
    actions.confirm_visit_type(doctor.user, consultation.pk, VisitType.FOLLOW_UP, "县医院诊断记录齐全")
    actions.sign_visit_record(
        doctor.user,
        consultation.pk,
        RecordInput(
            chief_complaint="高血压复诊，晨起血压偏高两周",
            present_illness="服氨氯地平 5 mg qd，晨起血压 145/90 mmHg，晚间 130/85 mmHg，无头晕胸闷。",
            past_history="原发性高血压 2 年。",
            allergies="青霉素",
            findings="家庭血压记录（患者自述）",
            advice="氨氯地平改为晚间服用；低盐饮食，每日监测早晚血压。",
            followup_plan="两周后复诊，带血压记录。",
            diagnosis_codes=["I10"],
        ),
    )
    actions.complete_consultation(doctor.user, consultation.pk)
    actions.submit_review(user, consultation.pk, 5, "陈医生很耐心，解释清楚。")
    return True


def _active_chat() -> bool:
    found, doctor = _patient("patient02"), _doctor("wang.jianguo")
    if found is None or doctor is None or _exists(found[1], DIABETES):
        return False
    user, patient = found
    consultation = actions.ask_doctor(
        user, patient.pk, doctor.pk, DIABETES, "王医生，空腹血糖最近 7.8，需要加药吗？", "demo-q2"
    )
    actions.accept_request(doctor.user, consultation.pk)
    actions.confirm_visit_type(doctor.user, consultation.pk, VisitType.FOLLOW_UP)
    actions.post_message(doctor.user, consultation.pk, "demo-d2", "请问最近的糖化血红蛋白是多少？饮食有变化吗？")
    actions.post_message(user, consultation.pk, "demo-p2", "上个月 7.1%。过年期间吃得多了一些。")
    return True


def _queued() -> bool:
    found, doctor = _patient("patient04"), _doctor("chen.zhiyuan")
    if found is None or doctor is None or doctor.department_id is None or _exists(found[1], CHEST):
        return False
    user, patient = found
    actions.join_queue(user, patient.pk, doctor.department_id, CHEST, channel=ConsultationChannel.VIDEO)
    return True


def _request_to_accept() -> bool:
    found, doctor = _patient("patient06"), _doctor("lin.xiaoyan")
    if found is None or doctor is None or _exists(found[1], PALPITATIONS):
        return False
    user, patient = found
    actions.ask_doctor(
        user, patient.pk, doctor.pk, PALPITATIONS, "林医生，晚上偶尔心慌，持续几分钟，需要做什么检查？", "demo-q3"
    )
    return True


SCENARIOS: list[tuple[str, Callable[[], bool]]] = [
    ("completed follow-up with a signed record and a review", _completed_follow_up),
    ("text chat in progress", _active_chat),
    ("patient waiting in the cardiology queue", _queued),
    ("question waiting to be accepted", _request_to_accept),
]


def seed_consultations(stdout: IO[str] | None = None) -> int:
    """Create the demo consultations that are missing; returns how many were created."""
    created = 0
    for label, scenario in SCENARIOS:
        if scenario():
            created += 1
            if stdout is not None:
                stdout.write(f"Demo consultation: {label}.\n")
    return created
