"""A pharmacy's stock, read from the traceability repository (R19): no scan at receiving, no sale.

A box is *sellable* stock of a pharmacy when its ``Pack`` row is owned by the pharmacy, in status
``received``, was commissioned by a manufacturer (a code nobody issued is not stock, R20), is not a
case or pallet, is not past its expiry date, and its batch is not recalled. Boxes received but
expired or recalled are still on the shelf until they are taken off: they are listed apart.

*Available* is sellable stock less the boxes that open orders (waiting for payment or for the
pharmacist) have reserved. *FEFO* (first expiry, first out) is the picking suggestion for an order
line: the sellable boxes of its product, earliest expiry first, that no other order has scanned.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, F, Min, OuterRef, QuerySet, Sum
from django.utils import timezone

from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.pharmacy import errors
from nethospital.pharmacy.choices import OPEN_STATUSES
from nethospital.pharmacy.models import DispenseScan, Offer, OrderLine
from nethospital.prescriptions.models import DrugPack, Prescription, PrescriptionItem
from nethospital.traceability.choices import PackStatus
from nethospital.traceability.models import Pack, Recall


def _today(at: dt.datetime | None = None) -> dt.date:
    return timezone.localdate(at or clock.now())


def _on_shelf(pharmacy_id: int) -> QuerySet[Pack]:
    return Pack.objects.filter(
        owner_id=pharmacy_id, status=PackStatus.RECEIVED, is_container=False, commissioned_at__isnull=False
    ).annotate(is_recalled=Exists(Recall.objects.filter(gtin=OuterRef("gtin"), batch=OuterRef("batch"))))


def sellable_packs(pharmacy_id: int, at: dt.datetime | None = None) -> QuerySet[Pack]:
    """The boxes this pharmacy may sell now (see the module's docstring)."""
    return (
        _on_shelf(pharmacy_id)
        .filter(is_recalled=False, drug_pack__isnull=False)  # type: ignore[misc]
        .exclude(expiry__lt=_today(at))
        .select_related("drug_pack__drug")
    )


def unsellable_packs(pharmacy_id: int, at: dt.datetime | None = None) -> QuerySet[Pack]:
    """Boxes on the shelf that must not be sold: expired or of a recalled batch."""
    from django.db.models import Q

    return (
        _on_shelf(pharmacy_id)
        .filter(Q(is_recalled=True) | Q(expiry__lt=_today(at)))  # type: ignore[misc]
        .select_related("drug_pack__drug")
        .order_by("gtin", "batch", "identifier")
    )


def reserved_by_open_orders(pharmacy_id: int) -> dict[int, int]:
    """Boxes per drug pack that open orders of this pharmacy hold."""
    rows = (
        OrderLine.objects.filter(order__pharmacy_id=pharmacy_id, order__status__in=OPEN_STATUSES)
        .values("drug_pack_id")
        .annotate(boxes=Sum("quantity"))
    )
    return {row["drug_pack_id"]: int(row["boxes"] or 0) for row in rows}


def sellable_counts(pharmacy_id: int, at: dt.datetime | None = None) -> dict[int, int]:
    rows = sellable_packs(pharmacy_id, at).values("drug_pack_id").annotate(boxes=Count("pk"))
    return {row["drug_pack_id"]: int(row["boxes"]) for row in rows}


def available(pharmacy_id: int, drug_pack_id: int, at: dt.datetime | None = None) -> int:
    on_shelf = sellable_packs(pharmacy_id, at).filter(drug_pack_id=drug_pack_id).count()
    return max(0, on_shelf - reserved_by_open_orders(pharmacy_id).get(drug_pack_id, 0))


@dataclass(frozen=True)
class ProductStock:
    drug_pack: DrugPack
    sellable: int
    reserved: int
    earliest_expiry: dt.date | None
    price: Decimal | None
    on_sale: bool

    @property
    def available(self) -> int:
        return max(0, self.sellable - self.reserved)


def stock_by_product(pharmacy_id: int, at: dt.datetime | None = None) -> list[ProductStock]:
    """One row per product the pharmacy holds or offers: sellable boxes, reserved, earliest expiry."""
    rows = {
        row["drug_pack_id"]: row
        for row in sellable_packs(pharmacy_id, at)
        .values("drug_pack_id")
        .annotate(boxes=Count("pk"), earliest=Min("expiry"))
    }
    offers = {o.drug_pack_id: o for o in Offer.objects.filter(pharmacy_id=pharmacy_id)}
    reserved = reserved_by_open_orders(pharmacy_id)
    ids = set(rows) | set(offers)
    packs = DrugPack.objects.filter(pk__in=ids).select_related("drug")
    result = []
    for pack in packs:
        row = rows.get(pack.pk, {})
        offer = offers.get(pack.pk)
        result.append(
            ProductStock(
                drug_pack=pack,
                sellable=int(row.get("boxes", 0)),
                reserved=reserved.get(pack.pk, 0),
                earliest_expiry=row.get("earliest"),
                price=offer.price if offer else None,
                on_sale=bool(offer and offer.is_active),
            )
        )
    return sorted(result, key=lambda s: (s.drug_pack.drug.generic_name_en, s.drug_pack.gtin))


def suggestion_for(line: OrderLine, pharmacy_id: int, *, limit: int | None = None) -> list[Pack]:
    """FEFO: the sellable boxes of the line's product, earliest expiry first, that no live scan holds."""
    taken = DispenseScan.objects.filter(released_at__isnull=True, gtin=line.drug_pack.gtin).values("identifier")
    boxes = (
        sellable_packs(pharmacy_id)
        .filter(drug_pack_id=line.drug_pack_id)
        .exclude(identifier__in=taken)
        .order_by(F("expiry").asc(nulls_last=True), "received_at", "identifier")
    )
    return list(boxes[: limit if limit is not None else line.quantity])


# --- what a pharmacy can supply for a prescription -------------------------------------------------
def choose_pack(pharmacy_id: int, item: PrescriptionItem, reserved_now: Counter[int]) -> tuple[Offer, int]:
    """The pharmacy's pack of the prescribed drug that covers the prescribed quantity (in units: the
    item's packs are of the drug's pack size), and how many boxes: the drug's own pack size first,
    then the one wasting least, among those with enough boxes available. Raises the reason if none."""
    drug = item.drug
    units = item.quantity * drug.pack_size
    offers = list(
        Offer.objects.filter(pharmacy_id=pharmacy_id, drug_pack__drug=drug, is_active=True).select_related(
            "drug_pack__drug"
        )
    )
    if not offers:
        raise DomainError(errors.NOT_SOLD_HERE, field="items", product=str(drug))
    candidates = []
    for offer in offers:
        boxes = math.ceil(units / offer.drug_pack.pack_size)
        left = available(pharmacy_id, offer.drug_pack_id) - reserved_now[offer.drug_pack_id]
        waste = boxes * offer.drug_pack.pack_size - units
        candidates.append((offer.drug_pack.pack_size != drug.pack_size, waste, offer.pk, offer, boxes, left))
    candidates.sort(key=lambda c: c[:3])
    for *_rank, offer, boxes, left in candidates:
        if left >= boxes:
            return offer, boxes
    raise DomainError(errors.NOT_ENOUGH_STOCK, field="items", product=str(drug), available=max(0, candidates[0][5]))


@dataclass(frozen=True)
class PlanLine:
    item: PrescriptionItem
    offer: Offer
    boxes: int

    @property
    def amount(self) -> Decimal:
        return self.offer.price * self.boxes


@dataclass(frozen=True)
class SupplyPlan:
    """Whether a pharmacy can supply a whole prescription now, what and for how much, or why not."""

    pharmacy_id: int
    lines: list[PlanLine]
    refusal: str = ""

    @property
    def can_supply(self) -> bool:
        return not self.refusal

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


def supply_plan(pharmacy_id: int, prescription: Prescription) -> SupplyPlan:
    reserved_now: Counter[int] = Counter()
    lines: list[PlanLine] = []
    for item in prescription.items.select_related("drug").order_by("position"):
        try:
            offer, boxes = choose_pack(pharmacy_id, item, reserved_now)
        except DomainError as exc:
            return SupplyPlan(pharmacy_id, lines, exc.message)
        reserved_now[offer.drug_pack_id] += boxes
        lines.append(PlanLine(item, offer, boxes))
    return SupplyPlan(pharmacy_id, lines)


def otc_offers(pharmacy_id: int) -> list[tuple[Offer, int]]:
    """Non-prescription products on sale at the pharmacy with the boxes available of each (three queries,
    however many products: the offers, the sellable boxes and the reserved ones, each grouped)."""
    offers = Offer.objects.filter(pharmacy_id=pharmacy_id, is_active=True, drug_pack__drug__is_prescription=False)
    listed = list(offers.select_related("drug_pack__drug").order_by("drug_pack__drug__generic_name_en"))
    if not listed:
        return []
    on_shelf = sellable_counts(pharmacy_id)
    reserved = reserved_by_open_orders(pharmacy_id)
    result = []
    for offer in listed:
        left = max(0, on_shelf.get(offer.drug_pack_id, 0) - reserved.get(offer.drug_pack_id, 0))
        if left > 0:
            result.append((offer, left))
    return result
