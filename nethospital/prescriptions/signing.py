"""Prescription signatures (R10): Ed25519 over the SHA-256 of a canonical JSON form.

Each doctor has one active key pair. The private key is stored encrypted (Fernet, with a key derived
by HKDF from ``NETHOSPITAL_SIGNING_KEK`` or the secret key and the key id) and is decrypted only
inside ``sign``, which the signing action calls for the doctor's own MFA-verified session. The public
key is stored in clear so that anyone can verify: ``verify`` recomputes the canonical form from the
rows as they are now, so any change after signing breaks it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from nethospital.core import clock
from nethospital.directory.models import Practitioner
from nethospital.prescriptions.models import Prescription, SigningKey


def _fernet(key_id: str) -> Fernet:
    secret = (settings.NETHOSPITAL_SIGNING_KEK or settings.SECRET_KEY).encode()
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"nethospital-signing", info=f"key:{key_id}".encode()
    ).derive(secret)
    return Fernet(base64.urlsafe_b64encode(derived))


def key_for(practitioner: Practitioner) -> SigningKey:
    """The doctor's active key, made on first use."""
    key = SigningKey.objects.filter(practitioner=practitioner, is_active=True).first()
    if key is not None:
        return key
    private = Ed25519PrivateKey.generate()
    key_id = secrets.token_hex(8)
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey.objects.create(
        practitioner=practitioner,
        key_id=key_id,
        public_key=raw_public.hex(),
        private_key_encrypted=_fernet(key_id).encrypt(raw_private).decode(),
        created_at=clock.now(),
    )


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _instant(value: dt.datetime | None) -> str | None:
    """UTC, whole seconds: the same text whether the value comes from memory or the database."""
    return None if value is None else value.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def canonical(prescription: Prescription) -> bytes:
    """The signed content: who, for whom, from which visit, what, how long, valid until when."""
    items = [
        {
            "position": item.position,
            "drug": item.drug.code,
            "name": item.drug.generic_name_en,
            "strength": item.drug.strength,
            "dose": _decimal(item.dose),
            "unit": item.drug.unit,
            "frequency": item.frequency,
            "route": item.route,
            "days": item.days,
            "quantity": item.quantity,
            "notes": item.notes,
        }
        for item in prescription.items.select_related("drug").order_by("position")
    ]
    document: dict[str, Any] = {
        "number": prescription.number,
        "version": prescription.version,
        "consultation": prescription.consultation_id,
        "patient": prescription.patient_id,
        "hospital": prescription.hospital_id,
        "doctor_licence": prescription.practitioner.licence_number,
        "diagnoses": list(prescription.diagnosis_codes),
        "supply_kind": prescription.supply_kind,
        "supply_reason": prescription.supply_reason,
        "weight_kg": _decimal(prescription.patient_weight_kg),
        "notes": prescription.notes,
        "signed_at": _instant(prescription.signed_at),
        "valid_until": _instant(prescription.valid_until),
        "replaces": prescription.replaces_id,
        "items": items,
    }
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def digest(prescription: Prescription) -> str:
    return hashlib.sha256(canonical(prescription)).hexdigest()


def sign(prescription: Prescription, key: SigningKey) -> tuple[str, str]:
    """(hash, signature hex) of the prescription as it is now."""
    raw_private = _fernet(key.key_id).decrypt(key.private_key_encrypted.encode())
    private = Ed25519PrivateKey.from_private_bytes(raw_private)
    content_hash = digest(prescription)
    return content_hash, private.sign(bytes.fromhex(content_hash)).hex()


@dataclass(frozen=True)
class Verification:
    valid: bool
    reason: str  # "ok", "unsigned", "content_changed", "bad_signature"
    content_hash: str
    key_id: str
    public_key: str


def verify(prescription: Prescription) -> Verification:
    key = prescription.signing_key
    if key is None or not prescription.signature:
        return Verification(False, "unsigned", "", "", "")
    content_hash = digest(prescription)
    if content_hash != prescription.canonical_hash:
        return Verification(False, "content_changed", content_hash, key.key_id, key.public_key)
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.public_key)).verify(
            bytes.fromhex(prescription.signature), bytes.fromhex(content_hash)
        )
    except (InvalidSignature, ValueError):
        return Verification(False, "bad_signature", content_hash, key.key_id, key.public_key)
    return Verification(True, "ok", content_hash, key.key_id, key.public_key)
