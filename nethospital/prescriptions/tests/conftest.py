"""A small catalogue of its own (codes ``t-...``) and a follow-up consultation with a signed
diagnosis, made through the real actions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Role
from nethospital.consultations import actions as consultation_actions
from nethospital.consultations.actions import Declaration, RecordInput
from nethospital.consultations.choices import ProofKind, VisitType
from nethospital.core import clock
from nethospital.prescriptions.models import Drug, DrugClass, Ingredient, Interaction
from nethospital.records.models import Allergy
from nethospital.testing import factories

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)


def _class(code: str, en: str, zh: str) -> DrugClass:
    return DrugClass.objects.get_or_create(code=code, defaults={"name_en": en, "name_zh": zh})[0]


def _ingredient(code: str, en: str, zh: str, allergy_class: DrugClass | None = None) -> Ingredient:
    return Ingredient.objects.get_or_create(
        code=code, defaults={"name_en": en, "name_zh": zh, "allergy_class": allergy_class}
    )[0]


def _drug(code: str, ingredient: Ingredient, klass: DrugClass, **fields) -> Drug:
    values = {
        "generic_name_zh": ingredient.name_zh,
        "generic_name_en": ingredient.name_en,
        "dosage_form": "tablet",
        "strength": "5 mg",
        "strength_value": Decimal("5"),
        "strength_unit": "mg",
        "unit": "tablet",
        "pack_size": 28,
        "route": "oral",
        "therapeutic_class": klass,
        "paediatric_use": "caution",
    }
    values.update(fields)
    drug = Drug.objects.create(code=code, **values)
    drug.ingredients.add(ingredient)
    return drug


@pytest.fixture
def catalogue(db):
    ccb = _class("t-ccb", "calcium channel blockers", "钙通道阻滞剂")
    statins = _class("t-statins", "statins", "他汀类")
    penicillins = _class("t-penicillins", "penicillins", "青霉素类")
    macrolides = _class("t-macrolides", "macrolides", "大环内酯类")
    opioids = _class("t-opioids", "opioids", "阿片类")
    nsaids = _class("t-nsaids", "NSAIDs", "非甾体抗炎药")
    anticoag = _class("t-anticoagulants", "anticoagulants", "抗凝药")
    amlodipine = _ingredient("t-amlodipine", "amlodipine", "氨氯地平")
    nifedipine = _ingredient("t-nifedipine", "nifedipine", "硝苯地平")
    simvastatin = _ingredient("t-simvastatin", "simvastatin", "辛伐他汀")
    clarithromycin = _ingredient("t-clarithromycin", "clarithromycin", "克拉霉素")
    amoxicillin = _ingredient("t-amoxicillin", "amoxicillin", "阿莫西林", penicillins)
    morphine = _ingredient("t-morphine", "morphine", "吗啡")
    warfarin = _ingredient("t-warfarin", "warfarin", "华法林")
    aspirin = _ingredient("t-aspirin", "aspirin", "阿司匹林")
    Interaction.objects.create(
        ingredient_a=clarithromycin,
        ingredient_b=simvastatin,
        severity="contraindicated",
        effect_en="rhabdomyolysis risk",
        effect_zh="横纹肌溶解风险",
    )
    Interaction.objects.create(
        ingredient_a=aspirin, ingredient_b=warfarin, severity="serious", effect_en="bleeding", effect_zh="出血风险"
    )
    return {
        "amlodipine": _drug("t-amlodipine-5", amlodipine, ccb, max_daily_dose=Decimal("10")),
        "amlodipine_10": _drug("t-amlodipine-10", amlodipine, ccb, strength="10 mg", strength_value=Decimal("10")),
        "nifedipine": _drug("t-nifedipine-30", nifedipine, ccb, strength="30 mg", strength_value=Decimal("30")),
        "simvastatin": _drug("t-simvastatin-20", simvastatin, statins, strength="20 mg", strength_value=20),
        "clarithromycin": _drug(
            "t-clarithromycin-250", clarithromycin, macrolides, strength="250 mg", strength_value=250, pack_size=6
        ),
        "amoxicillin": _drug(
            "t-amoxicillin-500",
            amoxicillin,
            penicillins,
            strength="500 mg",
            strength_value=500,
            dosage_form="capsule",
            unit="capsule",
            pack_size=24,
            antibiotic_tier="unrestricted",
        ),
        "morphine": _drug(
            "t-morphine-10", morphine, opioids, strength="10 mg", strength_value=10, control_class="narcotic"
        ),
        "aspirin": _drug(
            "t-aspirin-100", aspirin, nsaids, strength="100 mg", strength_value=100, paediatric_use="not_suitable"
        ),
        "warfarin": _drug("t-warfarin-3", warfarin, anticoag, strength="3 mg", strength_value=3),
    }


@pytest.fixture
def clinic(catalogue, city_hospital, internet_hospital):
    """A doctor (MFA), a pharmacist of the same hospital (MFA), a patient allergic to penicillin, and a
    completed follow-up consultation for hypertension (I10) with a signed record."""
    with clock.frozen(NOON):
        admin = factories.hospital_admin(city_hospital)
        doctor = factories.doctor(city_hospital, admin=admin)
        doctor.user.is_mfa_verified = True
        pharmacist = factories.staff_user(display_name="药师")
        platform = factories.User.objects.filter(is_superuser=True).first()
        platform.is_mfa_verified = True
        account_actions.grant_role(platform, pharmacist, Role.PHARMACIST, organization_id=internet_hospital.pk)
        pharmacist.is_mfa_verified = True
        patient_user = factories.patient_user()
        patient = factories.patient_of(patient_user)
        consultation = follow_up_consultation(doctor, patient_user, patient, "I10")
        Allergy.objects.create(
            patient=patient, substance="青霉素", reaction="皮疹", recorded_by=doctor.user, recorded_at=clock.now()
        )
    return {
        "admin": admin,
        "doctor": doctor,
        "pharmacist": pharmacist,
        "patient_user": patient_user,
        "patient": patient,
        "consultation": consultation,
        "drugs": catalogue,
    }


def follow_up_consultation(doctor, user, patient, *codes: str, first_visit: bool = False):
    declaration = (
        Declaration(condition="胸闷", first_visit=True)
        if first_visit
        else Declaration(
            condition="高血压复诊",
            first_visit=False,
            proof_kind=ProofKind.OTHER_HOSPITAL,
            proof_hospital="县医院",
            proof_summary="原发性高血压",
        )
    )
    consultation = consultation_actions.join_queue(user, patient.pk, doctor.department_id, declaration)
    consultation_actions.pick_next(doctor.user)
    if not first_visit:
        consultation_actions.confirm_visit_type(doctor.user, consultation.pk, VisitType.FOLLOW_UP)
    consultation_actions.sign_visit_record(
        doctor.user, consultation.pk, RecordInput(chief_complaint="复诊", diagnosis_codes=list(codes))
    )
    consultation_actions.complete_consultation(doctor.user, consultation.pk)
    consultation.refresh_from_db()
    return consultation
