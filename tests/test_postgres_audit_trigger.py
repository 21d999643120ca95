"""On PostgreSQL the database itself refuses to change or remove audit entries (R22, R23).

core/migrations/0002 installs a BEFORE UPDATE OR DELETE trigger on core_auditentry. These tests go
around the application on purpose (queryset update/delete, raw SQL) and expect the database to say
no. Each refused statement runs in a savepoint (``transaction.atomic``) so the test's transaction
stays usable for the checks after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.forms.models import model_to_dict

from nethospital.core import audit
from nethospital.core.models import AuditEntry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REFUSAL = "the audit log is append-only"


def snapshot(entry: AuditEntry) -> dict[str, Any]:
    return model_to_dict(AuditEntry.objects.get(pk=entry.pk))


def raw(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def assert_refused(change: Callable[[], object], operation: str) -> None:
    with pytest.raises(DatabaseError) as refused, transaction.atomic():
        change()
    message = str(refused.value)
    assert REFUSAL in message, message
    assert f"{operation} on core_auditentry is refused" in message, message


@pytest.fixture
def entries(patient_user) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    written = [
        audit.record(patient_user, "patient.chart.view", patient_user, patient=patient_user.pk, detail={"n": n})
        for n in range(3)
    ]
    assert connection.vendor == "postgresql"
    return written


def test_trigger_is_installed_on_the_audit_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'core_auditentry'::regclass AND NOT tgisinternal")
        triggers = [name for (name,) in cursor.fetchall()]
    assert triggers == ["core_auditentry_append_only"]


def test_queryset_update_is_refused_and_the_row_is_unchanged(entries: list[AuditEntry]) -> None:
    target = entries[1]
    before = snapshot(target)

    assert_refused(lambda: AuditEntry.objects.filter(pk=target.pk).update(action="x"), "UPDATE")

    assert snapshot(target) == before
    assert AuditEntry.objects.get(pk=target.pk).action == "patient.chart.view"


def test_model_save_is_refused(entries: list[AuditEntry]) -> None:
    target = AuditEntry.objects.get(pk=entries[0].pk)
    before = snapshot(target)
    target.outcome = "denied"

    assert_refused(lambda: target.save(update_fields=["outcome"]), "UPDATE")

    assert snapshot(target) == before


def test_queryset_delete_is_refused_and_the_row_remains(entries: list[AuditEntry]) -> None:
    target = entries[2]
    before = snapshot(target)

    assert_refused(lambda: AuditEntry.objects.filter(pk=target.pk).delete(), "DELETE")

    assert snapshot(target) == before
    assert AuditEntry.objects.count() >= 3


def test_raw_sql_update_and_delete_are_refused(entries: list[AuditEntry]) -> None:
    target = entries[0]
    before = snapshot(target)

    assert_refused(lambda: raw("UPDATE core_auditentry SET action = %s WHERE id = %s", ["x", target.pk]), "UPDATE")
    assert_refused(lambda: raw("UPDATE core_auditentry SET detail = '{}'::jsonb", []), "UPDATE")
    assert_refused(lambda: raw("DELETE FROM core_auditentry WHERE id = %s", [target.pk]), "DELETE")
    assert_refused(lambda: raw("DELETE FROM core_auditentry", []), "DELETE")

    assert snapshot(target) == before


def test_appending_still_works_after_refusals_and_the_chain_is_intact(entries: list[AuditEntry]) -> None:
    assert_refused(lambda: AuditEntry.objects.filter(pk=entries[0].pk).update(action="x"), "UPDATE")
    assert_refused(lambda: AuditEntry.objects.all().delete(), "DELETE")

    appended = audit.record(None, "system.check", None)

    assert appended.sequence == entries[-1].sequence + 1
    assert appended.previous_hash == entries[-1].entry_hash
    report = audit.verify_chain()
    assert report.is_intact, report.reason
    assert report.checked == AuditEntry.objects.count()
