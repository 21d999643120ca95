"""A small pharmacy world made through the real actions: two pharmacies with their pharmacists,
staff and couriers, a village station with its operator, products with prices, boxes made and
packed into a case by a factory (EPCIS events), received at pharmacy A by scanning the case, and an
approved prescription (the prescriptions app's ``clinic``: doctor, reviewing pharmacist, patient)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.core import clock
from nethospital.directory import actions as directory_actions
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization
from nethospital.pharmacy import actions
from nethospital.prescriptions import actions as rx_actions
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.models import Drug, DrugPack
from nethospital.prescriptions.tests.conftest import (
    NOON,
    SHANGHAI,
    catalogue,
    clinic,
)
from nethospital.testing import factories
from nethospital.traceability import codes, state
from nethospital.traceability.tests import trace_helpers

COMPANY = "0999992"
MADE = NOON - dt.timedelta(days=20)
SHIPPED = NOON - dt.timedelta(days=10)
_serials = itertools.count(5000)
_orgs = itertools.count(1)

__all__ = ["MADE", "NOON", "SHANGHAI", "SHIPPED", "catalogue", "clinic"]


def gtin_of(item_ref: str) -> str:
    body = "0" + COMPANY + item_ref
    return body + state.gs1_check_digit(body)


def drug_pack(drug: Drug, item_ref: str, china_prefix: str, pack_size: int | None = None) -> DrugPack:
    return DrugPack.objects.create(
        drug=drug, gtin=gtin_of(item_ref), china_prefix=china_prefix, pack_size=pack_size or drug.pack_size
    )


def box_urn(pack: DrugPack, serial: str | None = None) -> str:
    return codes.sgtin_urn(pack.gtin, serial or str(next(_serials)))


def element_string(identifier: str, *, batch: str = "", expiry: dt.date | None = None) -> str:
    """What a DataMatrix scanner types for a box: ``]d2`` 01 GTIN 17 expiry 10 batch GS 21 serial."""
    parsed = codes.parse(identifier, lookup=False)
    text = f"]d201{parsed.gtin}"
    if expiry:
        text += f"17{expiry:%y%m%d}"
    if batch:
        text += f"10{batch}\x1d"
    return text + f"21{parsed.serial}"


def sscc_urn() -> str:
    return trace_helpers.sscc()


def manufacture(pack: DrugPack, count: int, *, batch: str, expiry: str, time: dt.datetime = MADE) -> list[str]:
    """Boxes commissioned at the factory (their batch and expiry in the ILMD)."""
    boxes = [box_urn(pack) for _ in range(count)]
    trace_helpers.commission(boxes, time=time, batch=batch, expiry=expiry)
    return boxes


def case_of(boxes: list[str], *, time: dt.datetime = MADE + dt.timedelta(hours=1)) -> str:
    """The boxes packed into a case (SSCC) and shipped from the factory."""
    case = sscc_urn()
    trace_helpers.pack_into(case, boxes, time=time)
    trace_helpers.ship([case], time=SHIPPED)
    return case


def organisation(kind: str, name: str, parent: Organization | None = None) -> Organization:
    n = next(_orgs)
    return directory_actions.create_organization(
        None,
        kind=kind,
        name_zh=f"{name}{n}",
        name_en=f"{name} {n}",
        licence_number=f"T-PH-{n:05d}" if kind == OrganizationKind.PHARMACY else "",
        province="北京市",
        city="北京",
        parent=parent,
    )


def staff(role: str, organization: Organization, *, mfa: bool = True, name: str = "") -> User:
    user = factories.staff_user(display_name=name or role)
    account_actions.grant_role(trace_helpers.platform_admin(), user, role, organization_id=organization.pk)
    user.forget_cached_roles()
    user.is_mfa_verified = mfa
    return user


def approved_prescription(clinic, drug: str = "t-amlodipine-5", rx_fields=None, **item_fields):  # type: ignore[no-untyped-def]
    """Written, signed and approved through the real actions (R8, R10)."""
    doctor = clinic["doctor"].user
    rx = rx_actions.create_prescription(doctor, clinic["consultation"].pk, **(rx_fields or {}))
    fields = {"dose": "1", "frequency": "qd", "days": 7, **item_fields}
    rx_actions.set_items(doctor, rx.pk, [ItemInput(drug=drug, **fields)])
    rx_actions.sign_prescription(doctor, rx.pk)
    rx_actions.review_prescription(clinic["pharmacist"], rx.pk, "approve")
    rx.refresh_from_db()
    return rx


@pytest.fixture
def world(clinic, city_hospital):  # type: ignore[no-untyped-def]
    """Pharmacy A holds 6 boxes of amlodipine (2 of batch EARLY expiring 2027-01-31, 4 of batch LATE
    expiring 2028-06-30) received in one case, and 3 boxes of an OTC drug; pharmacy B holds 2 boxes
    of amlodipine. The patient has an approved prescription for one box of amlodipine."""
    with clock.frozen(NOON):
        drugs = clinic["drugs"]
        loratadine = Drug.objects.create(
            code="t-loratadine-10",
            generic_name_zh="氯雷他定片",
            generic_name_en="loratadine tablets",
            dosage_form="tablet",
            strength="10 mg",
            strength_value=Decimal("10"),
            strength_unit="mg",
            unit="tablet",
            pack_size=6,
            route="oral",
            is_prescription=False,
            therapeutic_class=drugs["amlodipine"].therapeutic_class,
        )
        amlodipine = drug_pack(drugs["amlodipine"], "20001", "8999101")
        simvastatin = drug_pack(drugs["simvastatin"], "20002", "8999102")
        otc = drug_pack(loratadine, "20003", "8999103")
        pharmacy_a = organisation(OrganizationKind.PHARMACY, "Pharmacy A")
        pharmacy_b = organisation(OrganizationKind.PHARMACY, "Pharmacy B")
        station = organisation(OrganizationKind.SERVICE_STATION, "Village Station", parent=city_hospital)
        other_station = organisation(OrganizationKind.SERVICE_STATION, "Other Station", parent=city_hospital)
        people = {
            "pharmacist_a": staff(Role.PHARMACIST, pharmacy_a, name="药师甲"),
            "staff_a": staff(Role.PHARMACY_STAFF, pharmacy_a, mfa=False, name="店员甲"),
            "courier_a": staff(Role.COURIER, pharmacy_a, mfa=False, name="骑手甲"),
            "courier_a2": staff(Role.COURIER, pharmacy_a, mfa=False, name="骑手乙"),
            "pharmacist_b": staff(Role.PHARMACIST, pharmacy_b, name="药师乙"),
            "staff_b": staff(Role.PHARMACY_STAFF, pharmacy_b, mfa=False),
            "courier_b": staff(Role.COURIER, pharmacy_b, mfa=False),
            "operator": staff(Role.STATION_OPERATOR, station, mfa=False, name="站长"),
            "other_operator": staff(Role.STATION_OPERATOR, other_station, mfa=False),
        }
        for pharmacy, pack, price in (
            (pharmacy_a, amlodipine, "32.50"),
            (pharmacy_a, simvastatin, "18.00"),
            (pharmacy_a, otc, "12.80"),
            (pharmacy_b, amlodipine, "30.00"),
        ):
            staff_user = people["staff_a"] if pharmacy == pharmacy_a else people["staff_b"]
            actions.set_price(staff_user, pharmacy.pk, pack.pk, price)
        early = manufacture(amlodipine, 2, batch="EARLY", expiry="2027-01-31")
        late = manufacture(amlodipine, 4, batch="LATE", expiry="2028-06-30")
        case = case_of(early + late)
        otc_boxes = manufacture(otc, 3, batch="OTC1", expiry="2028-01-31")
        trace_helpers.ship(otc_boxes, time=SHIPPED)
        b_boxes = manufacture(amlodipine, 2, batch="LATE", expiry="2028-06-30")
        trace_helpers.ship(b_boxes, time=SHIPPED)
        actions.receive_stock(people["staff_a"], pharmacy_a.pk, [case, *otc_boxes])
        actions.receive_stock(people["staff_b"], pharmacy_b.pk, b_boxes)
        rx = approved_prescription(clinic)
    return {
        **clinic,
        **people,
        "pharmacy_a": pharmacy_a,
        "pharmacy_b": pharmacy_b,
        "station": station,
        "other_station": other_station,
        "amlodipine": amlodipine,
        "simvastatin": simvastatin,
        "otc": otc,
        "early": early,
        "late": late,
        "case": case,
        "otc_boxes": otc_boxes,
        "b_boxes": b_boxes,
        "rx": rx,
    }
