"""A bilingual subset of ICD-10 for online follow-up visits: common chronic and everyday conditions.

Codes and English titles follow the WHO ICD-10; Chinese titles follow the national clinical version
(国家临床版). Loaded by a data migration; ``nethospital.consultations.icd10.search`` finds codes by code
prefix or by words in either language.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

# (code, English, Chinese, chronic)
CODES: tuple[tuple[str, str, str, bool], ...] = (
    ("A09", "Gastroenteritis and colitis of unspecified origin", "胃肠炎和结肠炎", False),
    ("B00.1", "Herpesviral vesicular dermatitis", "单纯疱疹性皮炎", False),
    ("B35.3", "Tinea pedis", "足癣", False),
    ("B18.1", "Chronic viral hepatitis B", "慢性乙型病毒性肝炎", True),
    ("D50.9", "Iron deficiency anaemia, unspecified", "缺铁性贫血", True),
    ("E03.9", "Hypothyroidism, unspecified", "甲状腺功能减退症", True),
    ("E05.9", "Thyrotoxicosis, unspecified", "甲状腺功能亢进症", True),
    ("E10.9", "Type 1 diabetes mellitus without complications", "1型糖尿病", True),
    ("E11.9", "Type 2 diabetes mellitus without complications", "2型糖尿病", True),
    ("E11.4", "Type 2 diabetes mellitus with neurological complications", "2型糖尿病伴神经并发症", True),
    ("E66.9", "Obesity, unspecified", "肥胖症", True),
    ("E78.0", "Pure hypercholesterolaemia", "单纯性高胆固醇血症", True),
    ("E78.5", "Hyperlipidaemia, unspecified", "高脂血症", True),
    ("E79.0", "Hyperuricaemia without signs of inflammatory arthritis", "高尿酸血症", True),
    ("F32.9", "Depressive episode, unspecified", "抑郁发作", True),
    ("F41.1", "Generalized anxiety disorder", "广泛性焦虑障碍", True),
    ("F51.0", "Nonorganic insomnia", "非器质性失眠症", True),
    ("G40.9", "Epilepsy, unspecified", "癫痫", True),
    ("G43.9", "Migraine, unspecified", "偏头痛", True),
    ("G44.2", "Tension-type headache", "紧张型头痛", False),
    ("G47.3", "Sleep apnoea", "睡眠呼吸暂停", True),
    ("H10.9", "Conjunctivitis, unspecified", "结膜炎", False),
    ("H40.9", "Glaucoma, unspecified", "青光眼", True),
    ("H52.1", "Myopia", "近视", True),
    ("H66.9", "Otitis media, unspecified", "中耳炎", False),
    ("I10", "Essential (primary) hypertension", "原发性高血压", True),
    ("I20.9", "Angina pectoris, unspecified", "心绞痛", True),
    ("I25.1", "Atherosclerotic heart disease", "动脉粥样硬化性心脏病", True),
    ("I48", "Atrial fibrillation and flutter", "心房颤动和扑动", True),
    ("I50.9", "Heart failure, unspecified", "心力衰竭", True),
    ("I63.9", "Cerebral infarction, unspecified", "脑梗死", True),
    ("I69.3", "Sequelae of cerebral infarction", "脑梗死后遗症", True),
    ("I83.9", "Varicose veins of lower extremities", "下肢静脉曲张", True),
    ("J00", "Acute nasopharyngitis [common cold]", "急性鼻咽炎[感冒]", False),
    ("J02.9", "Acute pharyngitis, unspecified", "急性咽炎", False),
    ("J03.9", "Acute tonsillitis, unspecified", "急性扁桃体炎", False),
    ("J06.9", "Acute upper respiratory infection, unspecified", "急性上呼吸道感染", False),
    ("J18.9", "Pneumonia, unspecified", "肺炎", False),
    ("J20.9", "Acute bronchitis, unspecified", "急性支气管炎", False),
    ("J30.4", "Allergic rhinitis, unspecified", "变应性鼻炎", True),
    ("J44.9", "Chronic obstructive pulmonary disease, unspecified", "慢性阻塞性肺疾病", True),
    ("J45.9", "Asthma, unspecified", "哮喘", True),
    ("K21.9", "Gastro-oesophageal reflux disease without oesophagitis", "胃食管反流病", True),
    ("K25.9", "Gastric ulcer, unspecified", "胃溃疡", True),
    ("K29.5", "Chronic gastritis, unspecified", "慢性胃炎", True),
    ("K58.9", "Irritable bowel syndrome without diarrhoea", "肠易激综合征", True),
    ("K59.0", "Constipation", "便秘", False),
    ("K76.0", "Fatty (change of) liver, not elsewhere classified", "脂肪肝", True),
    ("K80.2", "Calculus of gallbladder without cholecystitis", "胆囊结石", True),
    ("L20.9", "Atopic dermatitis, unspecified", "特应性皮炎", True),
    ("L30.9", "Dermatitis, unspecified", "皮炎", False),
    ("L40.0", "Psoriasis vulgaris", "寻常型银屑病", True),
    ("L50.9", "Urticaria, unspecified", "荨麻疹", False),
    ("L70.0", "Acne vulgaris", "寻常痤疮", False),
    ("M10.9", "Gout, unspecified", "痛风", True),
    ("M17.9", "Gonarthrosis, unspecified", "膝关节病", True),
    ("M54.5", "Low back pain", "腰痛", False),
    ("M81.9", "Osteoporosis, unspecified", "骨质疏松", True),
    ("N18.9", "Chronic kidney disease, unspecified", "慢性肾脏病", True),
    ("N39.0", "Urinary tract infection, site not specified", "尿路感染", False),
    ("N40", "Hyperplasia of prostate", "前列腺增生", True),
    ("N94.6", "Dysmenorrhoea, unspecified", "痛经", False),
    ("O24.4", "Diabetes mellitus arising in pregnancy", "妊娠期糖尿病", False),
    ("R05", "Cough", "咳嗽", False),
    ("R10.4", "Other and unspecified abdominal pain", "腹痛", False),
    ("R50.9", "Fever, unspecified", "发热", False),
    ("R51", "Headache", "头痛", False),
    ("Z00.1", "Routine child health examination", "儿童常规健康检查", False),
    ("Z34.9", "Supervision of normal pregnancy, unspecified", "正常妊娠监督", False),
)


def search(query: str, limit: int = 20) -> QuerySet:  # type: ignore[type-arg]
    from nethospital.consultations.models import ICD10Code

    query = (query or "").strip()[:50]
    qs = ICD10Code.objects.all()
    if query:
        qs = qs.filter(Q(code__istartswith=query) | Q(name_en__icontains=query) | Q(name_zh__icontains=query))
    return qs.order_by("code")[: max(1, min(limit, 50))]
