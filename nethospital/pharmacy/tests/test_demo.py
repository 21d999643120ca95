"""The demo's pharmacy stock: received through real EPCIS events and the receiving action, clean
(no anomaly alert), with FEFO batches and China-coded boxes."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import translation

from nethospital.demo import data
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization
from nethospital.pharmacy import stock
from nethospital.pharmacy.models import Offer, StockReceipt
from nethospital.prescriptions.models import DrugPack
from nethospital.traceability.journey import journey_events, place_names
from nethospital.traceability.models import Alert, Pack

pytestmark = pytest.mark.django_db


def pharmacy(key: str) -> Organization:
    spec = next(s for s in data.ORGANISATIONS if s.key == key)
    return Organization.objects.get(kind=OrganizationKind.PHARMACY, name_zh=spec.name_zh)


def test_the_demo_pharmacies_hold_stock_received_by_scanning_cases():
    call_command("demo", stdout=io.StringIO())
    city, county = pharmacy("pharmacy_city"), pharmacy("pharmacy_county")
    assert StockReceipt.objects.filter(pharmacy=city).count() == 1
    assert StockReceipt.objects.filter(pharmacy=county).count() == 1
    rows = {row.drug_pack.gtin: row for row in stock.stock_by_product(city.pk)}
    amlodipine = rows["06920451100019"]
    assert (amlodipine.sellable, amlodipine.price) == (
        12,
        Offer.objects.get(pharmacy=city, drug_pack=amlodipine.drug_pack).price,
    )
    boxes = list(stock.sellable_packs(city.pk).filter(gtin="06920451100019").order_by("expiry"))
    assert boxes[0].batch.endswith("N1") and boxes[-1].batch.endswith("A1")  # FEFO has two batches to choose from
    paracetamol = DrugPack.objects.get(gtin="06930126108165")
    china_boxes = stock.sellable_packs(county.pk).filter(drug_pack=paracetamol)
    assert china_boxes.count() == 4 and all(
        p.identifier.startswith("urn:nethospital:cn-drug-code:") for p in china_boxes
    )
    assert not Alert.objects.exists()  # a clean supply chain raises nothing
    # A box's way: factory, distributor, pharmacy, all named.
    box = boxes[0]
    with translation.override("en"):
        names = place_names({event.biz_location for event, _container in journey_events(box.identifier)})
    assert "Zhejiang Yingji Pharma Logistics Centre (demo)" in names.values()
    assert city.name_en in names.values()
    assert Pack.objects.get(identifier=box.identifier).owner_id == city.pk
