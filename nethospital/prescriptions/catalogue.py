"""The drug catalogue from CSV files (issue 5 point 1): every row checked first, then one import.

A catalogue directory holds up to five UTF-8 CSV files with a header row:

- ``drug_classes.csv``  code, name_en, name_zh
- ``ingredients.csv``   code, name_en, name_zh, allergy_class (a class code or empty)
- ``drugs.csv``         code, generic names, brand, manufacturer, dosage_form, strength, strength_value,
  strength_unit, unit, pack_size, route, is_prescription, control_class, antibiotic_tier, ingredients
  (codes separated by ``|``), therapeutic_class, max_daily_dose (in strength_unit per day, empty if none),
  paediatric_use. For a combination product, strength_value and max_daily_dose are those of the first
  ingredient (amoxicillin in amoxicillin/clavulanate).
- ``packs.csv``         drug, gtin (GTIN-14 with a valid GS1 check digit), china_prefix (the 7-digit
  product prefix of China's 20-digit traceability code, R19), pack_size
- ``interactions.csv``  ingredient_a, ingredient_b, severity, effect_en, effect_zh

``import_catalogue`` checks every row and reports each problem by file, line and column. If there is
any problem nothing is written; otherwise everything is written in one transaction, keyed by code
(GTIN for packs, the ingredient pair for interactions), so importing the same files again changes
nothing. Rows missing from the files are left alone: a drug leaves the catalogue by ``is_active``,
never by deletion, because prescriptions refer to it.

The same code loads the packaged seed (``DATA_DIR``) in migration 0002 with the migration's
historical models (``CatalogueModels.from_apps``), so it uses only plain fields and managers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from django.db import DEFAULT_DB_ALIAS, transaction

from nethospital.prescriptions.choices import (
    AntibioticTier,
    ControlClass,
    DosageForm,
    InteractionSeverity,
    PaediatricUse,
    Route,
)

DATA_DIR = Path(__file__).resolve().parent / "data"

CLASSES = "drug_classes.csv"
INGREDIENTS = "ingredients.csv"
DRUGS = "drugs.csv"
PACKS = "packs.csv"
INTERACTIONS = "interactions.csv"

COLUMNS: dict[str, tuple[str, ...]] = {
    CLASSES: ("code", "name_en", "name_zh"),
    INGREDIENTS: ("code", "name_en", "name_zh", "allergy_class"),
    DRUGS: (
        "code",
        "generic_name_zh",
        "generic_name_en",
        "brand",
        "manufacturer",
        "dosage_form",
        "strength",
        "strength_value",
        "strength_unit",
        "unit",
        "pack_size",
        "route",
        "is_prescription",
        "control_class",
        "antibiotic_tier",
        "ingredients",
        "therapeutic_class",
        "max_daily_dose",
        "paediatric_use",
    ),
    PACKS: ("drug", "gtin", "china_prefix", "pack_size"),
    INTERACTIONS: ("ingredient_a", "ingredient_b", "severity", "effect_en", "effect_zh"),
}

_DIGITS = re.compile(r"[0-9]+")
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


class Writer(Protocol):
    """Where progress goes: a text stream or a management command's ``self.stdout``."""

    def write(self, text: str, /) -> object: ...


# --- GS1 and China traceability identifiers (R19) ------------------------------------------------
def gtin_check_digit(body: str) -> int:
    """The GS1 check digit for ``body`` (all digits of a GTIN but the last): from the right, the
    digits are weighted 3, 1, 3, 1, ... and the check digit brings the sum to a multiple of 10."""
    if not _DIGITS.fullmatch(body):
        raise ValueError(f"not a string of digits: {body!r}")
    total = sum(int(digit) * (3 if position % 2 == 0 else 1) for position, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    """A GTIN-8, -12, -13 or -14 with the right check digit."""
    return (
        isinstance(code, str)
        and len(code) in (8, 12, 13, 14)
        and bool(_DIGITS.fullmatch(code))
        and gtin_check_digit(code[:-1]) == int(code[-1])
    )


def gtin_problem(value: str) -> str | None:
    """Why ``value`` is not a GTIN-14 the catalogue can store, or None."""
    if not _DIGITS.fullmatch(value):
        return f"{value!r} is not a GTIN: only digits are allowed"
    if len(value) != 14:
        hint = " (write a GTIN-13 with a leading 0)" if len(value) in (8, 12, 13) else ""
        return f"{value!r} has {len(value)} digits; a GTIN here has 14{hint}"
    expected = gtin_check_digit(value[:-1])
    if expected != int(value[-1]):
        return f"{value!r} has a wrong check digit: {value[-1]}, expected {expected}"
    return None


def china_prefix_problem(value: str) -> str | None:
    """Why ``value`` is not the 7-digit product prefix of a China traceability code, or None."""
    if len(value) != 7 or not _DIGITS.fullmatch(value):
        return f"{value!r} is not a traceability-code prefix: it has exactly 7 digits"
    return None


# --- reports and errors -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RowError:
    """One problem in one place: file, line (the header is line 1), column."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}, {self.field}: {self.message}"


class CatalogueError(Exception):
    """The files have problems; nothing was imported."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} problem(s) in the catalogue files; nothing was imported.\n{shown}{more}")


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


@dataclass
class ImportReport:
    directory: Path
    classes: Counts = field(default_factory=Counts)
    ingredients: Counts = field(default_factory=Counts)
    drugs: Counts = field(default_factory=Counts)
    packs: Counts = field(default_factory=Counts)
    interactions: Counts = field(default_factory=Counts)

    def lines(self) -> list[str]:
        parts = [
            ("drug classes", self.classes),
            ("ingredients", self.ingredients),
            ("drugs", self.drugs),
            ("packs", self.packs),
            ("interactions", self.interactions),
        ]
        return [f"{name}: {c.created} created, {c.updated} updated, {c.unchanged} unchanged" for name, c in parts]

    @property
    def changed(self) -> bool:
        return any(
            c.created or c.updated for c in (self.classes, self.ingredients, self.drugs, self.packs, self.interactions)
        )


@dataclass(frozen=True)
class CatalogueModels:
    """The model classes to write: the current ones, or a migration's historical ones."""

    drug_class: Any
    ingredient: Any
    drug: Any
    drug_pack: Any
    interaction: Any

    @classmethod
    def current(cls) -> CatalogueModels:
        from nethospital.prescriptions import models

        return cls(models.DrugClass, models.Ingredient, models.Drug, models.DrugPack, models.Interaction)

    @classmethod
    def from_apps(cls, apps: Any) -> CatalogueModels:
        return cls(*(apps.get_model("prescriptions", name) for name in _MODEL_NAMES))


_MODEL_NAMES = ("DrugClass", "Ingredient", "Drug", "DrugPack", "Interaction")


# --- parsed rows -----------------------------------------------------------------------------------
@dataclass
class _ClassRow:
    line: int
    code: str
    values: dict[str, Any]


@dataclass
class _IngredientRow:
    line: int
    code: str
    values: dict[str, Any]
    allergy_class: str | None


@dataclass
class _DrugRow:
    line: int
    code: str
    values: dict[str, Any]
    ingredients: list[str]
    therapeutic_class: str


@dataclass
class _PackRow:
    line: int
    drug: str
    gtin: str
    china_prefix: str
    pack_size: int


@dataclass
class _InteractionRow:
    line: int
    pair: tuple[str, str]  # sorted: ingredient_a.code < ingredient_b.code
    values: dict[str, Any]


@dataclass
class _Parsed:
    classes: list[_ClassRow] = field(default_factory=list)
    ingredients: list[_IngredientRow] = field(default_factory=list)
    drugs: list[_DrugRow] = field(default_factory=list)
    packs: list[_PackRow] = field(default_factory=list)
    interactions: list[_InteractionRow] = field(default_factory=list)


class _Row:
    """One CSV row being checked; each getter records a problem and returns None when the value is bad."""

    def __init__(self, file: str, line: int, data: dict[str, str], errors: list[RowError]) -> None:
        self.file, self.line, self.data, self.errors = file, line, data, errors

    def error(self, column: str, message: str) -> None:
        self.errors.append(RowError(self.file, self.line, column, message))

    def raw(self, column: str) -> str:
        return (self.data.get(column) or "").strip()

    def text(self, column: str, max_length: int, *, required: bool = True) -> str | None:
        value = self.raw(column)
        if required and not value:
            self.error(column, "is empty")
            return None
        if len(value) > max_length:
            self.error(column, f"is {len(value)} characters long; at most {max_length}")
            return None
        return value

    def code(self, column: str, max_length: int) -> str | None:
        value = self.text(column, max_length)
        if value is not None and not _SLUG.fullmatch(value):
            self.error(column, f"{value!r} is not a code: use only letters, digits, '-' and '_'")
            return None
        return value

    def choice(self, column: str, choices: type[Enum]) -> str | None:
        value = self.raw(column)
        allowed = [str(member.value) for member in choices]
        if value not in allowed:
            self.error(column, f"unknown value {value!r}; expected one of: {', '.join(allowed)}")
            return None
        return value

    def decimal(self, column: str, *, required: bool) -> Decimal | None:
        value = self.raw(column)
        if not value:
            if required:
                self.error(column, "is empty")
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            self.error(column, f"{value!r} is not a number")
            return None
        exponent = number.as_tuple().exponent
        if not number.is_finite() or number <= 0:
            self.error(column, f"{value!r} must be a number greater than 0")
            return None
        if isinstance(exponent, int) and exponent < -3:
            self.error(column, f"{value!r} has more than 3 decimal places")
            return None
        if number >= Decimal("10000000"):
            self.error(column, f"{value!r} is too large")
            return None
        return number

    def positive_int(self, column: str) -> int | None:
        value = self.raw(column)
        if not _DIGITS.fullmatch(value) or int(value) <= 0 or int(value) > 2_147_483_647:
            self.error(column, f"{value!r} is not a whole number greater than 0")
            return None
        return int(value)

    def boolean(self, column: str) -> bool | None:
        value = self.raw(column).lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        self.error(column, f"{self.raw(column)!r} is not true or false")
        return None


def _read(directory: Path, name: str, errors: list[RowError]) -> Iterator[_Row]:
    """The rows of one file, if it exists, after checking its header."""
    path = directory / name
    if not path.is_file():
        return
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        errors.append(RowError(name, 1, "-", f"the file is not UTF-8 ({exc.reason} at byte {exc.start})"))
        return
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    expected = COLUMNS[name]
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    for column in missing:
        errors.append(RowError(name, 1, column, "the column is missing"))
    for column in unknown:
        errors.append(RowError(name, 1, column, f"unknown column; expected: {', '.join(expected)}"))
    for column in duplicated:
        errors.append(RowError(name, 1, column, "the column appears twice"))
    if missing or unknown or duplicated:
        return
    for data in reader:
        extra = data.pop(None, None)  # type: ignore[call-overload]
        if not any((v or "").strip() for v in data.values()) and not extra:
            continue  # a blank line
        row = _Row(name, reader.line_num, data, errors)
        if extra:
            row.error("-", f"{len(header) + len(extra)} values for {len(header)} columns")
            continue
        yield row


# --- checking ----------------------------------------------------------------------------------------
def _parse(directory: Path, m: CatalogueModels, using: str, errors: list[RowError]) -> _Parsed:
    parsed = _Parsed()
    db_classes = set(m.drug_class.objects.using(using).values_list("code", flat=True))
    db_ingredients = set(m.ingredient.objects.using(using).values_list("code", flat=True))
    db_drugs = set(m.drug.objects.using(using).values_list("code", flat=True))

    seen: dict[str, int] = {}
    for row in _read(directory, CLASSES, errors):
        code, en, zh = row.code("code", 60), row.text("name_en", 100), row.text("name_zh", 60)
        if code is not None and code in seen:
            row.error("code", f"{code!r} is already on line {seen[code]}")
            code = None
        if code is not None:
            seen[code] = row.line
        if code is not None and en is not None and zh is not None:
            parsed.classes.append(_ClassRow(row.line, code, {"name_en": en, "name_zh": zh}))
    class_codes = db_classes | set(seen)

    seen = {}
    for row in _read(directory, INGREDIENTS, errors):
        code, en, zh = row.code("code", 60), row.text("name_en", 100), row.text("name_zh", 60)
        allergy_class: str | None = row.raw("allergy_class") or None
        ok = True
        if allergy_class is not None and allergy_class not in class_codes:
            row.error("allergy_class", f"unknown drug class {allergy_class!r}")
            ok = False
        if code is not None and code in seen:
            row.error("code", f"{code!r} is already on line {seen[code]}")
            code = None
        if code is not None:
            seen[code] = row.line
        if ok and code is not None and en is not None and zh is not None:
            parsed.ingredients.append(_IngredientRow(row.line, code, {"name_en": en, "name_zh": zh}, allergy_class))
    ingredient_codes = db_ingredients | set(seen)

    seen = {}
    for row in _read(directory, DRUGS, errors):
        parsed_drug = _parse_drug(row, class_codes, ingredient_codes)
        code = row.raw("code")
        if code and code in seen:
            row.error("code", f"{code!r} is already on line {seen[code]}")
            continue
        if code:
            seen[code] = row.line
        if parsed_drug is not None:
            parsed.drugs.append(parsed_drug)
    drug_codes = db_drugs | set(seen)

    parsed.packs = _parse_packs(directory, m, using, drug_codes, errors)
    _check_pack_sizes(parsed, m, using, errors)
    parsed.interactions = _parse_interactions(directory, ingredient_codes, errors)
    return parsed


def _parse_drug(row: _Row, class_codes: set[str], ingredient_codes: set[str]) -> _DrugRow | None:
    problems_before = len(row.errors)
    values: dict[str, Any] = {
        "generic_name_zh": row.text("generic_name_zh", 80),
        "generic_name_en": row.text("generic_name_en", 120),
        "brand": row.text("brand", 80, required=False),
        "manufacturer": row.text("manufacturer", 120, required=False),
        "dosage_form": row.choice("dosage_form", DosageForm),
        "strength": row.text("strength", 40),
        "strength_value": row.decimal("strength_value", required=True),
        "strength_unit": row.text("strength_unit", 10),
        "unit": row.text("unit", 20),
        "pack_size": row.positive_int("pack_size"),
        "route": row.choice("route", Route),
        "is_prescription": row.boolean("is_prescription"),
        "control_class": row.choice("control_class", ControlClass),
        "antibiotic_tier": row.choice("antibiotic_tier", AntibioticTier),
        "max_daily_dose": row.decimal("max_daily_dose", required=False),
        "paediatric_use": row.choice("paediatric_use", PaediatricUse),
    }
    code = row.code("code", 80)
    therapeutic_class = row.raw("therapeutic_class")
    if not therapeutic_class:
        row.error("therapeutic_class", "is empty")
    elif therapeutic_class not in class_codes:
        row.error("therapeutic_class", f"unknown drug class {therapeutic_class!r}")
    ingredients = [part.strip() for part in row.raw("ingredients").split("|") if part.strip()]
    if not ingredients:
        row.error("ingredients", "is empty: list the ingredient codes, separated by '|'")
    for ingredient in ingredients:
        if ingredient not in ingredient_codes:
            row.error("ingredients", f"unknown ingredient {ingredient!r}")
    for ingredient in sorted({i for i in ingredients if ingredients.count(i) > 1}):
        row.error("ingredients", f"{ingredient!r} is listed twice")
    # R11/R17 and the antibacterial rules: these are never sold without a prescription.
    if values["is_prescription"] is False:
        if values["control_class"] not in (None, ControlClass.NONE):
            row.error("is_prescription", f"a {values['control_class']} drug cannot be non-prescription")
        if values["antibiotic_tier"] not in (None, AntibioticTier.NONE):
            row.error("is_prescription", "an antibacterial cannot be non-prescription")
    if len(row.errors) > problems_before or code is None:
        return None
    return _DrugRow(row.line, code, values, ingredients, therapeutic_class)


def _parse_packs(
    directory: Path, m: CatalogueModels, using: str, drug_codes: set[str], errors: list[RowError]
) -> list[_PackRow]:
    packs: list[_PackRow] = []
    in_db = {
        gtin: (drug, prefix)
        for gtin, drug, prefix in m.drug_pack.objects.using(using).values_list("gtin", "drug__code", "china_prefix")
    }
    prefix_owner = {prefix: gtin for gtin, (_, prefix) in in_db.items()}
    gtin_lines: dict[str, int] = {}
    prefix_lines: dict[str, int] = {}
    for row in _read(directory, PACKS, errors):
        problems_before = len(row.errors)
        drug = row.raw("drug")
        if not drug:
            row.error("drug", "is empty")
        elif drug not in drug_codes:
            row.error("drug", f"unknown drug {drug!r}")
        gtin = row.raw("gtin")
        gtin_bad = gtin_problem(gtin)
        if gtin_bad:
            row.error("gtin", gtin_bad)
        elif gtin in gtin_lines:
            row.error("gtin", f"{gtin} is already on line {gtin_lines[gtin]}")
        elif gtin in in_db and drug and in_db[gtin][0] != drug:
            # A GTIN names one trade item for good (GS1); it never moves to another product.
            row.error("gtin", f"{gtin} already belongs to drug {in_db[gtin][0]!r}")
        prefix = row.raw("china_prefix")
        problem = china_prefix_problem(prefix)
        if problem:
            row.error("china_prefix", problem)
        elif prefix in prefix_lines:
            row.error("china_prefix", f"{prefix} is already on line {prefix_lines[prefix]}")
        elif not gtin_bad and prefix in prefix_owner and prefix_owner[prefix] != gtin:
            row.error("china_prefix", f"{prefix} already belongs to the pack with GTIN {prefix_owner[prefix]}")
        pack_size = row.positive_int("pack_size")
        gtin_lines.setdefault(gtin, row.line)
        prefix_lines.setdefault(prefix, row.line)
        if len(row.errors) == problems_before and pack_size is not None:
            packs.append(_PackRow(row.line, drug, gtin, prefix, pack_size))
    return packs


def _check_pack_sizes(parsed: _Parsed, m: CatalogueModels, using: str, errors: list[RowError]) -> None:
    """Quantities are prescribed in packs of the drug's pack size (``rules.needed_packs``), so that
    pack must exist to be scanned and dispensed (R19)."""
    sizes: dict[str, set[int]] = {}
    file_gtins = {p.gtin for p in parsed.packs}
    for gtin, drug, size in m.drug_pack.objects.using(using).values_list("gtin", "drug__code", "pack_size"):
        if gtin not in file_gtins:
            sizes.setdefault(drug, set()).add(size)
    for pack in parsed.packs:
        sizes.setdefault(pack.drug, set()).add(pack.pack_size)
    for drug in parsed.drugs:
        size = drug.values["pack_size"]
        if size not in sizes.get(drug.code, set()):
            errors.append(
                RowError(DRUGS, drug.line, "pack_size", f"no pack of {drug.code!r} holds {size} units (see {PACKS})")
            )


def _parse_interactions(directory: Path, ingredient_codes: set[str], errors: list[RowError]) -> list[_InteractionRow]:
    rows: list[_InteractionRow] = []
    pair_lines: dict[tuple[str, str], int] = {}
    for row in _read(directory, INTERACTIONS, errors):
        problems_before = len(row.errors)
        a, b = row.raw("ingredient_a"), row.raw("ingredient_b")
        for column, code in (("ingredient_a", a), ("ingredient_b", b)):
            if not code:
                row.error(column, "is empty")
            elif code not in ingredient_codes:
                row.error(column, f"unknown ingredient {code!r}")
        if a and a == b:
            row.error("ingredient_b", "an ingredient does not interact with itself")
        values = {
            "severity": row.choice("severity", InteractionSeverity),
            "effect_en": row.text("effect_en", 200),
            "effect_zh": row.text("effect_zh", 100),
        }
        pair = (a, b) if a < b else (b, a)
        if a and b and pair in pair_lines:
            row.error("ingredient_b", f"the pair {a} + {b} is already on line {pair_lines[pair]}")
        pair_lines.setdefault(pair, row.line)
        if len(row.errors) == problems_before:
            rows.append(_InteractionRow(row.line, pair, values))
    return rows


# --- writing -----------------------------------------------------------------------------------------
def _upsert(model: Any, using: str, existing: Any, lookup: dict[str, Any], values: dict[str, Any]) -> tuple[Any, str]:
    if existing is None:
        return model.objects.using(using).create(**lookup, **values), "created"
    changed = [name for name, value in values.items() if getattr(existing, name) != value]
    if not changed:
        return existing, "unchanged"
    for name in changed:
        setattr(existing, name, values[name])
    existing.save(using=using, update_fields=changed)
    return existing, "updated"


def _write(parsed: _Parsed, m: CatalogueModels, using: str, report: ImportReport) -> None:
    classes = m.drug_class.objects.using(using).in_bulk(field_name="code")
    for c in parsed.classes:
        classes[c.code], status = _upsert(m.drug_class, using, classes.get(c.code), {"code": c.code}, c.values)
        report.classes.add(status)
    class_ids = {code: obj.pk for code, obj in classes.items()}

    ingredients = m.ingredient.objects.using(using).in_bulk(field_name="code")
    for i in parsed.ingredients:
        values = {**i.values, "allergy_class_id": class_ids[i.allergy_class] if i.allergy_class else None}
        ingredients[i.code], status = _upsert(m.ingredient, using, ingredients.get(i.code), {"code": i.code}, values)
        report.ingredients.add(status)
    ingredient_ids = {code: obj.pk for code, obj in ingredients.items()}

    drugs = m.drug.objects.using(using).in_bulk(field_name="code")
    current_ingredients: dict[int, set[int]] = {}
    for drug_id, ingredient_id in m.drug.ingredients.through.objects.using(using).values_list(
        "drug_id", "ingredient_id"
    ):
        current_ingredients.setdefault(drug_id, set()).add(ingredient_id)
    for d in parsed.drugs:
        values = {**d.values, "therapeutic_class_id": class_ids[d.therapeutic_class]}
        drug, status = _upsert(m.drug, using, drugs.get(d.code), {"code": d.code}, values)
        drugs[d.code] = drug
        wanted = {ingredient_ids[code] for code in d.ingredients}
        if current_ingredients.get(drug.pk, set()) != wanted:
            drug.ingredients.set(wanted)
            status = "created" if status == "created" else "updated"
        report.drugs.add(status)
    drug_ids = {code: obj.pk for code, obj in drugs.items()}

    packs = m.drug_pack.objects.using(using).in_bulk(field_name="gtin")
    for p in parsed.packs:
        values = {"drug_id": drug_ids[p.drug], "china_prefix": p.china_prefix, "pack_size": p.pack_size}
        _, status = _upsert(m.drug_pack, using, packs.get(p.gtin), {"gtin": p.gtin}, values)
        report.packs.add(status)

    existing_pairs = {(x.ingredient_a_id, x.ingredient_b_id): x for x in m.interaction.objects.using(using).all()}
    for x in parsed.interactions:
        a_id, b_id = ingredient_ids[x.pair[0]], ingredient_ids[x.pair[1]]
        # A pair stored the other way round (by hand) is turned the right way: a.code < b.code.
        existing = existing_pairs.get((a_id, b_id)) or existing_pairs.get((b_id, a_id))
        values = {"ingredient_a_id": a_id, "ingredient_b_id": b_id, **x.values}
        _, status = _upsert(m.interaction, using, existing, {}, values)
        report.interactions.add(status)


def import_catalogue(
    directory: Path,
    *,
    stdout: Writer | None = None,
    models: CatalogueModels | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> ImportReport:
    """Check every row of the catalogue files in ``directory``, then import them all in one
    transaction. Raises ``CatalogueError`` (listing every problem) and changes nothing if any row is bad."""
    directory = Path(directory)
    m = models or CatalogueModels.current()
    if not directory.is_dir():
        raise CatalogueError([RowError(str(directory), 0, "-", "no such directory")])
    if not any((directory / name).is_file() for name in COLUMNS):
        raise CatalogueError([RowError(str(directory), 0, "-", f"none of {', '.join(COLUMNS)} is here")])
    report = ImportReport(directory)
    with transaction.atomic(using=using):
        errors: list[RowError] = []
        parsed = _parse(directory, m, using, errors)
        if errors:
            raise CatalogueError(errors)
        _write(parsed, m, using, report)
    if stdout is not None:
        for line in report.lines():
            stdout.write(line + "\n")
    return report
