"""Resident identity numbers (GB 11643-1999): parsing, checking, and storage that never keeps the
number in clear.

An 18-character number is 6 digits of region, 8 of birth date (YYYYMMDD), 3 of sequence (odd for
men, even for women) and one ISO 7064 MOD 11-2 check character (0-9 or X). We store a keyed hash
(HMAC-SHA256) for uniqueness (R30), the number encrypted with a key derived from the identity key,
and a masked form for display (``1101**********123X``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from nethospital.accounts import errors
from nethospital.accounts.choices import Sex
from nethospital.core import clock
from nethospital.core.errors import DomainError

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
# First two digits: province-level division codes of GB/T 2260 (plus 71 Taiwan, 81/82 Hong Kong, Macao).
PROVINCE_CODES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54}
    | {61, 62, 63, 64, 65, 71, 81, 82, 83}
)
_SHAPE = re.compile(r"^\d{17}[\dX]$")
EARLIEST_BIRTH_DATE = dt.date(1880, 1, 1)


def check_character(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


@dataclass(frozen=True)
class ResidentIdentity:
    number: str
    region_code: str
    birth_date: dt.date
    sex: str

    @property
    def masked(self) -> str:
        return mask(self.number)


def normalise(raw: str) -> str:
    return (raw or "").strip().replace(" ", "").upper()


def parse(raw: str) -> ResidentIdentity:
    """Parse and check a resident identity number; raise ``DomainError`` saying what is wrong."""
    number = normalise(raw)
    field = "id_number"
    if len(number) != 18:
        raise DomainError(errors.ID_NUMBER_LENGTH, field=field)
    if not _SHAPE.match(number):
        raise DomainError(errors.ID_NUMBER_CHARACTERS, field=field)
    if int(number[:2]) not in PROVINCE_CODES:
        raise DomainError(errors.ID_NUMBER_REGION, field=field)
    try:
        birth_date = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise DomainError(errors.ID_NUMBER_BIRTH_DATE, field=field) from None
    if birth_date < EARLIEST_BIRTH_DATE or birth_date > clock.today():
        raise DomainError(errors.ID_NUMBER_BIRTH_DATE, field=field)
    if check_character(number[:17]) != number[17]:
        raise DomainError(errors.ID_NUMBER_CHECK, field=field)
    sex = Sex.MALE if int(number[16]) % 2 == 1 else Sex.FEMALE
    return ResidentIdentity(number=number, region_code=number[:6], birth_date=birth_date, sex=sex)


def make_number(region_code: str, birth_date: dt.date, sequence: int, sex: str) -> str:
    """Build a valid number (for demo data and tests): the sequence is adjusted to the sex."""
    sequence = sequence % 1000
    if (sequence % 2 == 1) != (sex == Sex.MALE):
        sequence = (sequence + 1) % 1000
    first17 = f"{region_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


def mask(number: str) -> str:
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


@lru_cache(maxsize=16)
def _derive(purpose: bytes, secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"nethospital-identity", info=purpose).derive(
        secret.encode()
    )


def _secret() -> str:
    return settings.IDENTITY_KEY or settings.SECRET_KEY


def _old_secrets() -> list[str]:
    """Earlier identity secrets, still read while ``nethospital rekey_identities`` moves rows off them."""
    return [secret for secret in settings.NETHOSPITAL_IDENTITY_OLD_KEYS if secret and secret != _secret()]


def _hash_with(secret: str, number: str) -> str:
    return hmac.new(_derive(b"hash", secret), normalise(number).encode(), hashlib.sha256).hexdigest()


def keyed_hash(number: str) -> str:
    """HMAC-SHA256 of the normalised number: equal numbers give equal hashes, and without the key
    the hash cannot be reversed by enumerating the (small) space of valid numbers."""
    return _hash_with(_secret(), number)


def keyed_hashes(number: str) -> list[str]:
    """The number's hash under the current secret, then under each old one: what a duplicate check
    looks for while rows are being re-keyed."""
    return [_hash_with(secret, number) for secret in [_secret(), *_old_secrets()]]


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(b"encrypt", secret)))


def encrypt(number: str) -> str:
    return _fernet(_secret()).encrypt(normalise(number).encode()).decode()


def decrypt(token: str) -> str:
    """The number, from a token made with the current secret or one of the old ones."""
    return MultiFernet([_fernet(secret) for secret in [_secret(), *_old_secrets()]]).decrypt(token.encode()).decode()


def is_current(token: str, hashed: str) -> bool:
    """Whether a stored (hash, token) pair is already under the current secret."""
    try:
        number = _fernet(_secret()).decrypt(token.encode()).decode()
    except InvalidToken:
        return False
    return hmac.compare_digest(keyed_hash(number), hashed)
