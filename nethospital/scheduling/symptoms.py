"""A small curated bilingual table from common symptom words to the specialties that see them.

It helps a patient who knows what hurts but not which department to choose. It is advice for
finding a doctor, not triage; the doctor decides at the visit.
"""

from __future__ import annotations

# (Chinese words, English words) -> specialty codes, most relevant first.
SYMPTOMS: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = [
    (
        ("头痛", "头晕", "偏头痛", "失眠", "手脚麻木"),
        ("headache", "dizziness", "migraine", "insomnia", "numbness"),
        ("neurology",),
    ),
    (
        ("胸痛", "胸闷", "心慌", "心悸", "高血压"),
        ("chest pain", "palpitations", "high blood pressure", "hypertension"),
        ("cardiology",),
    ),
    (
        ("咳嗽", "气喘", "哮喘", "发烧", "发热", "咽痛"),
        ("cough", "wheezing", "asthma", "fever", "sore throat"),
        ("respiratory", "general-practice"),
    ),
    (
        ("胃痛", "腹痛", "腹泻", "便秘", "反酸", "恶心"),
        ("stomach ache", "abdominal pain", "diarrhoea", "diarrhea", "constipation", "heartburn", "nausea"),
        ("gastroenterology",),
    ),
    (
        ("口渴", "多尿", "血糖高", "糖尿病", "甲状腺"),
        ("thirst", "frequent urination", "high blood sugar", "diabetes", "thyroid"),
        ("endocrinology",),
    ),
    (("皮疹", "瘙痒", "湿疹", "痘痘", "脱发"), ("rash", "itching", "eczema", "acne", "hair loss"), ("dermatology",)),
    (
        ("腰痛", "关节痛", "骨折", "颈椎痛", "膝盖痛"),
        ("back pain", "joint pain", "fracture", "neck pain", "knee pain"),
        ("orthopaedics",),
    ),
    (("小儿发烧", "小孩咳嗽", "儿童腹泻", "宝宝"), ("child fever", "child cough", "baby"), ("paediatrics",)),
    (("感冒", "乏力", "体检"), ("cold", "fatigue", "check-up"), ("general-practice",)),
]


def specialties_for(text: str) -> list[str]:
    """Specialty codes whose symptom words appear in ``text`` (either language), best first."""
    needle = (text or "").strip().lower()
    if not needle:
        return []
    found: list[str] = []
    for chinese, english, codes in SYMPTOMS:
        if any(word in needle or needle in word for word in chinese) or any(
            word in needle or (len(needle) >= 4 and needle in word) for word in english
        ):
            for code in codes:
                if code not in found:
                    found.append(code)
    return found
