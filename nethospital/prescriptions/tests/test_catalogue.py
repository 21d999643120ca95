"""The seeded drug catalogue (migration 0002) and the CSV import: checks per row and column, all or
nothing, idempotent."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from nethospital.core import clock
from nethospital.prescriptions import actions
from nethospital.prescriptions.actions import ItemInput
from nethospital.prescriptions.catalogue import (
    DATA_DIR,
    CatalogueError,
    RowError,
    china_prefix_problem,
    gtin_check_digit,
    gtin_problem,
    import_catalogue,
    is_valid_gtin,
)
from nethospital.prescriptions.choices import AntibioticTier, ControlClass
from nethospital.prescriptions.models import Drug, DrugClass, DrugPack, Ingredient, Interaction
from nethospital.prescriptions.tests.conftest import NOON

pytestmark = pytest.mark.django_db

SEED = sorted(p.name for p in DATA_DIR.glob("*.csv"))


def snapshot() -> dict[str, list[tuple]]:
    """Every catalogue row with every column, to prove that nothing changed."""
    return {
        "classes": list(DrugClass.objects.order_by("pk").values_list()),
        "ingredients": list(Ingredient.objects.order_by("pk").values_list()),
        "drugs": list(Drug.objects.order_by("pk").values_list()),
        "drug_ingredients": list(Drug.ingredients.through.objects.order_by("pk").values_list()),
        "packs": list(DrugPack.objects.order_by("pk").values_list()),
        "interactions": list(Interaction.objects.order_by("pk").values_list()),
    }


def copy_seed(tmp_path: Path) -> Path:
    directory = tmp_path / "catalogue"
    directory.mkdir()
    for name in SEED:
        shutil.copy(DATA_DIR / name, directory / name)
    return directory


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def edit(path: Path, key: str, value: str, column: str, new: str) -> int:
    """Set ``column`` to ``new`` in the row whose ``key`` column is ``value``; returns its line number."""
    rows = read(path)
    index = next(i for i, row in enumerate(rows) if row[key] == value)
    rows[index][column] = new
    write(path, rows)
    return index + 2  # the header is line 1


def import_errors(directory: Path) -> list[RowError]:
    with pytest.raises(CatalogueError) as caught:
        import_catalogue(directory)
    return caught.value.errors


# --- the seeded catalogue ----------------------------------------------------------------------------
def test_seed_files_are_the_five_catalogue_files():
    assert SEED == ["drug_classes.csv", "drugs.csv", "ingredients.csv", "interactions.csv", "packs.csv"]


def test_seeded_catalogue_is_in_the_database_and_matches_the_files():
    assert Drug.objects.count() == len(read(DATA_DIR / "drugs.csv")) >= 150
    assert DrugPack.objects.count() == len(read(DATA_DIR / "packs.csv"))
    assert Ingredient.objects.count() == len(read(DATA_DIR / "ingredients.csv"))
    assert DrugClass.objects.count() == len(read(DATA_DIR / "drug_classes.csv"))
    assert Interaction.objects.count() == len(read(DATA_DIR / "interactions.csv")) >= 25


def test_every_pack_has_a_valid_gtin_14_and_a_unique_7_digit_china_prefix():
    packs = list(DrugPack.objects.values_list("gtin", "china_prefix"))
    assert packs
    assert [g for g, _ in packs if len(g) != 14 or not is_valid_gtin(g)] == []
    assert [p for _, p in packs if china_prefix_problem(p)] == []
    assert len({p for _, p in packs}) == len(packs)
    assert len({g for g, _ in packs}) == len(packs)


def test_every_drug_has_a_pack_of_its_pack_size_and_at_least_one_ingredient():
    without_pack = [
        d.code
        for d in Drug.objects.prefetch_related("packs")
        if d.pack_size not in {p.pack_size for p in d.packs.all()}
    ]
    assert without_pack == []
    assert not Drug.objects.annotate(n=Count("ingredients")).filter(n=0).exists()


def test_every_control_class_is_present_and_controlled_drugs_are_prescription_only():
    present = set(Drug.objects.values_list("control_class", flat=True))
    assert present == set(ControlClass.values)
    assert not Drug.objects.exclude(control_class=ControlClass.NONE).filter(is_prescription=False).exists()
    assert {
        code: Drug.objects.get(code=code).control_class
        for code in (
            "morphine-30mg-sr-tab",
            "oxycodone-10mg-pr-tab",
            "fentanyl-25ug-h-patch",
            "diazepam-2_5mg-tab",
            "alprazolam-0_4mg-tab",
            "zolpidem-10mg-tab",
            "methylphenidate-18mg-er-tab",
            "tramadol-100mg-sr-tab",
            "dextromethorphan-15mg-tab",
            "ephedrine-1pct-nasal-drops",
            "arsenic-trioxide-10mg-inj",
            "hepatitis-b-vaccine-10ug",
            "human-albumin-20pct-50ml",
            "sodium-iodide-i131-oral-solution",
        )
    } == {
        "morphine-30mg-sr-tab": "narcotic",
        "oxycodone-10mg-pr-tab": "narcotic",
        "fentanyl-25ug-h-patch": "narcotic",
        "diazepam-2_5mg-tab": "psychotropic_2",
        "alprazolam-0_4mg-tab": "psychotropic_2",
        "zolpidem-10mg-tab": "psychotropic_2",
        "methylphenidate-18mg-er-tab": "psychotropic_1",
        "tramadol-100mg-sr-tab": "psychotropic_2",
        "dextromethorphan-15mg-tab": "psychotropic_2",
        "ephedrine-1pct-nasal-drops": "precursor",
        "arsenic-trioxide-10mg-inj": "toxic",
        "hepatitis-b-vaccine-10ug": "vaccine",
        "human-albumin-20pct-50ml": "blood_product",
        "sodium-iodide-i131-oral-solution": "radioactive",
    }
    assert Drug.objects.get(code="sertraline-50mg-tab").control_class == ControlClass.NONE


def test_otc_and_prescription_drugs_and_every_antibiotic_tier_are_present():
    assert Drug.objects.filter(is_prescription=False).count() >= 20
    assert Drug.objects.filter(is_prescription=True).count() >= 100
    assert set(Drug.objects.values_list("antibiotic_tier", flat=True)) == set(AntibioticTier.values)
    assert not Drug.objects.exclude(antibiotic_tier=AntibioticTier.NONE).filter(is_prescription=False).exists()
    tiers = dict(
        Drug.objects.filter(
            code__in=["amoxicillin-250mg-cap", "moxifloxacin-400mg-tab", "linezolid-600mg-tab"]
        ).values_list("code", "antibiotic_tier")
    )
    assert tiers == {
        "amoxicillin-250mg-cap": "unrestricted",
        "moxifloxacin-400mg-tab": "restricted",
        "linezolid-600mg-tab": "special",
    }


def test_maximum_daily_doses_and_children_are_from_the_labels():
    def drug(code: str) -> Drug:
        return Drug.objects.get(code=code)

    assert drug("amlodipine-5mg-tab").max_daily_dose == Decimal("10")
    assert drug("metformin-250mg-tab").max_daily_dose == Decimal("2000")
    assert drug("atorvastatin-20mg-tab").max_daily_dose == Decimal("80")
    paracetamol = drug("paracetamol-500mg-tab")
    assert (paracetamol.is_prescription, paracetamol.max_daily_dose) == (False, Decimal("2000"))
    assert (drug("ibuprofen-200mg-tab").is_prescription, drug("ibuprofen-200mg-tab").max_daily_dose) == (
        True,
        Decimal("2400"),
    )
    assert (drug("ibuprofen-300mg-sr-cap").is_prescription, drug("ibuprofen-300mg-sr-cap").max_daily_dose) == (
        False,
        Decimal("1200"),
    )
    assert drug("warfarin-2_5mg-tab").max_daily_dose is None
    for code in ("amoxicillin-125mg-granules", "ibuprofen-20mg-ml-susp", "paracetamol-100mg-ml-drops"):
        assert drug(code).paediatric_use == "suitable"
    assert drug("aspirin-100mg-ec-tab").paediatric_use == "not_suitable"


def test_allergy_classes_of_ingredients():
    classes = dict(
        Ingredient.objects.filter(
            code__in=["amoxicillin", "cefuroxime", "sulfamethoxazole", "aspirin", "ibuprofen", "amlodipine"]
        ).values_list("code", "allergy_class__code")
    )
    assert classes == {
        "amoxicillin": "penicillins",
        "cefuroxime": "cephalosporins",
        "sulfamethoxazole": "sulfonamides",
        "aspirin": "nsaids",
        "ibuprofen": "nsaids",
        "amlodipine": None,
    }


def test_interactions_are_stored_once_per_pair_in_code_order():
    pairs = list(Interaction.objects.values_list("ingredient_a__code", "ingredient_b__code", "severity"))
    assert [(a, b) for a, b, _ in pairs if not a < b] == []
    assert ("clarithromycin", "simvastatin", "contraindicated") in pairs
    assert ("aspirin", "warfarin", "serious") in pairs
    assert ("nitroglycerin", "sildenafil", "contraindicated") in pairs
    assert ("isosorbide-mononitrate", "sildenafil", "contraindicated") in pairs
    assert ("potassium-chloride", "spironolactone", "serious") in pairs
    assert ("clopidogrel", "omeprazole", "serious") in pairs
    assert ("sertraline", "tramadol", "serious") in pairs


@pytest.mark.parametrize(
    "order",
    [("simvastatin-20mg-tab", "clarithromycin-250mg-tab"), ("clarithromycin-250mg-tab", "simvastatin-20mg-tab")],
)
def test_seeded_interaction_is_found_whichever_drug_comes_first(clinic, order):
    with clock.frozen(NOON):
        rx = actions.create_prescription(clinic["doctor"].user, clinic["consultation"].pk)
        result = actions.set_items(
            clinic["doctor"].user, rx.pk, [ItemInput(drug=code, dose="1", frequency="qd", days=5) for code in order]
        )
    interaction = [f for f in result.findings if f.rule == "interaction"]
    assert [(f.severity, f.subject) for f in interaction] == [("refusal", "pair:0-1")]
    assert "横纹肌溶解" in interaction[0].message


def test_seeded_serious_interaction_is_a_warning_both_ways(clinic):
    with clock.frozen(NOON):
        rx = actions.create_prescription(clinic["doctor"].user, clinic["consultation"].pk)
        for order in (["warfarin-2_5mg-tab", "aspirin-100mg-ec-tab"], ["aspirin-100mg-ec-tab", "warfarin-2_5mg-tab"]):
            result = actions.set_items(
                clinic["doctor"].user, rx.pk, [ItemInput(drug=code, dose="1", frequency="qd", days=5) for code in order]
            )
            assert [f.severity for f in result.findings if f.rule == "interaction"] == ["warning"]


def test_seeded_controlled_drug_is_refused_online(clinic):
    with clock.frozen(NOON):
        rx = actions.create_prescription(clinic["doctor"].user, clinic["consultation"].pk)
        result = actions.set_items(
            clinic["doctor"].user, rx.pk, [ItemInput(drug="zolpidem-10mg-tab", dose="1", frequency="qn", days=3)]
        )
    assert {f.rule: f.severity for f in result.findings}["controlled"] == "refusal"


# --- identifiers -------------------------------------------------------------------------------------
def test_gtin_check_digit_and_validity():
    assert gtin_check_digit("0950600013435") == 2  # GS1's example GTIN 09506000134352
    assert gtin_check_digit("400638133393") == 1  # 4006381333931
    assert is_valid_gtin("09506000134352")
    assert is_valid_gtin("4006381333931")
    assert is_valid_gtin("96385074")
    assert not is_valid_gtin("09506000134353")
    assert not is_valid_gtin("0950600013435")  # 13 digits, wrong check digit
    assert not is_valid_gtin("0950600013435a")
    assert not is_valid_gtin("０９５０６０００１３４３５２")  # full-width digits are not GTIN digits
    assert gtin_problem("09506000134352") is None
    assert gtin_problem("09506000134353") == "'09506000134353' has a wrong check digit: 3, expected 2"
    assert (
        gtin_problem("4006381333931")
        == "'4006381333931' has 13 digits; a GTIN here has 14 (write a GTIN-13 with a leading 0)"
    )
    assert china_prefix_problem("8130173") is None
    assert china_prefix_problem("813017") is not None
    assert china_prefix_problem("81301a3") is not None


# --- importing ---------------------------------------------------------------------------------------
def test_reimporting_the_seed_changes_nothing():
    before = snapshot()
    report = import_catalogue(DATA_DIR)
    assert snapshot() == before
    assert not report.changed
    assert report.drugs.unchanged == Drug.objects.count()
    assert report.packs.unchanged == DrugPack.objects.count()
    assert report.interactions.unchanged == Interaction.objects.count()


def test_import_updates_and_adds_rows_and_a_second_run_is_idempotent(tmp_path):
    directory = copy_seed(tmp_path)
    edit(directory / "drugs.csv", "code", "amlodipine-5mg-tab", "brand", "络活喜 Norvasc (新包装)")
    drugs = read(directory / "drugs.csv")
    new = dict(drugs[0], code="amlodipine-10mg-tab", strength="10 mg", strength_value="10", pack_size="7")
    write(directory / "drugs.csv", [*drugs, new])
    packs = read(directory / "packs.csv")
    body = "0692045110900"
    write(
        directory / "packs.csv",
        [
            *packs,
            {
                "drug": "amlodipine-10mg-tab",
                "gtin": body + str(gtin_check_digit(body)),
                "china_prefix": "8199991",
                "pack_size": "7",
            },
        ],
    )
    drug_count = Drug.objects.count()

    out = StringIO()
    report = import_catalogue(directory, stdout=out)

    assert (report.drugs.created, report.drugs.updated) == (1, 1)
    assert (report.packs.created, report.packs.updated) == (1, 0)
    assert report.drugs.unchanged == drug_count - 1
    assert Drug.objects.get(code="amlodipine-5mg-tab").brand == "络活喜 Norvasc (新包装)"
    added = Drug.objects.get(code="amlodipine-10mg-tab")
    assert (added.strength_value, list(added.ingredients.values_list("code", flat=True))) == (
        Decimal("10"),
        ["amlodipine"],
    )
    assert added.packs.get().china_prefix == "8199991"
    assert "drugs: 1 created, 1 updated" in out.getvalue()

    before = snapshot()
    again = import_catalogue(directory)
    assert not again.changed
    assert snapshot() == before


def test_changed_ingredients_of_a_drug_count_as_an_update(tmp_path):
    directory = copy_seed(tmp_path)
    edit(directory / "drugs.csv", "code", "irbesartan-150mg-tab", "ingredients", "irbesartan|hydrochlorothiazide")
    report = import_catalogue(directory)
    assert (report.drugs.created, report.drugs.updated) == (0, 1)
    assert set(Drug.objects.get(code="irbesartan-150mg-tab").ingredients.values_list("code", flat=True)) == {
        "irbesartan",
        "hydrochlorothiazide",
    }


def test_interaction_given_in_either_order_is_stored_in_code_order(tmp_path):
    directory = tmp_path / "partial"
    directory.mkdir()
    write(
        directory / "interactions.csv",
        [
            {
                "ingredient_a": "warfarin",
                "ingredient_b": "levofloxacin",
                "severity": "serious",
                "effect_en": "INR rises: bleeding.",
                "effect_zh": "INR升高，出血风险增加。",
            },
            {  # already seeded as (aspirin, warfarin): same pair, the other way round
                "ingredient_a": "warfarin",
                "ingredient_b": "aspirin",
                "severity": "serious",
                "effect_en": "Major bleeding.",
                "effect_zh": "大出血风险增加。",
            },
        ],
    )
    count = Interaction.objects.count()
    report = import_catalogue(directory)
    assert (report.interactions.created, report.interactions.updated) == (1, 1)
    assert Interaction.objects.count() == count + 1
    stored = Interaction.objects.get(ingredient_a__code="levofloxacin", ingredient_b__code="warfarin")
    assert stored.severity == "serious"
    assert Interaction.objects.get(ingredient_a__code="aspirin", ingredient_b__code="warfarin").effect_en == (
        "Major bleeding."
    )
    assert (report.classes.total, report.drugs.total, report.packs.total) == (0, 0, 0)


# --- bad rows: each is reported by file, line and column, and nothing changes ---------------------------
def _with_a_valid_change(directory: Path) -> None:
    """A good edit in the same import, to show that it is not applied either."""
    edit(directory / "drugs.csv", "code", "losartan-50mg-tab", "brand", "changed")


def test_bad_gtin_check_digit_is_reported_and_nothing_changes(tmp_path):
    directory = copy_seed(tmp_path)
    _with_a_valid_change(directory)
    gtin = read(directory / "packs.csv")[4]["gtin"]
    wrong = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    line = edit(directory / "packs.csv", "gtin", gtin, "gtin", wrong)
    before = snapshot()

    errors = import_errors(directory)

    assert [(e.file, e.line, e.field) for e in errors] == [("packs.csv", line, "gtin")]
    assert errors[0].message == f"{wrong!r} has a wrong check digit: {wrong[-1]}, expected {gtin[-1]}"
    assert str(errors[0]).startswith(f"packs.csv, line {line}, gtin: ")
    assert snapshot() == before
    assert Drug.objects.get(code="losartan-50mg-tab").brand == "科素亚 Cozaar"


def test_unknown_control_class_is_reported_and_nothing_changes(tmp_path):
    directory = copy_seed(tmp_path)
    _with_a_valid_change(directory)
    line = edit(directory / "drugs.csv", "code", "morphine-30mg-sr-tab", "control_class", "opioid")
    before = snapshot()

    errors = import_errors(directory)

    assert [(e.file, e.line, e.field) for e in errors] == [("drugs.csv", line, "control_class")]
    assert errors[0].message.startswith("unknown value 'opioid'; expected one of: none, narcotic, psychotropic_1")
    assert snapshot() == before


def test_unknown_ingredient_is_reported_and_nothing_changes(tmp_path):
    directory = copy_seed(tmp_path)
    _with_a_valid_change(directory)
    line = edit(directory / "drugs.csv", "code", "valsartan-80mg-cap", "ingredients", "valsartan|valsartin")
    before = snapshot()

    errors = import_errors(directory)

    assert [(e.file, e.line, e.field, e.message) for e in errors] == [
        ("drugs.csv", line, "ingredients", "unknown ingredient 'valsartin'")
    ]
    assert snapshot() == before


def test_every_problem_is_reported_at_once(tmp_path):
    directory = copy_seed(tmp_path)
    classes_line = edit(directory / "ingredients.csv", "code", "amoxicillin", "allergy_class", "penicilins")
    drug_lines = [
        edit(directory / "drugs.csv", "code", "atorvastatin-20mg-tab", "dosage_form", "pill"),
        edit(directory / "drugs.csv", "code", "rosuvastatin-10mg-tab", "max_daily_dose", "-20"),
        edit(directory / "drugs.csv", "code", "cefixime-100mg-cap", "is_prescription", "false"),
        edit(directory / "drugs.csv", "code", "paracetamol-500mg-tab", "therapeutic_class", "painkillers"),
    ]
    packs = read(directory / "packs.csv")
    prefix_line = edit(directory / "packs.csv", "gtin", packs[0]["gtin"], "china_prefix", "813017")
    duplicate_line = edit(directory / "packs.csv", "gtin", packs[2]["gtin"], "china_prefix", packs[1]["china_prefix"])
    short_gtin_line = edit(directory / "packs.csv", "gtin", packs[3]["gtin"], "gtin", packs[3]["gtin"][1:])
    interactions = read(directory / "interactions.csv")
    interactions.append(
        dict(
            interactions[0], ingredient_a=interactions[0]["ingredient_b"], ingredient_b=interactions[0]["ingredient_a"]
        )
    )
    interactions.append(dict(interactions[1], ingredient_b=interactions[1]["ingredient_a"]))
    write(directory / "interactions.csv", interactions)
    before = snapshot()

    errors = import_errors(directory)

    assert [(e.file, e.line, e.field) for e in errors] == [
        ("ingredients.csv", classes_line, "allergy_class"),
        ("drugs.csv", drug_lines[0], "dosage_form"),
        ("drugs.csv", drug_lines[1], "max_daily_dose"),
        ("drugs.csv", drug_lines[2], "is_prescription"),
        ("drugs.csv", drug_lines[3], "therapeutic_class"),
        ("packs.csv", prefix_line, "china_prefix"),
        ("packs.csv", duplicate_line, "china_prefix"),
        ("packs.csv", short_gtin_line, "gtin"),
        ("interactions.csv", len(interactions), "ingredient_b"),
        ("interactions.csv", len(interactions) + 1, "ingredient_b"),
    ]
    messages = [e.message for e in errors]
    assert messages[0] == "unknown drug class 'penicilins'"
    assert messages[2] == "'-20' must be a number greater than 0"
    assert messages[3] == "an antibacterial cannot be non-prescription"
    assert messages[4] == "unknown drug class 'painkillers'"
    assert messages[6] == f"{packs[1]['china_prefix']} is already on line 3"
    assert "is already on line 2" in messages[8]
    assert messages[9] == "an ingredient does not interact with itself"
    assert snapshot() == before


def test_a_gtin_never_moves_to_another_drug(tmp_path):
    directory = copy_seed(tmp_path)
    pack = read(directory / "packs.csv")[0]
    line = edit(directory / "packs.csv", "gtin", pack["gtin"], "drug", "losartan-50mg-tab")
    errors = import_errors(directory)
    assert [(e.file, e.line, e.field, e.message) for e in errors] == [
        ("packs.csv", line, "gtin", f"{pack['gtin']} already belongs to drug {pack['drug']!r}"),
    ]


def test_a_drug_needs_a_pack_of_its_pack_size(tmp_path):
    directory = copy_seed(tmp_path)
    line = edit(directory / "drugs.csv", "code", "losartan-50mg-tab", "pack_size", "30")
    errors = import_errors(directory)
    assert [(e.file, e.line, e.field, e.message) for e in errors] == [
        ("drugs.csv", line, "pack_size", "no pack of 'losartan-50mg-tab' holds 30 units (see packs.csv)"),
    ]


def test_missing_and_unknown_columns_are_reported(tmp_path):
    directory = tmp_path / "columns"
    directory.mkdir()
    (directory / "drug_classes.csv").write_text("code,name,name_zh\nstatins,statins,他汀类\n", encoding="utf-8")
    errors = import_errors(directory)
    assert [(e.file, e.line, e.field) for e in errors] == [
        ("drug_classes.csv", 1, "name_en"),
        ("drug_classes.csv", 1, "name"),
    ]


def test_an_empty_or_missing_directory_is_refused(tmp_path):
    assert import_errors(tmp_path)[0].message.startswith("none of drug_classes.csv")
    assert import_errors(tmp_path / "nowhere")[0].message == "no such directory"


# --- the management command --------------------------------------------------------------------------
def test_import_drugs_command_reports_counts(tmp_path):
    directory = copy_seed(tmp_path)
    edit(directory / "drugs.csv", "code", "losartan-50mg-tab", "brand", "科素亚")
    out = StringIO()
    call_command("import_drugs", str(directory), stdout=out)
    assert "drugs: 0 created, 1 updated" in out.getvalue()
    assert Drug.objects.get(code="losartan-50mg-tab").brand == "科素亚"


def test_import_drugs_command_defaults_to_the_packaged_seed():
    out = StringIO()
    call_command("import_drugs", stdout=out)
    assert "Nothing changed" in out.getvalue()


def test_import_drugs_command_refuses_bad_files_and_lists_each_problem(tmp_path):
    directory = copy_seed(tmp_path)
    line = edit(directory / "drugs.csv", "code", "morphine-30mg-sr-tab", "control_class", "opioid")
    before = snapshot()
    err = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("import_drugs", str(directory), stderr=err)
    assert err.getvalue().startswith(f"drugs.csv, line {line}, control_class: unknown value 'opioid'")
    assert snapshot() == before


# --- the back office ---------------------------------------------------------------------------------
@pytest.fixture
def back_office(login_as):
    from nethospital.accounts.models import User
    from nethospital.testing import factories

    superuser = User.objects.create_superuser(email="catalogue@example.org", password=factories.DEFAULT_PASSWORD)
    return superuser, login_as(superuser, mfa=True)


def test_catalogue_pages_open_and_search_by_gtin(back_office):
    _, client = back_office
    pack = DrugPack.objects.select_related("drug").get(gtin=read(DATA_DIR / "packs.csv")[0]["gtin"])
    for url in (
        "/admin/prescriptions/drug/",
        f"/admin/prescriptions/drug/{pack.drug.pk}/change/",
        "/admin/prescriptions/ingredient/",
        "/admin/prescriptions/drugclass/",
        "/admin/prescriptions/interaction/",
        "/admin/prescriptions/drug/add/",
    ):
        assert client.get(url).status_code == 200, url
    found = client.get("/admin/prescriptions/drug/", {"q": pack.gtin})
    assert pack.drug.code in found.content.decode()
    assert found.context["cl"].result_count == 1


def test_drugs_and_packs_are_never_deleted_in_the_back_office(back_office):
    _, client = back_office
    drug = Drug.objects.get(code="amlodipine-5mg-tab")
    assert client.get(f"/admin/prescriptions/drug/{drug.pk}/delete/").status_code == 403
    assert client.post(f"/admin/prescriptions/drug/{drug.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Drug.objects.filter(pk=drug.pk).exists()


def test_pack_form_checks_gtin_and_china_prefix():
    from nethospital.prescriptions.admin import DrugPackForm

    form = DrugPackForm(data={"gtin": "09506000134353", "china_prefix": "81234", "pack_size": 7})
    assert not form.is_valid()
    assert form.errors["gtin"] == ["'09506000134353' has a wrong check digit: 3, expected 2"]
    assert form.errors["china_prefix"] == ["'81234' is not a traceability-code prefix: it has exactly 7 digits"]
    assert DrugPackForm(data={"gtin": "09506000134352", "china_prefix": "8999999", "pack_size": 7}).is_valid()


def test_drug_form_keeps_controlled_drugs_and_antibacterials_on_prescription():
    from django.forms.models import model_to_dict

    from nethospital.prescriptions.admin import DrugForm

    for code in ("zolpidem-10mg-tab", "amoxicillin-250mg-cap"):
        drug = Drug.objects.get(code=code)
        data = {k: v for k, v in model_to_dict(drug).items() if v is not None}
        data["ingredients"] = [i.pk for i in data["ingredients"]]
        assert DrugForm(data=data, instance=drug).is_valid(), code
        form = DrugForm(data={**data, "is_prescription": False}, instance=drug)
        assert not form.is_valid()
        assert "is_prescription" in form.errors


def test_interaction_form_stores_the_pair_in_code_order():
    from nethospital.prescriptions.admin import InteractionForm

    warfarin, levofloxacin = Ingredient.objects.get(code="warfarin"), Ingredient.objects.get(code="levofloxacin")
    form = InteractionForm(
        data={
            "ingredient_a": warfarin.pk,
            "ingredient_b": levofloxacin.pk,
            "severity": "serious",
            "effect_en": "INR rises.",
            "effect_zh": "INR升高。",
        }
    )
    assert form.is_valid(), form.errors
    saved = form.save()
    assert (saved.ingredient_a.code, saved.ingredient_b.code) == ("levofloxacin", "warfarin")
    same = InteractionForm(
        data={
            "ingredient_a": levofloxacin.pk,
            "ingredient_b": warfarin.pk,
            "severity": "serious",
            "effect_en": "again",
            "effect_zh": "again",
        }
    )
    assert not same.is_valid()
    itself = InteractionForm(
        data={
            "ingredient_a": warfarin.pk,
            "ingredient_b": warfarin.pk,
            "severity": "serious",
            "effect_en": "x",
            "effect_zh": "x",
        }
    )
    assert not itself.is_valid()


def test_prescriptions_are_read_only_in_the_back_office_and_opening_one_is_audited(clinic, back_office):
    from nethospital.core.models import AuditEntry
    from nethospital.prescriptions.models import Prescription

    superuser, client = back_office
    with clock.frozen(NOON):
        rx = actions.create_prescription(clinic["doctor"].user, clinic["consultation"].pk, notes="复诊")
    assert client.get(f"/admin/prescriptions/prescription/{rx.pk}/change/").status_code == 200
    entry = AuditEntry.objects.filter(actor_id=superuser.pk).last()
    assert (entry.action, entry.patient_id, entry.detail) == ("prescription.view", rx.patient_id, {"via": "admin"})
    assert client.get(f"/admin/prescriptions/prescription/{rx.pk}/delete/").status_code == 403
    assert client.get("/admin/prescriptions/prescription/add/").status_code == 403
    client.post(f"/admin/prescriptions/prescription/{rx.pk}/change/", {"notes": "forged"})
    assert Prescription.objects.get(pk=rx.pk).notes == "复诊"
    assert client.get("/admin/prescriptions/pharmacistreview/add/").status_code == 403
