"""Scanner input to one canonical code: GS1 element strings, Digital Link, EPC URNs, China codes."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nethospital.traceability import codes
from nethospital.traceability.codes import CodeError

GTIN = "09501101020917"  # company prefix 950110102 (GS1 table), check digit 7


def test_a_datamatrix_with_symbology_prefix_and_gs_separators():
    result = codes.parse(f"]d201{GTIN}172612311012345\x1d21ABC/1", lookup=False)

    assert (result.kind, result.source) == ("sgtin", "element_string")
    assert (result.gtin, result.serial, result.batch, result.expiry) == (GTIN, "ABC/1", "12345", dt.date(2026, 12, 31))
    assert result.identifier == "urn:epc:id:sgtin:950110102.0091.ABC%2F1"
    assert result.digital_link == "https://id.gs1.org/01/09501101020917/21/ABC%2F1"
    assert result.element_strings == {"01": GTIN, "17": "261231", "10": "12345", "21": "ABC/1"}


@pytest.mark.parametrize(
    "text",
    [
        f"01{GTIN}1726123121S1",  # a variable-length AI last needs no GS
        f"]d2\x1d01{GTIN}1726123110L1\x1d21S1",  # FNC1 in first position sent as GS
        f"01{GTIN}1726123110L1\u241d21S1",  # a keyboard wedge's stand-in for GS
        f"01{GTIN}1726123110L1<GS>21S1\r\n",
        f"(01){GTIN}(17)261231(10)L1(21)S1",  # the human-readable form
    ],
)
def test_element_string_variants(text):
    result = codes.parse(text, lookup=False)

    assert result.kind == "sgtin" and result.gtin == GTIN and result.serial == "S1"
    assert result.expiry == dt.date(2026, 12, 31)


def test_an_sscc_and_a_batch_only_code():
    sscc = codes.parse("]d200106141412345678908", lookup=False)
    lot = codes.parse(f"01{GTIN}10LOT9", lookup=False)

    assert (sscc.kind, sscc.identifier, sscc.sscc) == (
        "sscc",
        "urn:epc:id:sscc:0614141.1234567890",
        "106141412345678908",
    )
    assert (lot.kind, lot.identifier) == ("lgtin", "urn:epc:class:lgtin:950110102.0091.LOT9")


@pytest.mark.parametrize(
    "uri",
    [
        "https://id.gs1.org/01/09501101020917/21/S1?17=261231",
        "https://example.com/shop/01/9501101020917/10/L1/21/S1",  # another host, a path prefix, GTIN-13
    ],
)
def test_digital_links_on_any_host(uri):
    result = codes.parse(uri, lookup=False)

    assert (result.kind, result.source, result.gtin, result.serial) == ("sgtin", "digital_link", GTIN, "S1")
    assert result.identifier == "urn:epc:id:sgtin:950110102.0091.S1"


def test_epc_urns():
    sgtin = codes.parse("urn:epc:id:sgtin:0614141.107346.2017")
    sscc = codes.parse("urn:epc:id:sscc:0614141.1234567890")

    assert (sgtin.kind, sgtin.gtin, sgtin.serial, sgtin.company_prefix) == (
        "sgtin",
        "10614141073464",
        "2017",
        "0614141",
    )
    assert (sscc.kind, sscc.sscc) == ("sscc", "106141412345678908")


def test_a_china_code_that_is_mapped_and_one_that_is_not(db):
    from nethospital.prescriptions.models import DrugPack

    prefix = DrugPack.objects.values_list("china_prefix", flat=True).first()
    assert prefix, "the seeded catalogue has China prefixes"

    mapped = codes.parse(prefix + "1234567890123")
    unmapped = codes.parse("0000000" + "1234567890123")

    assert (mapped.kind, mapped.is_mapped, mapped.china_prefix, mapped.product_code) == ("china", True, prefix, prefix)
    assert mapped.identifier == f"urn:nethospital:cn-drug-code:{prefix}1234567890123"
    assert mapped.drug_pack_id == DrugPack.objects.get(china_prefix=prefix).pk
    assert (unmapped.kind, unmapped.is_mapped, unmapped.drug_pack_id) == ("china", False, None)
    assert unmapped.digital_link == ""


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (f"]d201{GTIN[:-1]}8", "code_bad_check_digit"),
        ("https://id.gs1.org/01/09501101020918/21/X", "code_bad_check_digit"),
        (f"01{GTIN}172613311021", "code_impossible_date"),  # month 13
        (f"01{GTIN}172602301021", "code_impossible_date"),  # 30 February
        (f"https://id.gs1.org/01/{GTIN}/21/X?17=261331", "code_impossible_date"),
        ("urn:epc:id:sgtin:0614141.10734.2017", "code_bad_urn"),
        ("urn:nethospital:cn-drug-code:123", "code_bad_china_code"),
        ("hello", "code_unreadable"),
        ("   ", "code_empty"),
        ("21ABC", "code_serial_without_gtin"),
    ],
)
def test_bad_codes_give_a_code_error_with_a_reason(text, code):
    with pytest.raises(CodeError) as caught:
        codes.parse(text, lookup=False)

    assert caught.value.code == code
    assert caught.value.message


def test_code_errors_speak_chinese_too():
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(CodeError) as caught:
        codes.parse(f"01{GTIN}172613311021", lookup=False)

    assert "261331" in caught.value.message


def test_a_digital_link_without_company_prefix_length_uses_the_argument():
    uri = "https://id.gs1.org/01/09501101020917/21/S1"

    assert codes.digital_link_to_urn(uri, company_prefix_length=7) == "urn:epc:id:sgtin:9501101.002091.S1"
    assert codes.digital_link_to_urn(uri) == "urn:epc:id:sgtin:950110102.0091.S1"  # GS1's prefix table


# --- Lossless round trips --------------------------------------------------------------------------

SERIAL_CHARS = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
serials = st.text(alphabet=SERIAL_CHARS, min_size=1, max_size=20)


@st.composite
def sgtin_urns(draw: st.DrawFn) -> str:
    company_length = draw(st.integers(min_value=6, max_value=12))
    company = draw(st.text(alphabet="0123456789", min_size=company_length, max_size=company_length))
    item = draw(st.text(alphabet="0123456789", min_size=13 - company_length, max_size=13 - company_length))
    return f"urn:epc:id:sgtin:{company}.{item}.{codes.escape_urn_component(draw(serials))}"


@given(sgtin_urns())
def test_sgtin_urn_to_digital_link_and_back_is_lossless(urn):
    link = codes.urn_to_digital_link(urn)
    company_length = len(urn.split(":")[4].split(".")[0])

    assert codes.digital_link_to_urn(link, company_prefix_length=company_length) == urn
    assert codes.parse(urn).gtin == codes.parse(link, company_prefix_length=company_length).gtin


@given(st.text(alphabet="0123456789", min_size=13, max_size=13), serials)
def test_digital_link_to_urn_and_back_is_lossless(body, serial):
    gtin = body + codes.check_digit(body)
    link = f"https://id.gs1.org/01/{gtin}/21/{codes.escape_digital_link_component(serial)}"

    urn = codes.digital_link_to_urn(link)

    assert codes.urn_to_digital_link(urn) == link
    assert codes.parse(urn).serial == serial
