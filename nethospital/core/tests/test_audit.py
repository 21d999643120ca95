import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from nethospital.core import audit, context
from nethospital.core.choices import AuditOutcome
from nethospital.core.models import AuditChainHead, AuditEntry

pytestmark = pytest.mark.django_db


def _write(n: int) -> list[AuditEntry]:
    return [audit.record(None, f"test.action.{i}", None, patient=100 + i, detail={"i": i}) for i in range(n)]


def test_entries_form_a_chain_with_contiguous_sequence():
    entries = _write(3)
    assert [e.sequence for e in entries] == [1, 2, 3]
    assert entries[0].previous_hash == audit.GENESIS_HASH
    assert entries[1].previous_hash == entries[0].entry_hash
    assert entries[2].previous_hash == entries[1].entry_hash
    assert AuditChainHead.objects.get(pk=1).sequence == 3
    report = audit.verify_chain()
    assert report.is_intact and report.checked == 3


def test_record_keeps_client_address_and_channel_from_the_request_context(patient_user):
    with context.using(context.RequestContext(client_address="10.1.2.3", channel="api")):
        entry = audit.record(patient_user, "patient.chart.view", None, patient=7, outcome=AuditOutcome.DENIED)
    assert (entry.client_address, entry.channel, entry.actor_id, entry.outcome) == (
        "10.1.2.3",
        "api",
        patient_user.pk,
        "denied",
    )
    assert entry.actor_role == "patient"


def _tamper(sql: str, params: list) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses tampering outright: tests/test_postgres_audit_trigger.py")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_verify_detects_an_altered_entry():
    entries = _write(5)
    _tamper("UPDATE core_auditentry SET action = %s WHERE sequence = %s", ["patient.chart.view", 3])
    report = audit.verify_chain()
    assert (report.broken_at, report.checked) == (3, 2)
    assert "altered" in report.reason
    assert entries


def test_verify_detects_a_removed_entry_in_the_middle():
    _write(5)
    _tamper("DELETE FROM core_auditentry WHERE sequence = %s", [2])
    report = audit.verify_chain()
    assert report.broken_at == 2 and "missing" in report.reason


def test_verify_detects_a_removed_tail():
    _write(4)
    _tamper("DELETE FROM core_auditentry WHERE sequence >= %s", [3])
    report = audit.verify_chain()
    assert report.broken_at == 3 and "missing" in report.reason


def test_verify_detects_a_rewritten_entry_with_recomputed_hash():
    # An attacker who recomputes the altered entry's own hash still breaks the next link.
    _write(4)
    entry = AuditEntry.objects.get(sequence=2)
    entry.detail = {"i": 999}
    new_hash = audit.compute_hash(entry)
    _tamper("UPDATE core_auditentry SET detail = %s, entry_hash = %s WHERE sequence = 2", ['{"i": 999}', new_hash])
    report = audit.verify_chain()
    assert report.broken_at == 3 and "does not link" in report.reason


def test_audit_verify_command_reports_intact_and_broken_chains(capsys):
    _write(3)
    call_command("audit", "verify")
    assert "3 entries verified" in capsys.readouterr().out
    _tamper("UPDATE core_auditentry SET outcome = %s WHERE sequence = %s", ["denied", 1])
    with pytest.raises(CommandError, match="broken at entry 1"):
        call_command("audit", "verify")


def test_chain_verifies_when_written_at_a_non_utc_clock():
    """Entries written while the clock runs in Shanghai time still verify after a round trip
    through the database (which hands the time back in UTC)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from nethospital.core import clock

    with clock.frozen(dt.datetime(2026, 11, 23, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))):
        audit.record(None, "test.shanghai")
        audit.record(None, "test.shanghai")
    report = audit.verify_chain()
    assert report.is_intact and report.checked == 2, report
