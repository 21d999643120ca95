import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nethospital.accounts import errors, identity
from nethospital.accounts.choices import Sex
from nethospital.core.errors import DomainError

# A published example number (GB 11643 worked example): Beijing Dongcheng, 1949-12-31, male.
KNOWN_VALID = "11010519491231002X"


def test_known_valid_number_parses_with_birth_date_and_sex():
    resident = identity.parse(KNOWN_VALID.lower())
    assert resident.number == KNOWN_VALID
    assert resident.birth_date == dt.date(1949, 12, 31)
    assert resident.sex == Sex.FEMALE  # 17th digit 2 is even
    assert resident.region_code == "110105"
    assert resident.masked == "1101**********002X"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("1101051949123100", errors.ID_NUMBER_LENGTH),
        ("11010519491231002X1", errors.ID_NUMBER_LENGTH),
        ("11010519491231A02X", errors.ID_NUMBER_CHARACTERS),
        ("99010519491231002X", errors.ID_NUMBER_REGION),
        ("110105194913310021", errors.ID_NUMBER_BIRTH_DATE),  # month 13
        ("110105194902300021", errors.ID_NUMBER_BIRTH_DATE),  # 30 February
        ("110105219901010021", errors.ID_NUMBER_BIRTH_DATE),  # year 2199: in the future
        ("110105194912310021", errors.ID_NUMBER_CHECK),
    ],
)
def test_malformed_numbers_are_refused_with_the_specific_reason(raw, error):
    with pytest.raises(DomainError) as caught:
        identity.parse(raw)
    assert caught.value.code == error.code
    assert caught.value.field == "id_number"


@given(
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2024, 12, 31)),
    sequence=st.integers(min_value=0, max_value=999),
    sex=st.sampled_from([Sex.MALE, Sex.FEMALE]),
    region=st.sampled_from(["110101", "330106", "440305", "510107", "650102"]),
)
def test_every_generated_number_round_trips_and_any_changed_check_character_fails(birth, sequence, sex, region):
    number = identity.make_number(region, birth, sequence, sex)
    resident = identity.parse(number)
    assert (resident.birth_date, resident.sex, resident.region_code) == (birth, sex, region)
    for wrong in "0123456789X":
        if wrong != number[-1]:
            with pytest.raises(DomainError):
                identity.parse(number[:-1] + wrong)


def test_keyed_hash_is_stable_normalised_and_not_the_plain_sha256():
    import hashlib

    assert identity.keyed_hash(KNOWN_VALID) == identity.keyed_hash(" " + KNOWN_VALID.lower())
    assert identity.keyed_hash(KNOWN_VALID) != hashlib.sha256(KNOWN_VALID.encode()).hexdigest()
    assert KNOWN_VALID not in identity.keyed_hash(KNOWN_VALID)


def test_encryption_round_trips_and_hides_the_number():
    token = identity.encrypt(KNOWN_VALID)
    assert KNOWN_VALID not in token
    assert identity.decrypt(token) == KNOWN_VALID


def test_keys_depend_on_the_configured_identity_key(settings):
    before = identity.keyed_hash(KNOWN_VALID)
    settings.IDENTITY_KEY = "another-key-used-by-another-deployment"
    assert identity.keyed_hash(KNOWN_VALID) != before
