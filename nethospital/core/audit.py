"""The audit trail (R22, R23): ``record`` for writes and reads, ``verify_chain`` for tampering.

Every clinical write records an entry inside the action's transaction, so the entry exists if and
only if the write does. Reads of a patient's health data record an entry in their own small
transaction. Entries never carry identity numbers, tokens or message bodies: only ids and codes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Model

from nethospital.core import bulk, clock, context
from nethospital.core.choices import AuditOutcome
from nethospital.core.models import AuditChainHead, AuditEntry

GENESIS_HASH = "0" * 64


def _canonical(entry: AuditEntry) -> bytes:
    payload = {
        "sequence": entry.sequence,
        # UTC: the same text whether the time comes from the clock (any zone) or the database.
        "occurred_at": entry.occurred_at.astimezone(dt.UTC).isoformat(),
        "actor_id": entry.actor_id,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "patient_id": entry.patient_id,
        "hospital_id": entry.hospital_id,
        "client_address": entry.client_address,
        "channel": entry.channel,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "previous_hash": entry.previous_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def compute_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


def _lock_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        try:
            with transaction.atomic():
                AuditChainHead.objects.create(pk=1)
        except IntegrityError:
            pass  # another writer created it first
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def _object_ref(obj: Model | None) -> tuple[str, str]:
    if obj is None:
        return "", ""
    return obj._meta.label_lower, str(obj.pk)


def _id_of(value: Model | int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, Model):
        return int(value.pk)
    return int(value)


@dataclass(frozen=True)
class Pending:
    """One entry for ``record_many``: the arguments of ``record``, and the request it came from
    (the current one when None)."""

    actor: Any
    action: str
    obj: Model | None = None
    patient: Model | int | None = None
    hospital: Model | int | None = None
    outcome: str = AuditOutcome.SUCCESS
    role: str | None = None
    detail: dict[str, Any] | None = None
    request_context: context.RequestContext | None = None


def _entry(pending: Pending, sequence: int, previous_hash: str) -> AuditEntry:
    ctx = pending.request_context or context.current()
    actor = pending.actor
    actor_id = getattr(actor, "pk", None) if actor is not None and getattr(actor, "is_authenticated", False) else None
    role = pending.role
    if role is None:
        role_label = getattr(actor, "audit_role_label", None)
        role = role_label() if callable(role_label) else ""
    object_type, object_id = _object_ref(pending.obj)
    entry = AuditEntry(
        sequence=sequence,
        occurred_at=clock.now(),
        actor_id=actor_id,
        actor_role=(role or "")[:40],
        action=pending.action,
        object_type=object_type,
        object_id=object_id,
        patient_id=_id_of(pending.patient),
        hospital_id=_id_of(pending.hospital),
        client_address=ctx.client_address,
        channel=ctx.channel,
        outcome=str(pending.outcome),
        detail=pending.detail or {},
        previous_hash=previous_hash,
    )
    entry.entry_hash = compute_hash(entry)
    return entry


def record(
    actor: Any,
    action: str,
    obj: Model | None = None,
    *,
    patient: Model | int | None = None,
    hospital: Model | int | None = None,
    outcome: str = AuditOutcome.SUCCESS,
    role: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the chain. Call it last in an action, inside the action's transaction,
    so the chain lock is held only for the moment before commit."""
    pending = Pending(actor, action, obj, patient, hospital, outcome, role, detail)
    with transaction.atomic():
        head = _lock_head()
        entry = _entry(pending, head.sequence + 1, head.last_hash)
        entry.save(force_insert=True)
        head.sequence = entry.sequence
        head.last_hash = entry.entry_hash
        head.save(update_fields=["sequence", "last_hash"])
    return entry


def _head_names() -> tuple[str, str, str, str]:
    quote, meta = connection.ops.quote_name, AuditChainHead._meta
    columns = {field.name: field.column for field in meta.concrete_fields}
    return quote(meta.db_table), quote(columns["sequence"]), quote(columns["last_hash"]), quote(columns["id"])


def _lock_head_fast() -> tuple[int, str]:
    """The chain head's sequence and hash, locked: ``_lock_head`` in one fixed statement (the head
    is locked by every audited write of the platform, so its query is kept short to build)."""
    table, sequence, last_hash, pk = _head_names()
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sequence}, {last_hash} FROM {table} WHERE {pk} = 1{lock}")  # noqa: S608 - no input
        row = cursor.fetchone()
    if row is None:
        head = _lock_head()  # the first entry ever: create the head
        return head.sequence, head.last_hash
    return int(row[0]), str(row[1])


def _move_head(sequence: int, last_hash: str) -> None:
    table, sequence_column, hash_column, pk = _head_names()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sequence_column} = %s, {hash_column} = %s WHERE {pk} = 1",  # noqa: S608 - no input
            [sequence, last_hash],
        )


def record_many(entries: list[Pending]) -> list[AuditEntry]:
    """Append several entries, in order, under one lock of the chain head: one insert and one head
    update for all of them. For actions that write many things in one transaction (the chat's group
    commit): with ``record`` per item the head stays locked for five statements per item, and every
    writer of the platform waits for it. Same rules as ``record``: call it last, inside the transaction
    (inside one, no savepoint of its own: if it fails, the whole transaction does, as it must)."""
    if not entries:
        return []
    with transaction.atomic(savepoint=False):
        sequence, previous_hash = _lock_head_fast()
        rows: list[AuditEntry] = []
        for pending in entries:
            entry = _entry(pending, sequence + 1, previous_hash)
            sequence, previous_hash = entry.sequence, entry.entry_hash
            rows.append(entry)
        bulk.insert(rows)
        _move_head(sequence, previous_hash)
    return rows


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def is_intact(self) -> bool:
        return self.broken_at is None


def verify_chain(entries: Iterable[AuditEntry] | None = None) -> ChainReport:
    """Walk the chain in order and report the first broken link: an altered entry (its hash no
    longer matches), a removed entry (a gap in the sequence or a previous hash that points
    elsewhere), or a removed tail (the head says there were more entries)."""
    if entries is None:
        entries = AuditEntry.objects.order_by("sequence").iterator(chunk_size=2000)
    expected_sequence = 1
    previous_hash = GENESIS_HASH
    checked = 0
    for entry in entries:
        if entry.sequence != expected_sequence:
            return ChainReport(checked, expected_sequence, f"entry {expected_sequence} is missing")
        if entry.previous_hash != previous_hash:
            return ChainReport(checked, entry.sequence, f"entry {entry.sequence} does not link to the entry before it")
        if compute_hash(entry) != entry.entry_hash:
            return ChainReport(checked, entry.sequence, f"entry {entry.sequence} was altered")
        previous_hash = entry.entry_hash
        expected_sequence += 1
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.sequence != checked:
        return ChainReport(
            checked, checked + 1, f"entries after {checked} are missing (the head is at {head.sequence})"
        )
    if head is not None and checked and head.last_hash != previous_hash:
        return ChainReport(checked, checked, f"entry {checked} does not match the chain head")
    return ChainReport(checked)
