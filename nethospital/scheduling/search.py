"""Finding a doctor (issue: directory search). Objective ordering only — relevance, next free slot,
rating, title — and no paid placement: nothing here reads money."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Exists, F, OuterRef, Q, Subquery

from nethospital.core import clock
from nethospital.directory.choices import Title
from nethospital.directory.models import Practitioner
from nethospital.directory.rules import bookable_practitioners
from nethospital.scheduling.choices import SlotStatus
from nethospital.scheduling.models import Slot
from nethospital.scheduling.symptoms import specialties_for

TITLE_RANK = {title.value: rank for rank, title in enumerate(Title)}
ORDERINGS = ("relevance", "next_free", "title")


@dataclass
class SearchQuery:
    text: str = ""
    hospital_id: int | None = None
    department_code: str = ""
    city: str = ""
    title: str = ""
    specialty: str = ""
    modality: str = ""
    free_within_days: int | None = None
    order: str = "relevance"


@dataclass
class DoctorHit:
    practitioner: Practitioner
    relevance: int
    next_free: dt.datetime | None
    matched_by_symptom: list[str] = field(default_factory=list)


def free_slots(now: dt.datetime | None = None):  # type: ignore[no-untyped-def]
    now = now or clock.now()
    return Slot.objects.filter(
        status=SlotStatus.OPEN, booked_count__lt=F("capacity"), starts_at__gt=now, release_at__lte=now
    )


def search_doctors(query: SearchQuery, *, limit: int = 50) -> list[DoctorHit]:
    now = clock.now()
    qs = (
        bookable_practitioners()
        .filter(profession="physician")
        .select_related("primary_institution", "department", "user")
        .prefetch_related("specialties")
    )
    if query.hospital_id:
        qs = qs.filter(
            Q(primary_institution_id=query.hospital_id) | Q(primary_institution__internet_hospitals=query.hospital_id)
        )
    if query.city:
        qs = qs.filter(primary_institution__city__icontains=query.city[:40])
    if query.title:
        qs = qs.filter(title=query.title)
    if query.department_code:
        qs = qs.filter(department__code=query.department_code)
    if query.specialty:
        qs = qs.filter(specialties__code=query.specialty)
    # A filter on visit type or "free within N days" counts only slots a patient could book now:
    # open, released, in the future, with a free place (never past, closed or full ones).
    slots = free_slots(now).filter(practitioner=OuterRef("pk"))
    if query.modality:
        slots = slots.filter(modality=query.modality)
    if query.free_within_days is not None:
        slots = slots.filter(starts_at__lte=now + dt.timedelta(days=query.free_within_days))
    if query.modality or query.free_within_days is not None:
        qs = qs.filter(Exists(slots))
    first_free = free_slots(now).filter(practitioner=OuterRef("pk"))
    if query.modality:
        first_free = first_free.filter(modality=query.modality)
    qs = qs.annotate(next_free=Subquery(first_free.order_by("starts_at").values("starts_at")[:1]))
    symptom_codes = specialties_for(query.text)
    text = query.text.strip()[:50]
    if text:
        text_match = (
            Q(legal_name__icontains=text)
            | Q(department__name_zh__icontains=text)
            | Q(department__name_en__icontains=text)
            | Q(specialties__name_zh__icontains=text)
            | Q(specialties__name_en__icontains=text)
            | Q(primary_institution__name_zh__icontains=text)
            | Q(primary_institution__name_en__icontains=text)
        )
        if symptom_codes:
            text_match |= Q(specialties__code__in=symptom_codes) | Q(department__code__in=symptom_codes)
        qs = qs.filter(text_match)
    hits = []
    for p in qs.distinct()[:500]:
        codes = [s.code for s in p.specialties.all()]
        relevance = 0
        if text:
            lowered = text.lower()
            if lowered in p.legal_name.lower():
                relevance += 3
            if p.department and (lowered in p.department.name_zh.lower() or lowered in p.department.name_en.lower()):
                relevance += 2
            matched = [c for c in symptom_codes if c in codes or (p.department and p.department.code == c)]
            if matched:
                relevance += 2 + (len(symptom_codes) - symptom_codes.index(matched[0]))
        else:
            matched = []
        hits.append(DoctorHit(p, relevance, getattr(p, "next_free", None), matched))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    if query.order == "next_free":
        hits.sort(key=lambda h: (h.next_free or far, TITLE_RANK.get(h.practitioner.title, 99), h.practitioner.pk))
    elif query.order == "title":
        hits.sort(key=lambda h: (TITLE_RANK.get(h.practitioner.title, 99), h.next_free or far, h.practitioner.pk))
    else:
        hits.sort(
            key=lambda h: (
                -h.relevance,
                h.next_free or far,
                TITLE_RANK.get(h.practitioner.title, 99),
                h.practitioner.pk,
            )
        )
    return hits[:limit]


def next_free_by_modality(practitioner: Practitioner, *, per_modality: int = 5) -> dict[str, list[Slot]]:
    result: dict[str, list[Slot]] = {}
    for slot in free_slots().filter(practitioner=practitioner).order_by("starts_at")[:200]:
        bucket = result.setdefault(slot.modality, [])
        if len(bucket) < per_modality:
            bucket.append(slot)
    return result
