"""Files in consultations: images and PDF documents only, the type read from the content.

A file is stored under ``MEDIA_ROOT/consultations/<hospital or "unfiled">/<random hex>`` with no
extension, never inside the static or template folders and never served by the web server: the only
way out is ``views.attachment_file``, which checks that the reader takes part in the consultation
(or is the patient's side, for a proof document) and sends it with ``Content-Disposition:
attachment`` and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction

from nethospital.accounts.models import User
from nethospital.consultations import access, errors
from nethospital.consultations.actions import _lock, _patient_for
from nethospital.consultations.models import Attachment
from nethospital.core import audit, clock
from nethospital.core.errors import INVALID_INPUT, DomainError, ensure

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff(head: bytes) -> str | None:
    """The content type judged from the first bytes, or None when it is not an allowed type."""
    for magic, content_type in SIGNATURES:
        if head.startswith(magic):
            return content_type
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def storage_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "consultations"


def path_of(attachment: Attachment) -> Path:
    return storage_root() / attachment.storage_name


def _clean_name(name: str) -> str:
    base = Path(name or "file").name
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '\\/:*?"<>|')
    return (cleaned or "file")[:120]


def _read_all(stream: IO[bytes], limit: int) -> bytes:
    chunks = []
    size = 0
    while True:
        chunk = stream.read(64 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise DomainError(errors.FILE_TOO_LARGE, field="file", limit=limit // (1024 * 1024))
        chunks.append(chunk)
    return b"".join(chunks)


def upload_attachment(
    user: User,
    stream: IO[bytes],
    name: str,
    *,
    consultation_id: int | None = None,
    patient_id: int | None = None,
) -> Attachment:
    """Store a file for a consultation (any participant) or, before a consultation exists, as a
    patient's proof document (the patient's side only)."""
    ensure(consultation_id is not None or patient_id is not None, INVALID_INPUT, field="consultation_id")
    limit = settings.NETHOSPITAL_ATTACHMENT_MAX_BYTES
    data = _read_all(stream, limit)
    ensure(data, errors.FILE_EMPTY, field="file")
    content_type = sniff(data[:16])
    ensure(content_type is not None, errors.FILE_TYPE_FORBIDDEN, field="file")
    assert content_type is not None
    folder = "unfiled"
    with transaction.atomic():
        consultation = None
        if consultation_id is not None:
            consultation = _lock(consultation_id)
            access.check_participant(user, consultation)
            ensure(consultation.is_open, errors.CONSULTATION_CLOSED)
            patient = consultation.patient
            folder = str(consultation.hospital_id)
        else:
            assert patient_id is not None
            patient = _patient_for(user, patient_id)
        storage_name = f"{folder}/{secrets.token_hex(16)}"
        attachment = Attachment.objects.create(
            consultation=consultation,
            patient=patient,
            hospital_id=consultation.hospital_id if consultation else None,
            uploaded_by=user,
            original_name=_clean_name(name),
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_name=storage_name,
            uploaded_at=clock.now(),
        )
        target = path_of(attachment)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written inside the transaction: if the row rolls back, an orphan file is harmless (random
        # name, no row points at it); a row never exists without its file.
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        audit.record(
            user,
            "consultation.attachment.upload",
            attachment,
            patient=patient,
            hospital=attachment.hospital_id,
            detail={"type": content_type, "size": len(data)},
        )
    return attachment


def access_attachment(user: User, consultation_id: int, attachment_id: int) -> Attachment:
    """The attachment if the user may read it (audited)."""
    consultation = access.access_consultation(user, consultation_id, "attachment.read")
    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is None or (
        attachment.consultation_id != consultation.pk and consultation.proof_attachment_id != attachment.pk
    ):
        raise DomainError(errors.CONSULTATION_NOT_FOUND)
    return attachment
