"""What the demo contains: fictional but realistic hospitals, staff and patients in Zhejiang.

Everything here is plain data; ``nethospital.demo.seed`` turns it into rows through the real
actions. The patients are generated from a fixed random seed, so the same identity numbers come out
on every run (``patient_plan``), which is also how the tests find them again. Birth dates are
relative to the current year so that the young children stay under 6 (R3) whenever the demo runs.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from nethospital.accounts.choices import Relationship, Role, Sex
from nethospital.accounts.identity import make_number
from nethospital.directory.choices import HospitalTier, OrganizationKind, Title, VerificationStatus
from nethospital.testing.totp import DEMO_SECRET

# One published password for every demo account, and one published TOTP secret for every demo
# account that has a second factor. The demo command refuses to run in production.
DEMO_PASSWORD = "NetHospital-demo-2026"  # noqa: S105 - published demo password
TOTP_SECRET = DEMO_SECRET
EMAIL_DOMAIN = "nethospital.example"  # RFC 2606: never a real mailbox
RANDOM_SEED = 20260101

# --- Organisations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgSpec:
    key: str
    kind: str
    name_zh: str
    name_en: str
    city: str
    county: str
    address: str
    phone: str = ""
    tier: int | None = None
    licence_number: str = ""
    attached_to: str = ""  # key of the physical hospital (R24)
    parent: str = ""  # key of the supervising hospital
    province: str = "浙江省"


ORGANISATIONS: list[OrgSpec] = [
    OrgSpec(
        key="city",
        kind=OrganizationKind.HOSPITAL,
        tier=HospitalTier.TIER_3,
        name_zh="华东医科大学附属第一医院",
        name_en="First Affiliated Hospital of East China Medical University",
        licence_number="47110001X33010211A1001",
        city="杭州市",
        county="上城区",
        address="杭州市上城区庆春路 88 号",
        phone="0571-87230000",
    ),
    OrgSpec(
        key="city_online",
        kind=OrganizationKind.INTERNET_HOSPITAL,
        name_zh="华东医科大学附属第一医院互联网医院",
        name_en="First Affiliated Hospital of East China Medical University Internet Hospital",
        licence_number="47110001X33010211A1001-IH",
        attached_to="city",
        city="杭州市",
        county="上城区",
        address="杭州市上城区庆春路 88 号",
        phone="0571-87230000",
    ),
    OrgSpec(
        key="county",
        kind=OrganizationKind.HOSPITAL,
        tier=HospitalTier.TIER_2,
        name_zh="淳安县青溪人民医院",
        name_en="Qingxi People's Hospital of Chun'an County",
        licence_number="47130002X33012721A2101",
        city="杭州市",
        county="淳安县",
        address="淳安县千岛湖镇环湖北路 16 号",
        phone="0571-64810000",
    ),
    OrgSpec(
        key="township",
        kind=OrganizationKind.HOSPITAL,
        tier=HospitalTier.TIER_1,
        name_zh="淳安县白沙镇卫生院",
        name_en="Baisha Township Health Centre, Chun'an",
        licence_number="PDY33012731B3201",
        parent="county",
        city="杭州市",
        county="淳安县",
        address="淳安县白沙镇人民路 3 号",
        phone="0571-64920000",
    ),
    OrgSpec(
        key="pharmacy_city",
        kind=OrganizationKind.PHARMACY,
        name_zh="杭州康民大药房（庆春路店）",
        name_en="Kangmin Pharmacy (Qingchun Road), Hangzhou",
        licence_number="浙CA5710001",
        city="杭州市",
        county="上城区",
        address="杭州市上城区庆春路 102 号",
        phone="0571-87239900",
    ),
    OrgSpec(
        key="pharmacy_county",
        kind=OrganizationKind.PHARMACY,
        name_zh="淳安县百草堂大药房",
        name_en="Baicaotang Pharmacy, Chun'an",
        licence_number="浙CB5710237",
        city="杭州市",
        county="淳安县",
        address="淳安县千岛湖镇新安东路 21 号",
        phone="0571-64815500",
    ),
    OrgSpec(
        key="station_xikou",
        kind=OrganizationKind.SERVICE_STATION,
        name_zh="白沙镇溪口村卫生服务站",
        name_en="Xikou Village Service Station, Baisha",
        parent="township",
        city="杭州市",
        county="淳安县",
        address="淳安县白沙镇溪口村村委会一楼",
    ),
    OrgSpec(
        key="station_shimen",
        kind=OrganizationKind.SERVICE_STATION,
        name_zh="白沙镇石门村卫生服务站",
        name_en="Shimen Village Service Station, Baisha",
        parent="township",
        city="杭州市",
        county="淳安县",
        address="淳安县白沙镇石门村文化礼堂旁",
    ),
    OrgSpec(
        key="station_qingshan",
        kind=OrganizationKind.SERVICE_STATION,
        name_zh="淳安县青山村卫生服务站",
        name_en="Qingshan Village Service Station, Chun'an",
        parent="county",
        city="杭州市",
        county="淳安县",
        address="淳安县里商乡青山村 8 号",
    ),
]

# --- Specialties and departments ----------------------------------------------------------------

# code -> (Chinese, English, paediatric)
SPECIALTIES: dict[str, tuple[str, str, bool]] = {
    "cardiology": ("心血管内科", "Cardiology", False),
    "endocrinology": ("内分泌科", "Endocrinology", False),
    "respiratory": ("呼吸内科", "Respiratory Medicine", False),
    "neurology": ("神经内科", "Neurology", False),
    "paediatrics": ("儿科", "Paediatrics", True),
    "gastroenterology": ("消化内科", "Gastroenterology", False),
    "dermatology": ("皮肤科", "Dermatology", False),
    "general-practice": ("全科医学科", "General Practice", False),
    "orthopaedics": ("骨科", "Orthopaedics", False),
    "geriatrics": ("老年医学科", "Geriatrics", False),
    "internal-medicine": ("内科", "Internal Medicine", False),
}

# organisation key -> department codes (each department has the specialty of the same code)
DEPARTMENTS: dict[str, list[str]] = {
    "city": [
        "cardiology",
        "endocrinology",
        "respiratory",
        "neurology",
        "paediatrics",
        "gastroenterology",
        "dermatology",
        "general-practice",
        "orthopaedics",
        "geriatrics",
    ],
    "county": ["internal-medicine", "paediatrics", "general-practice", "orthopaedics"],
    "township": ["general-practice"],
}

# --- Staff --------------------------------------------------------------------------------------


def email(local: str) -> str:
    return f"{local}@{EMAIL_DOMAIN}"


@dataclass(frozen=True)
class StaffSpec:
    """A staff account: an administrator, a regulator, a pharmacy or station worker."""

    email: str
    display_name: str
    role: str
    organisation: str = ""  # organisation key; empty for global roles
    extra_organisations: tuple[str, ...] = ()  # the same role at more organisations
    has_totp: bool = True
    is_superuser: bool = False
    try_this: str = ""


ADMINS: list[StaffSpec] = [
    StaffSpec(
        email=email("platform"),
        display_name="平台管理员 Platform Admin",
        role=Role.PLATFORM_ADMIN,
        is_superuser=True,
        try_this="back office /admin/ (read-only audit trail, masked identity numbers)",
    ),
    StaffSpec(
        email=email("regulator"),
        display_name="唐建华",
        role=Role.REGULATOR,
        try_this="regulator account (supervision dashboards: later issue)",
    ),
    StaffSpec(
        email=email("admin.city"),
        display_name="宋雅琴",
        role=Role.HOSPITAL_ADMIN,
        organisation="city",
        try_this="verification queue /hospital-admin/practitioners/ (verify 朱天宇, reinstate 钱磊)",
    ),
    StaffSpec(
        email=email("admin.county"),
        display_name="程立新",
        role=Role.HOSPITAL_ADMIN,
        organisation="county",
        extra_organisations=("township",),  # the county medical community runs the township centre
        try_this="verification queue of the county hospital and the township health centre",
    ),
]

OTHER_STAFF: list[StaffSpec] = [
    StaffSpec(email("staff.kangmin"), "韩梅", Role.PHARMACY_STAFF, "pharmacy_city", has_totp=False),
    StaffSpec(email("courier.kangmin"), "邓小军", Role.COURIER, "pharmacy_city", has_totp=False),
    StaffSpec(email("staff.baicaotang"), "彭丽", Role.PHARMACY_STAFF, "pharmacy_county", has_totp=False),
    StaffSpec(email("courier.baicaotang"), "潘建", Role.COURIER, "pharmacy_county", has_totp=False),
    StaffSpec(email("station.xikou"), "叶春花", Role.STATION_OPERATOR, "station_xikou", has_totp=False),
    StaffSpec(email("station.shimen"), "田永福", Role.STATION_OPERATOR, "station_shimen", has_totp=False),
    StaffSpec(email("station.qingshan"), "冯秀兰", Role.STATION_OPERATOR, "station_qingshan", has_totp=False),
]


@dataclass(frozen=True)
class PractitionerSpec:
    """A doctor or pharmacist, registered and (usually) verified by an administrator (R5)."""

    email: str
    legal_name: str
    name_en: str
    organisation: str
    department: str  # department / specialty code; empty for pharmacists
    title: str
    practice_since: dt.date
    licence_number: str
    is_pharmacist: bool = False
    status: str = VerificationStatus.VERIFIED
    status_reason: str = ""
    has_totp: bool = True
    try_this: str = ""


def _doctor(
    local: str, name: str, name_en: str, org: str, dept: str, title: str, since: dt.date, n: int, **extra: object
) -> PractitionerSpec:
    return PractitionerSpec(
        email=email(local),
        legal_name=name,
        name_en=name_en,
        organisation=org,
        department=dept,
        title=title,
        practice_since=since,
        licence_number=f"110330{n:09d}",
        **extra,  # type: ignore[arg-type]
    )


CHIEF = Title.CHIEF_PHYSICIAN
ASSOCIATE = Title.ASSOCIATE_CHIEF_PHYSICIAN
ATTENDING = Title.ATTENDING_PHYSICIAN
D = dt.date

SUSPENSION_REASON = (
    "执业注册变更材料未补齐，暂停线上执业 / Licence re-registration papers missing: online practice suspended"
)

DOCTORS: list[PractitionerSpec] = [
    # City hospital (tier 3)
    _doctor("chen.zhiyuan", "陈志远", "Chen Zhiyuan", "city", "cardiology", CHIEF, D(1996, 8, 1), 101,
            try_this="open the charts of patients registered at the hospital (home page); 'who looked' shows it"),
    _doctor("lin.xiaoyan", "林晓燕", "Lin Xiaoyan", "city", "cardiology", ASSOCIATE, D(2006, 9, 1), 102),
    _doctor("wang.jianguo", "王建国", "Wang Jianguo", "city", "endocrinology", CHIEF, D(1998, 7, 15), 103),
    _doctor("zhou.min", "周敏", "Zhou Min", "city", "endocrinology", ATTENDING, D(2014, 9, 1), 104),
    _doctor("zhang.haitao", "张海涛", "Zhang Haitao", "city", "respiratory", ASSOCIATE, D(2004, 8, 1), 105),
    _doctor("liu.jia", "刘佳", "Liu Jia", "city", "respiratory", ATTENDING, D(2016, 9, 1), 106),
    _doctor("zhao.wenbo", "赵文博", "Zhao Wenbo", "city", "neurology", CHIEF, D(1999, 8, 1), 107),
    _doctor("sun.lihua", "孙丽华", "Sun Lihua", "city", "neurology", ASSOCIATE, D(2008, 9, 1), 108),
    _doctor("huang.jing", "黄静", "Huang Jing", "city", "paediatrics", CHIEF, D(2000, 8, 1), 109,
            try_this="paediatrician: has opened the chart of patient03's son (under 6)"),
    _doctor("wu.junjie", "吴俊杰", "Wu Junjie", "city", "paediatrics", ATTENDING, D(2015, 9, 1), 110),
    _doctor("he.yuting", "何雨婷", "He Yuting", "city", "paediatrics", ATTENDING, D(2017, 9, 1), 111),
    _doctor("xu.ming", "徐明", "Xu Ming", "city", "gastroenterology", ASSOCIATE, D(2005, 8, 1), 112),
    _doctor("zheng.xiaowen", "郑晓雯", "Zheng Xiaowen", "city", "gastroenterology", ATTENDING, D(2013, 9, 1), 113),
    _doctor("ma.li", "马丽", "Ma Li", "city", "dermatology", ASSOCIATE, D(2009, 8, 1), 114),
    _doctor("yang.fan", "杨帆", "Yang Fan", "city", "general-practice", ATTENDING, D(2012, 9, 1), 115,
            has_totp=False,
            try_this="no second factor yet: charts are refused until TOTP is set up at /accounts/2fa/ (R6)"),
    _doctor("hu.zhenhua", "胡振华", "Hu Zhenhua", "city", "orthopaedics", CHIEF, D(1997, 8, 1), 116),
    _doctor("gao.feng", "高峰", "Gao Feng", "city", "orthopaedics", ATTENDING, D(2014, 9, 1), 117),
    _doctor("luo.xiuying", "罗秀英", "Luo Xiuying", "city", "geriatrics", CHIEF, D(1995, 8, 1), 118),
    _doctor("zhu.tianyu", "朱天宇", "Zhu Tianyu", "city", "dermatology", ATTENDING, D(2019, 9, 1), 119,
            status=VerificationStatus.PENDING,
            try_this="pending verification (R5): may not practise until admin.city verifies"),
    _doctor("qian.lei", "钱磊", "Qian Lei", "city", "cardiology", ASSOCIATE, D(2007, 8, 1), 120,
            status=VerificationStatus.SUSPENDED, status_reason=SUSPENSION_REASON,
            try_this="suspended (R5): sees the reason; charts refused"),
    # County hospital (tier 2)
    _doctor("li.guoqiang", "李国强", "Li Guoqiang", "county", "internal-medicine", ASSOCIATE, D(2003, 8, 1), 201),
    _doctor("chen.fang", "陈芳", "Chen Fang", "county", "paediatrics", ATTENDING, D(2011, 9, 1), 202),
    _doctor("xu.zhiming", "许志明", "Xu Zhiming", "county", "general-practice", ATTENDING, D(2010, 9, 1), 203),
    _doctor("jiang.tao", "蒋涛", "Jiang Tao", "county", "orthopaedics", ATTENDING, D(2012, 9, 1), 204),
    # Township health centre (tier 1)
    _doctor("fang.weidong", "方卫东", "Fang Weidong", "township", "general-practice", ATTENDING, D(2008, 8, 1), 301),
]  # fmt: skip

PHARMACISTS: list[PractitionerSpec] = [
    PractitionerSpec(
        email=email("shen.hui"),
        legal_name="沈慧",
        name_en="Shen Hui",
        organisation="pharmacy_city",
        department="",
        title=Title.SUPERVISING_PHARMACIST,
        practice_since=D(2010, 7, 1),
        licence_number="33121019000101",
        is_pharmacist=True,
        try_this="pharmacist (prescription review: later issue)",
    ),
    PractitionerSpec(
        email=email("cao.wen"),
        legal_name="曹文",
        name_en="Cao Wen",
        organisation="pharmacy_county",
        department="",
        title=Title.ASSOCIATE_CHIEF_PHARMACIST,
        practice_since=D(2006, 7, 1),
        licence_number="33121019000102",
        is_pharmacist=True,
        try_this="pharmacist (prescription review: later issue)",
    ),
]

# --- Patients -----------------------------------------------------------------------------------

# Region codes (GB/T 2260) of Zhejiang: Hangzhou districts first, then other cities.
CITY_REGIONS = ["330102", "330105", "330106", "330108", "330109", "330110", "330114"]
OTHER_REGIONS = ["330203", "330302", "330381", "330402", "330502", "330602", "330702", "330782", "331002"]
RURAL_REGION = "330127"  # Chun'an county: these patients are registered at the county hospital too

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜钟陆汪范金方邵钱应楼"
)
GIVEN_MALE = ["伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "辉", "鹏", "斌", "浩", "凯", "健", "建华",
              "志强", "海波", "晓东", "文杰", "国平", "建军", "永康", "立新", "俊峰", "家豪", "振宇"]  # fmt: skip
GIVEN_FEMALE = ["芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "玲", "燕", "婷", "雪", "琳", "慧", "洁", "秀英",
                "桂英", "晓红", "美玲", "丽萍", "玉兰", "雅琴", "佳怡", "思雨", "慧敏", "海燕"]  # fmt: skip
GIVEN_CHILD_MALE = ["子豪", "浩然", "宇轩", "一航", "梓睿", "俊熙"]
GIVEN_CHILD_FEMALE = ["梓涵", "雨萱", "思琪", "欣怡", "一诺", "可馨"]
GIVEN_ELDER_MALE = ["德明", "福生", "根土", "金水", "炳荣", "阿六"]
GIVEN_ELDER_FEMALE = ["秀英", "桂香", "玉珍", "月娥", "彩凤", "阿娥"]
PHONE_PREFIXES = ["135", "136", "137", "138", "139", "150", "151", "158", "159", "186", "187", "188", "189", "177"]

PATIENT_COUNT = 50


@dataclass(frozen=True)
class FamilySpec:
    relationship: str  # what the family member is to the account holder
    age: int
    sex: str


# Account patient number -> (holder's age, holder's sex, family members)
FAMILIES: dict[int, tuple[int, str, list[FamilySpec]]] = {
    3: (32, Sex.FEMALE, [FamilySpec(Relationship.CHILD, 4, Sex.MALE)]),
    7: (36, Sex.MALE, [FamilySpec(Relationship.CHILD, 2, Sex.FEMALE), FamilySpec(Relationship.CHILD, 9, Sex.MALE)]),
    12: (47, Sex.FEMALE, [FamilySpec(Relationship.PARENT, 78, Sex.FEMALE)]),
    15: (
        55,
        Sex.MALE,
        [FamilySpec(Relationship.PARENT, 83, Sex.MALE), FamilySpec(Relationship.PARENT, 80, Sex.FEMALE)],
    ),
    20: (29, Sex.FEMALE, [FamilySpec(Relationship.CHILD, 5, Sex.FEMALE)]),
    26: (61, Sex.FEMALE, [FamilySpec(Relationship.GRANDCHILD, 3, Sex.MALE)]),
    33: (58, Sex.MALE, [FamilySpec(Relationship.PARENT, 86, Sex.FEMALE)]),
}
RURAL_PATIENTS = frozenset({5, 9, 14, 21, 26, 30, 38, 44})  # live in Chun'an county


@dataclass(frozen=True)
class PersonPlan:
    legal_name: str
    id_number: str
    birth_date: dt.date
    sex: str
    phone: str
    region: str
    relationship: str = ""  # for family members


@dataclass(frozen=True)
class PatientPlan:
    number: int  # 1..50
    email: str
    person: PersonPlan
    is_rural: bool
    family: list[PersonPlan] = field(default_factory=list)


def _birth_date(rng: random.Random, year: int, age: int) -> dt.date:
    # Born in (year - age); any day of that year is in the past, so the number always parses.
    start = dt.date(year - age, 1, 1)
    return start + dt.timedelta(days=rng.randrange(0, 365))


def patient_plan(today: dt.date) -> list[PatientPlan]:
    """The 50 demo patient accounts and their family members. Deterministic for a given year."""
    rng = random.Random(RANDOM_SEED)
    used_numbers: set[str] = set()
    used_phones: set[str] = set()

    def number_for(region: str, birth_date: dt.date, sex: str) -> str:
        while True:
            candidate = make_number(region, birth_date, rng.randrange(10, 990), sex)
            if candidate not in used_numbers:
                used_numbers.add(candidate)
                return candidate

    def phone() -> str:
        while True:
            candidate = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(0, 10**8):08d}"
            if candidate not in used_phones:
                used_phones.add(candidate)
                return candidate

    plans: list[PatientPlan] = []
    for n in range(1, PATIENT_COUNT + 1):
        if n in FAMILIES:
            age, sex, family_specs = FAMILIES[n]
        else:
            age, sex, family_specs = rng.randrange(20, 82), rng.choice([Sex.MALE, Sex.FEMALE]), []
        is_rural = n in RURAL_PATIENTS
        region = RURAL_REGION if is_rural else rng.choice(CITY_REGIONS * 2 + OTHER_REGIONS)
        surname = rng.choice(SURNAMES)
        given = rng.choice(GIVEN_MALE if sex == Sex.MALE else GIVEN_FEMALE)
        birth_date = _birth_date(rng, today.year, age)
        holder = PersonPlan(
            legal_name=surname + given,
            id_number=number_for(region, birth_date, sex),
            birth_date=birth_date,
            sex=sex,
            phone=phone(),
            region=region,
        )
        family: list[PersonPlan] = []
        for spec in family_specs:
            if spec.relationship == Relationship.PARENT:
                names = GIVEN_ELDER_MALE if spec.sex == Sex.MALE else GIVEN_ELDER_FEMALE
                # The father shares the holder's surname; the mother keeps her own (Chinese custom).
                family_surname = surname if spec.sex == Sex.MALE else rng.choice(SURNAMES)
            else:
                names = GIVEN_CHILD_MALE if spec.sex == Sex.MALE else GIVEN_CHILD_FEMALE
                family_surname = surname
            taken = {member.legal_name for member in family}
            name = family_surname + rng.choice([g for g in names if family_surname + g not in taken])
            member_birth = _birth_date(rng, today.year, spec.age)
            family.append(
                PersonPlan(
                    legal_name=name,
                    id_number=number_for(region, member_birth, spec.sex),
                    birth_date=member_birth,
                    sex=spec.sex,
                    phone=phone() if spec.relationship == Relationship.PARENT else "",
                    region=region,
                    relationship=spec.relationship,
                )
            )
        plans.append(
            PatientPlan(number=n, email=email(f"patient{n:02d}"), person=holder, is_rural=is_rural, family=family)
        )
    return plans


def all_identity_numbers(today: dt.date) -> list[str]:
    return [p.id_number for plan in patient_plan(today) for p in [plan.person, *plan.family]]


# Chart openings seeded so that "who looked at my records" has something to show (R23):
# (doctor e-mail, patient number, family member index or None for the holder)
CHART_VIEWS: list[tuple[str, int, int | None]] = [
    (email("chen.zhiyuan"), 1, None),
    (email("wang.jianguo"), 1, None),
    (email("huang.jing"), 3, 0),
    (email("luo.xiuying"), 12, 0),
]
