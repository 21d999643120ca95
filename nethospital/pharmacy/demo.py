"""Demo stock for the two demo pharmacies, made through the real EPCIS capture and actions.

For each product the factory commissions serialised boxes (batch and expiry in the ILMD), packs
them into a case (an SSCC) and ships it to a provincial distributor, which receives it and ships
it on; then the pharmacy's staff receive the case by scanning it (``actions.receive_stock``), so
that the aggregation resolves the boxes into the pharmacy's stock, exactly as in production. Prices
are set by the pharmacy's staff (``actions.set_price``). One product has two batches, one expiring
soon, so that the dispensing screen's FEFO suggestion has something to say; paracetamol carries
China's 20-digit traceability codes instead of GS1 serials.

The supply-chain side (factory, distributor) is captured by the platform administrator as a
trusted set-up step (``is_mfa_verified`` on the object, as the other demo seeds do). Idempotent: a
pharmacy that has received stock before is left as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nethospital.accounts.models import User
from nethospital.core import clock
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization
from nethospital.pharmacy import actions
from nethospital.pharmacy.models import StockReceipt
from nethospital.prescriptions.models import DrugPack
from nethospital.traceability import codes, state
from nethospital.traceability.capture import capture_single_event
from nethospital.traceability.epcis import STANDARD_CONTEXT
from nethospital.traceability.state import CBVStep

EMAIL_DOMAIN = "nethospital.example"
CONTEXT: list[Any] = [STANDARD_CONTEXT, {"cbvmda": "urn:epcglobal:cbv:mda:"}]
# GS1's own example company prefix: the demo distributor is fictional.
DISTRIBUTOR_PREFIX = "0614141"
DISTRIBUTOR = ("浙江英济医药物流中心（演示）", "Zhejiang Yingji Pharma Logistics Centre (demo)", "杭州市")
RECEIVING_ELSEWHERE = CBVStep("receiving", "in_progress")


@dataclass(frozen=True)
class Product:
    gtin: str
    price: str
    boxes: int  # per case
    batches: tuple[tuple[str, int], ...] = (("A", 730),)  # (batch suffix, days until expiry)
    china_codes: bool = False


PRODUCTS = {
    "pharmacy_city": [
        Product("06920451100019", "18.50", 6, (("N1", 120), ("A1", 730))),  # amlodipine 5 mg × 7
        Product("06920451100026", "62.00", 4),  # amlodipine 5 mg × 28
        Product("06931452100632", "15.80", 6),  # metformin 500 mg × 20
        Product("06920451100040", "38.00", 4),  # atorvastatin 20 mg × 7
        Product("06922630102609", "29.50", 4),  # valsartan 80 mg × 7
        Product("06921187101882", "16.50", 4),  # aspirin 100 mg × 30
        Product("06930126108172", "22.00", 4),  # ibuprofen 300 mg SR × 20 (OTC)
        Product("06921187101905", "19.80", 4),  # loratadine 10 mg × 6 (OTC)
        Product("06930126108165", "9.90", 4, china_codes=True),  # paracetamol 500 mg × 12 (OTC)
    ],
    "pharmacy_county": [
        Product("06920451100019", "18.00", 4),
        Product("06931452100632", "15.50", 4),
        Product("06921187101882", "16.00", 4),
        Product("06930126108165", "9.50", 4, china_codes=True),
        Product("06940125106185", "21.00", 4),  # montmorillonite 3 g × 10 (OTC)
    ],
}
STAFF = {"pharmacy_city": "staff.kangmin", "pharmacy_county": "staff.baicaotang"}


def _email(local: str) -> str:
    return f"{local}@{EMAIL_DOMAIN}"


def _gln(company_prefix: str, location: int) -> str:
    body = company_prefix + str(location).zfill(12 - len(company_prefix))
    return body + codes.check_digit(body)


def _sscc(company_prefix: str, serial: int) -> str:
    body = "0" + company_prefix + str(serial).zfill(16 - len(company_prefix))
    return codes.sscc_urn(body + codes.check_digit(body))


def _place(company_prefix: str, location: int, name_zh: str, name_en: str, city: str) -> str:
    sgln = codes.sgln_urn(_gln(company_prefix, location))
    state.register_location(sgln, None, name_zh=name_zh, name_en=name_en, city=city)
    return sgln


def _event(kind: str, step: CBVStep, moment: dt.datetime, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "type": kind,
        "eventTime": moment.isoformat(),
        "eventTimeZoneOffset": "+08:00",
        "action": step.action,
        "bizStep": step.biz_step_uri,
        "disposition": step.disposition_uri,
    }
    document.update(fields)
    return document


def _trusted_admin() -> User | None:
    admin = User.objects.filter(email=_email("platform")).first() or User.objects.filter(is_superuser=True).first()
    if admin is not None:
        admin.is_mfa_verified = True  # a trusted set-up script, as the other demo seeds
    return admin


def _boxes(pack: DrugPack, product: Product, pharmacy_key: str, batch_index: int) -> list[str]:
    tag = 1 if pharmacy_key == "pharmacy_city" else 2
    serials = [f"{tag}{batch_index}{pack.pk:04d}{n:04d}" for n in range(1, product.boxes + 1)]
    if product.china_codes:
        return [f"{codes.CHINA_URN_PREFIX}{pack.china_prefix}{serial.zfill(13)}" for serial in serials]
    return [codes.sgtin_urn(pack.gtin, serial) for serial in serials]


def _supply(admin: User, pharmacy_key: str, pack: DrugPack, product: Product, distributor: str) -> list[str]:
    """Factory → distributor → in transit to the pharmacy; the cases to scan at the pharmacy."""
    now = clock.now().replace(microsecond=0)
    company = codes.parse(codes.sgtin_urn(pack.gtin, "1"), lookup=False).company_prefix
    drug = pack.drug
    factory = _place(company, 1, f"{drug.manufacturer}生产基地", f"{drug.manufacturer} plant", "")
    cases = []
    for index, (suffix, shelf_days) in enumerate(product.batches, start=1):
        made = now - dt.timedelta(days=60 + 10 * index)
        batch = f"{made:%y%m}{suffix}"
        expiry = (now + dt.timedelta(days=shelf_days)).date()
        boxes = _boxes(pack, product, pharmacy_key, index)
        case = _sscc(company, int(f"{1 if pharmacy_key == 'pharmacy_city' else 2}{index}{pack.pk:05d}"))
        ilmd = {"cbvmda:lotNumber": batch, "cbvmda:itemExpirationDate": expiry.isoformat()}
        documents = [
            _event(
                "ObjectEvent",
                state.COMMISSIONING,
                made,
                epcList=boxes,
                bizLocation={"id": factory},
                readPoint={"id": factory},
                ilmd=ilmd,
            ),
            _event(
                "AggregationEvent",
                state.PACKING,
                made + dt.timedelta(hours=2),
                parentID=case,
                childEPCs=boxes,
                bizLocation={"id": factory},
                readPoint={"id": factory},
            ),
            _event(
                "ObjectEvent", state.SHIPPING, made + dt.timedelta(days=2), epcList=[case], readPoint={"id": factory}
            ),
            _event(
                "ObjectEvent",
                RECEIVING_ELSEWHERE,
                made + dt.timedelta(days=4),
                epcList=[case],
                bizLocation={"id": distributor},
                readPoint={"id": distributor},
            ),
            _event(
                "ObjectEvent", state.SHIPPING, now - dt.timedelta(days=1), epcList=[case], readPoint={"id": distributor}
            ),
        ]
        for document in documents:
            capture_single_event(admin, document)
        cases.append(case)
    return cases


def seed_pharmacy() -> int:
    """Stock and prices for the demo pharmacies; the number of boxes received (0 if already there)."""
    from nethospital.demo import data

    admin = _trusted_admin()
    if admin is None:
        return 0
    distributor = _place(DISTRIBUTOR_PREFIX, 777, *DISTRIBUTOR)
    received = 0
    for spec in data.ORGANISATIONS:
        if spec.key not in PRODUCTS:
            continue
        pharmacy = Organization.objects.filter(kind=OrganizationKind.PHARMACY, name_zh=spec.name_zh).first()
        staff = User.objects.filter(email=_email(STAFF[spec.key])).first()
        if pharmacy is None or staff is None or StockReceipt.objects.filter(pharmacy=pharmacy).exists():
            continue
        staff.forget_cached_roles()
        cases: list[str] = []
        for product in PRODUCTS[spec.key]:
            pack = DrugPack.objects.select_related("drug").filter(gtin=product.gtin).first()
            if pack is None:
                continue
            actions.set_price(staff, pharmacy.pk, pack.pk, Decimal(product.price))
            cases += _supply(admin, spec.key, pack, product, distributor)
        if cases:
            result = actions.receive_stock(staff, pharmacy.pk, cases)
            received += len(result.in_stock)
    return received
