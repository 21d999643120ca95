"""Test helpers for pack state, anomalies, recalls and verification.

Events are stored as the capture stores them (an ``EPCISEvent`` row with the document, and one
``EventIdentifier`` per identifier with its canonical URN), then ``state.apply_events`` is called in
a transaction as the capture does. Products get test GTINs under company prefix 0999990 and China
prefixes 89990xx, far from the seeded catalogue.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Role
from nethospital.accounts.models import Patient, User
from nethospital.directory import actions as directory_actions
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization
from nethospital.prescriptions.models import Drug, DrugClass, DrugPack, Ingredient
from nethospital.testing import factories
from nethospital.traceability import state
from nethospital.traceability.choices import EPCRole, EventType
from nethospital.traceability.models import EPCISEvent, EventIdentifier, Pack

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
COMPANY = "0999990"
FACTORY = "urn:epc:id:sgln:0999990.00001.0"
WAREHOUSE = "urn:epc:id:sgln:0999990.00002.0"
_serials = itertools.count(1000)
_events = itertools.count(1)


def gtin_of(item_ref: str, indicator: str = "0") -> str:
    body = indicator + COMPANY + item_ref
    return body + state.gs1_check_digit(body)


def sgtin(item_ref: str = "10001", serial: str | None = None, indicator: str = "0") -> str:
    return f"urn:epc:id:sgtin:{COMPANY}.{indicator}{item_ref}.{serial or next(_serials)}"


def sscc(serial_ref: str | None = None) -> str:
    return f"urn:epc:id:sscc:{COMPANY}.{serial_ref or str(next(_serials)).zfill(10)}"


def china(prefix: str, serial: str | None = None) -> str:
    return f"urn:nethospital:cn-drug-code:{prefix}{(serial or str(next(_serials))).zfill(13)}"


def product(item_ref: str = "10001", china_prefix: str = "8999001", **drug_fields: Any) -> DrugPack:
    """A catalogued drug pack with the test GTIN of ``item_ref``."""
    klass = DrugClass.objects.get_or_create(code="t-trace-ccb", defaults={"name_en": "ccb", "name_zh": "钙通道阻滞剂"})[
        0
    ]
    ingredient = Ingredient.objects.get_or_create(
        code="t-trace-amlodipine", defaults={"name_en": "amlodipine", "name_zh": "氨氯地平"}
    )[0]
    values = {
        "generic_name_zh": "苯磺酸氨氯地平片",
        "generic_name_en": "amlodipine besylate tablets",
        "brand": "测试牌",
        "manufacturer": "测试制药有限公司",
        "dosage_form": "tablet",
        "strength": "5 mg",
        "strength_value": Decimal("5"),
        "strength_unit": "mg",
        "unit": "tablet",
        "pack_size": 28,
        "route": "oral",
        "therapeutic_class": klass,
    }
    values.update(drug_fields)
    drug = Drug.objects.create(code=f"t-trace-{item_ref}", **values)
    drug.ingredients.add(ingredient)
    return DrugPack.objects.create(drug=drug, gtin=gtin_of(item_ref), china_prefix=china_prefix, pack_size=28)


def pharmacy(name_en: str = "Test Pharmacy", city: str = "北京") -> Organization:
    n = next(_events)
    return directory_actions.create_organization(
        None,
        kind=OrganizationKind.PHARMACY,
        name_zh=f"测试药房{n}",
        name_en=f"{name_en} {n}",
        licence_number=f"PH{n:08d}",
        province="北京市",
        city=city,
    )


def platform_admin() -> User:
    admin = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser(
        email=f"root-trace{next(_events)}@example.org", password=factories.DEFAULT_PASSWORD
    )
    admin.is_mfa_verified = True
    return admin


def staff(role: str, organization: Organization | None = None, *, mfa: bool = True) -> User:
    user = factories.staff_user(display_name=role)
    account_actions.grant_role(
        platform_admin(), user, role, organization_id=organization.pk if organization is not None else None
    )
    user.forget_cached_roles()
    user.is_mfa_verified = mfa
    return user


def regulator(*, mfa: bool = True) -> User:
    return staff(Role.REGULATOR, mfa=mfa)


def event(
    *,
    event_type: str = EventType.OBJECT,
    action: str = "OBSERVE",
    biz_step: str = "",
    disposition: str = "",
    location: str = "",
    time: dt.datetime = T0,
    epcs: tuple[str, ...] | list[str] = (),
    parent: str = "",
    children: tuple[str, ...] | list[str] = (),
    quantities: tuple[str, ...] | list[str] = (),
    ilmd: dict[str, Any] | None = None,
    event_id: str | None = None,
    extra: dict[str, Any] | None = None,
    bare: bool = False,
) -> EPCISEvent:
    """Store one event as the capture would (full CBV URIs unless ``bare``, the identifier index)."""
    step_uri = state.BIZSTEP_URI + biz_step if biz_step and ":" not in biz_step and not bare else biz_step
    disposition_uri = (
        state.DISPOSITION_URI + disposition if disposition and ":" not in disposition and not bare else disposition
    )
    document: dict[str, Any] = {"type": event_type, "eventTime": time.isoformat(), "eventTimeZoneOffset": "+08:00"}
    if action:
        document["action"] = action
    if step_uri:
        document["bizStep"] = step_uri
    if disposition_uri:
        document["disposition"] = disposition_uri
    if location:
        document["bizLocation"] = {"id": location}
    if epcs:
        document["epcList"] = list(epcs)
    if parent:
        document["parentID"] = parent
    if children:
        document["childEPCs"] = list(children)
    if quantities:
        document["quantityList"] = [{"epcClass": q, "quantity": 1} for q in quantities]
    if ilmd:
        document["ilmd"] = ilmd
    document.update(extra or {})
    row = EPCISEvent.objects.create(
        event_id=event_id or f"urn:uuid:00000000-0000-4000-8000-{next(_events):012d}",
        event_type=event_type,
        event_time=time,
        event_timezone_offset="+08:00",
        record_time=time,
        action=action,
        biz_step=step_uri,
        disposition=disposition_uri,
        biz_location=location,
        product_code="",
        document=document,
    )
    named = [(EPCRole.EPC, i) for i in epcs] + [(EPCRole.CHILD, i) for i in children]
    if parent:
        named.insert(0, (EPCRole.PARENT, parent))
    named += [(EPCRole.QUANTITY, q) for q in quantities]
    EventIdentifier.objects.bulk_create(
        [
            EventIdentifier(
                event=row,
                role=role,
                identifier=identifier,
                gtin=(code.gtin if (code := state.describe_identifier(identifier)) else ""),
                product_code=(code.product_code if code else ""),
            )
            for role, identifier in named
        ]
    )
    return row


def capture(*events: EPCISEvent) -> None:
    """What the capture does after storing the rows: apply them in record order, in its transaction."""
    with transaction.atomic():
        state.apply_events(list(events))


def commission(
    epcs: list[str] | tuple[str, ...],
    *,
    time: dt.datetime = T0,
    batch: str = "LOT1",
    expiry: str = "2028-06-30",
    location: str = FACTORY,
) -> EPCISEvent:
    ilmd = {"cbvmda:lotNumber": batch, "cbvmda:itemExpirationDate": expiry} if batch else None
    row = event(
        action="ADD", biz_step="commissioning", disposition="active", location=location, time=time, epcs=epcs, ilmd=ilmd
    )
    capture(row)
    return row


def pack_into(
    parent: str, children: list[str] | tuple[str, ...], *, time: dt.datetime, location: str = FACTORY
) -> EPCISEvent:
    row = event(
        event_type=EventType.AGGREGATION,
        action="ADD",
        biz_step="packing",
        disposition="container_closed",
        location=location,
        time=time,
        parent=parent,
        children=children,
    )
    capture(row)
    return row


def unpack(
    parent: str, children: list[str] | tuple[str, ...] = (), *, time: dt.datetime, location: str = ""
) -> EPCISEvent:
    row = event(
        event_type=EventType.AGGREGATION,
        action="DELETE",
        biz_step="unpacking",
        disposition="container_open",
        location=location,
        time=time,
        parent=parent,
        children=children,
    )
    capture(row)
    return row


def scan(
    step: state.CBVStep, epcs: list[str] | tuple[str, ...], *, time: dt.datetime, location: str = ""
) -> EPCISEvent:
    row = event(
        action=step.action,
        biz_step=step.biz_step,
        disposition=step.disposition,
        location=location,
        time=time,
        epcs=epcs,
    )
    capture(row)
    return row


def ship(epcs: list[str] | tuple[str, ...], *, time: dt.datetime) -> EPCISEvent:
    return scan(state.SHIPPING, epcs, time=time)


def receive(epcs: list[str] | tuple[str, ...], org: Organization, *, time: dt.datetime) -> EPCISEvent:
    return scan(state.PHARMACY_RECEIVING, epcs, time=time, location=state.location_uri_for(org))


def dispense(epcs: list[str] | tuple[str, ...], org: Organization, *, time: dt.datetime) -> EPCISEvent:
    return scan(state.PHARMACY_DISPENSING, epcs, time=time, location=state.location_uri_for(org))


def pack_of(identifier: str) -> Pack:
    return Pack.objects.get(identifier=identifier)


# The pharmacy's dispensing record, as the hook contract in recalls.py describes it: tests say here
# who received which box (``recipients`` fixture, used by every traceability test module).
RECIPIENTS: dict[str, Patient] = {}


def patients_for_packs(identifiers: Sequence[str]) -> Mapping[str, Patient]:
    return {i: RECIPIENTS[i] for i in identifiers if i in RECIPIENTS}


@pytest.fixture(name="recipients", autouse=True)
def recipients_fixture(settings: Any) -> Iterator[dict[str, Patient]]:
    settings.NETHOSPITAL_TRACE_RECIPIENTS = f"{__name__}.patients_for_packs"
    RECIPIENTS.clear()
    yield RECIPIENTS
    RECIPIENTS.clear()


@pytest.fixture(name="drug_pack")
def drug_pack_fixture(db: Any) -> DrugPack:
    return product()


@pytest.fixture(name="pharmacy_a")
def pharmacy_a_fixture(db: Any) -> Organization:
    return pharmacy("Pharmacy A")


@pytest.fixture(name="pharmacy_b")
def pharmacy_b_fixture(db: Any) -> Organization:
    return pharmacy("Pharmacy B", city="上海")
