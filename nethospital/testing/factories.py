"""Build test and demo data through the real actions, so that the rules run.

Identity numbers are generated valid (GB 11643) from a region code, a birth date and a sequence.
"""

from __future__ import annotations

import datetime as dt
import itertools

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Role, Sex
from nethospital.accounts.identity import make_number
from nethospital.accounts.models import Patient, User
from nethospital.directory import actions as directory_actions
from nethospital.directory.choices import OrganizationKind, Profession, Title, VerificationStatus
from nethospital.directory.models import Department, Organization, Practitioner, Specialty

_counter = itertools.count(1)
DEFAULT_PASSWORD = "Correct-Horse-42"  # noqa: S105 - test data


def identity_number(birth_date: dt.date = dt.date(1985, 6, 15), sex: str = Sex.MALE, region: str = "110101") -> str:
    return make_number(region, birth_date, next(_counter) * 2 % 1000, sex)


def patient_user(
    *,
    email: str | None = None,
    legal_name: str = "张伟",
    birth_date: dt.date = dt.date(1985, 6, 15),
    sex: str = Sex.MALE,
    password: str = DEFAULT_PASSWORD,
) -> User:
    n = next(_counter)
    return account_actions.sign_up_patient(
        email=email or f"patient{n}@example.org",
        password=password,
        legal_name=legal_name,
        id_number=identity_number(birth_date, sex),
        birth_date=birth_date,
        sex=sex,
        phone=f"138{n:08d}",
    )


def staff_user(*, email: str | None = None, display_name: str = "", password: str = DEFAULT_PASSWORD) -> User:
    n = next(_counter)
    return User.objects.create_user(
        email=email or f"staff{n}@example.org", password=password, display_name=display_name
    )


def hospital(
    *, name_zh: str = "北京协和医院", name_en: str = "Peking Union Medical College Hospital", tier: int = 3
) -> Organization:
    n = next(_counter)
    return directory_actions.create_organization(
        None,
        kind=OrganizationKind.HOSPITAL,
        name_zh=name_zh,
        name_en=name_en,
        tier=tier,
        licence_number=f"PDY{n:08d}",
        province="北京市",
        city="北京",
    )


def internet_hospital(physical: Organization) -> Organization:
    return directory_actions.create_organization(
        None,
        kind=OrganizationKind.INTERNET_HOSPITAL,
        name_zh=f"{physical.name_zh}互联网医院",
        name_en=f"{physical.name_en} Internet Hospital",
        licence_number=f"NET{physical.licence_number}",
        province=physical.province,
        city=physical.city,
        attached_to=physical,
    )


def specialty(
    code: str = "cardiology", name_zh: str = "心血管内科", name_en: str = "Cardiology", paediatric: bool = False
) -> Specialty:
    return Specialty.objects.get_or_create(
        code=code, defaults={"name_zh": name_zh, "name_en": name_en, "is_paediatric": paediatric}
    )[0]


def department(org: Organization, code: str = "cardiology") -> Department:
    """The department ``code`` of ``org``, named after its specialty: the known codes get their real
    names, any other code a name made from the code (never another department's name)."""
    known = {
        "cardiology": ("心血管内科", "Cardiology"),
        "endocrinology": ("内分泌科", "Endocrinology"),
        "respiratory": ("呼吸内科", "Respiratory Medicine"),
        "neurology": ("神经内科", "Neurology"),
        "paediatrics": ("儿科", "Paediatrics"),
        "gastroenterology": ("消化内科", "Gastroenterology"),
        "dermatology": ("皮肤科", "Dermatology"),
        "general-practice": ("全科医学科", "General Practice"),
        "orthopaedics": ("骨科", "Orthopaedics"),
        "geriatrics": ("老年医学科", "Geriatrics"),
        "internal-medicine": ("内科", "Internal Medicine"),
    }
    made_up = code.replace("-", " ").replace("_", " ").capitalize()
    name_zh, name_en = known.get(code, (made_up, made_up))
    spec = specialty(code, name_zh, name_en, paediatric=code.startswith("paediatric"))
    return Department.objects.get_or_create(
        organization=org, code=code, defaults={"name_zh": spec.name_zh, "name_en": spec.name_en, "specialty": spec}
    )[0]


def hospital_admin(org: Organization, *, mfa_verified: bool = True) -> User:
    admin = staff_user(display_name="医院管理员")
    platform = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser(
        email=f"root{next(_counter)}@example.org", password=DEFAULT_PASSWORD
    )
    platform.is_mfa_verified = True  # a trusted set-up step, as if the platform admin had passed MFA
    account_actions.grant_role(platform, admin, Role.HOSPITAL_ADMIN, organization_id=org.pk)
    admin.is_mfa_verified = mfa_verified
    return admin


def doctor(
    org: Organization,
    *,
    status: str = VerificationStatus.VERIFIED,
    practice_since: dt.date = dt.date(2010, 9, 1),
    consent: bool = True,
    legal_name: str = "李明",
    title: str = Title.CHIEF_PHYSICIAN,
    department_code: str = "cardiology",
    admin: User | None = None,
) -> Practitioner:
    """A doctor registered at ``org``; verified (or other status) by a hospital admin."""
    user = staff_user(display_name=legal_name)
    dept = department(org, department_code)
    practitioner = directory_actions.register_practitioner(
        None,
        user,
        legal_name=legal_name,
        profession=Profession.PHYSICIAN,
        licence_number=f"1101{next(_counter):011d}",
        title=title,
        primary_institution=org,
        independent_practice_since=practice_since,
        institution_consent=consent,
        department_id=dept.pk,
        specialty_ids=[dept.specialty_id] if dept.specialty_id else [],
    )
    if status != VerificationStatus.PENDING:
        admin = admin or hospital_admin(org)
        directory_actions.change_verification(admin, practitioner.pk, VerificationStatus.VERIFIED)
        if status == VerificationStatus.SUSPENDED:
            directory_actions.change_verification(
                admin, practitioner.pk, VerificationStatus.SUSPENDED, reason="测试停诊"
            )
        elif status == VerificationStatus.REJECTED:
            raise ValueError("use change_verification from pending to reject")
        practitioner.refresh_from_db()
    return practitioner


def patient_of(user: User) -> Patient:
    return Patient.objects.get(account=user)


def icd10_subset() -> None:
    """Put back the seeded ICD-10 subset (a data migration) after a transactional test's flush removed it."""
    from nethospital.consultations.icd10 import CODES
    from nethospital.consultations.models import ICD10Code

    for code, name_en, name_zh, chronic in CODES:
        ICD10Code.objects.get_or_create(
            code=code, defaults={"name_en": name_en, "name_zh": name_zh, "is_chronic": chronic}
        )
