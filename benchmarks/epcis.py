#!/usr/bin/env python3
"""EPCIS capture and verification benchmark (issue 6, point 8), on PostgreSQL.

    .venv/bin/python benchmarks/epcis.py [--events 100000 --per-document 1000 --verifications 10000]
                                         [--workers 2]

A script, not a test. PostgreSQL from DATABASE_URL, else TEST_DATABASE_URL, else
postgres://postgres@127.0.0.1:5432/ (127.0.0.1 only). It creates a database
``nethospital_bench_epcis_<pid>``, migrates it (which seeds the drug catalogue) and drops it at the end.

1. Capture: ``--events`` events in EPCISDocuments of ``--per-document`` events, each document through
   the real capture code path *in process*: the JSON body parsed, ``capture.submit_capture`` (document
   checks, capture job row) and, on commit, the django-tasks task (immediate backend) that validates
   every event, computes hash IDs, stores events and identifiers in bulk and derives pack state
   (``state.apply_events``: packs, aggregation, alerts) in one transaction. No HTTP server.
   Each document of 1,000 is a day of one factory and one pharmacy: 600 boxes commissioned (with lot
   and expiry), packed 20 to a case (30 AggregationEvents), the cases shipped (30) and received at
   the pharmacy (30: aggregation resolves the boxes), and 310 boxes dispensed one by one.
   Then, unless ``--workers 0``, the production path: ``--events`` more events (the following days,
   other boxes) submitted in process with the *database* task backend (``capture.submit_capture``: the
   job row and its django-tasks row, as a 202 would leave them) while ``--workers`` ``nethospital
   worker`` processes run the same capture task, each job in its own process and transaction; timed
   from the first submission to the last job finished. Both figures are printed; the targets are
   judged on the production path (capture 2), which is how ``POST /epcis/capture`` runs when deployed
   (202, then a worker); capture 1 is embedded mode, printed for comparison with earlier runs
   (``--workers 0`` judges it instead).
2. Verification: ``--verifications`` random commissioned boxes, each scanned as a GS1 DataMatrix
   element string (``]d2 01 GTIN 17 expiry 10 lot GS 21 serial``) and verified by
   ``traceability.verify.verify_code`` (the public verification's function), one after another.
3. Raw baselines in the same run: COPY (psycopg ``COPY FROM STDIN``) of the very rows capture 1
   stored (events, identifiers, packs) into identical tables (``LIKE ... INCLUDING ALL``: same
   columns, indexes and constraints), in one transaction; and an indexed ``SELECT`` of each verified
   code's pack row by identifier (psycopg, prepared, one after another).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_HOSTS = {"127.0.0.1"}


def log(message: str) -> None:
    print(f"[epcis] {message}", file=sys.stderr, flush=True)


def server_url() -> str:
    url = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER_URL
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"benchmarks/epcis.py needs PostgreSQL, not {parts.scheme or url!r}")
    if (parts.hostname or "") not in LOCAL_HOSTS:
        raise SystemExit(f"benchmarks/epcis.py talks to 127.0.0.1 only, not {parts.hostname}")
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.contextmanager
def bench_database(url: str) -> Iterator[str]:
    import psycopg

    name = f"nethospital_bench_epcis_{os.getpid()}"
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"database {name} created")
    try:
        yield with_database(url, name)
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django may not be set up yet
            pass
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"database {name} dropped")


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "nethospital.settings"
    os.environ["NETHOSPITAL_TASKS"] = "immediate"  # the task runs in this process, on commit
    os.environ["DB_POOL"] = "0"
    os.environ.setdefault("NETHOSPITAL_VAR_DIR", f"/tmp/nethospital_bench_epcis_{os.getpid()}")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    logging.getLogger("django_tasks").setLevel(logging.WARNING)  # two lines per document otherwise
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- documents ---------------------------------------------------------------------------------------


def make_documents(
    count: int,
    per_document: int,
    gtins: list[str],
    location: str,
    *,
    first_serial: int = 100000,
    first_case: int = 1,
    first_day: int = 0,
) -> list[tuple[bytes, list[str]]]:
    """``count`` events in documents of ``per_document``; returns (body, element strings of the boxes)."""
    from nethospital.traceability import codes

    documents = []
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=first_day)
    serial = first_serial
    case_serial = first_case
    factory = "urn:epc:id:sgln:0614141.00001.0"
    for number in range((count + per_document - 1) // per_document):
        size = min(per_document, count - number * per_document)
        day = start + dt.timedelta(days=number)
        boxes_n = size * 600 // 1000
        cases_n = boxes_n // 20
        gtin = gtins[number % len(gtins)]
        lot = f"L{number:05d}"
        expiry = (day + dt.timedelta(days=700)).date()
        boxes = []
        scans = []
        for _ in range(boxes_n):
            serial += 1
            boxes.append(codes.sgtin_urn(gtin, str(serial)))
            scans.append(f"]d201{gtin}17{expiry:%y%m%d}10{lot}\x1d21{serial}")
        events: list[dict[str, Any]] = []

        def event(minutes: int, day: dt.datetime = day, events: list[Any] = events, **fields: Any) -> dict[str, Any]:
            when = (day + dt.timedelta(minutes=minutes, seconds=len(events) % 60)).isoformat()
            return {"eventTime": when, "eventTimeZoneOffset": "+08:00", **fields}

        for box in boxes:
            events.append(
                event(
                    0,
                    type="ObjectEvent",
                    action="ADD",
                    bizStep="commissioning",
                    disposition="active",
                    epcList=[box],
                    readPoint={"id": factory},
                    bizLocation={"id": factory},
                    ilmd={"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": expiry.isoformat()},
                )
            )
        cases = []
        for index in range(cases_n):
            case = f"urn:epc:id:sscc:0614141.{number % 10}{case_serial:09d}"
            case_serial += 1
            cases.append(case)
            events.append(
                event(
                    60,
                    type="AggregationEvent",
                    action="ADD",
                    bizStep="packing",
                    disposition="container_closed",
                    parentID=case,
                    childEPCs=boxes[index * 20 : index * 20 + 20],
                    bizLocation={"id": factory},
                )
            )
        for case in cases:
            events.append(
                event(
                    120,
                    type="ObjectEvent",
                    action="OBSERVE",
                    bizStep="shipping",
                    disposition="in_transit",
                    epcList=[case],
                )
            )
        for case in cases:
            events.append(
                event(
                    600,
                    type="ObjectEvent",
                    action="OBSERVE",
                    bizStep="receiving",
                    disposition="sellable_accessible",
                    epcList=[case],
                    bizLocation={"id": location},
                )
            )
        for box in boxes[: size - len(events)]:
            events.append(
                event(
                    900,
                    type="ObjectEvent",
                    action="OBSERVE",
                    bizStep="dispensing",
                    disposition="dispensed",
                    epcList=[box],
                    bizLocation={"id": location},
                )
            )
        document = {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": day.isoformat(),
            "epcisBody": {"eventList": events},
        }
        documents.append((json.dumps(document).encode(), scans))
    return documents


# --- measuring ---------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def capture_all(user: Any, documents: list[tuple[bytes, list[str]]]) -> tuple[float, list[float], int]:
    from nethospital.traceability import capture, epcis
    from nethospital.traceability.models import CaptureJob

    epcis.warm_up()
    per_document: list[float] = []
    started = time.perf_counter()
    for body, _ in documents:
        t0 = time.perf_counter()
        job = capture.submit_capture(user, epcis.parse_json(body), size=len(body))  # autocommit: runs on commit
        per_document.append(time.perf_counter() - t0)
        job.refresh_from_db()
        if job.status != "success":
            raise SystemExit(f"capture job {job.pk} ended {job.status}: {job.errors[:2]}")
    total = time.perf_counter() - started
    return total, per_document, CaptureJob.objects.count()


# Capture 1's figures when the production path runs too: printed, not judged.
REFERENCE_ONLY = "(embedded mode, one process: for comparison; the targets are judged on capture 2)"
WORKER_POLL_INTERVAL = 0.1  # seconds; production's default is 1 s (only an idle worker waits)


def start_workers(count: int, database_url: str, log_dir: Path) -> list[Any]:
    """``count`` ``nethospital worker`` processes on the benchmark's database, database task backend,
    the connection pool as in production."""
    import subprocess

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        NETHOSPITAL_TASKS="database",
        DJANGO_SETTINGS_MODULE="nethospital.settings",
    )
    env.pop("DB_POOL", None)  # production default: the pool
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    for number in range(count):
        output = (log_dir / f"worker{number}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "worker", "--interval", str(WORKER_POLL_INTERVAL)],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        )
    return processes


def stop_workers(processes: list[Any]) -> None:
    import signal

    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except Exception:
            process.kill()
            process.wait()


def wait_for_jobs(job_ids: list[Any], processes: list[Any], timeout: float = 1800) -> None:
    from nethospital.traceability.models import CaptureJob

    deadline = time.monotonic() + timeout
    while CaptureJob.objects.filter(pk__in=job_ids, status="running").exists():
        if any(process.poll() is not None for process in processes):
            raise SystemExit("a worker process ended before the jobs were done (see its log)")
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not finish the capture jobs in time")
        time.sleep(0.05)


def capture_with_workers(
    user: Any, documents: list[tuple[bytes, list[str]]], warm_up: list[tuple[bytes, list[str]]], processes: list[Any]
) -> tuple[float, float]:
    """Submit the documents with the database task backend while the worker processes run the
    capture jobs; returns (seconds from the first submission to the last job finished, seconds
    of submitting). A few small documents first (not timed) load the workers' code and validators."""
    from django.test import override_settings

    from nethospital.traceability import capture, epcis
    from nethospital.traceability.models import CaptureJob

    with override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}):
        warm_ids = [capture.submit_capture(user, epcis.parse_json(body), size=len(body)).pk for body, _ in warm_up]
        wait_for_jobs(warm_ids, processes)
        job_ids = []
        started = time.perf_counter()
        for body, _ in documents:
            job_ids.append(capture.submit_capture(user, epcis.parse_json(body), size=len(body)).pk)
        submitted = time.perf_counter() - started
        wait_for_jobs(job_ids, processes)
        total = time.perf_counter() - started
    failed = CaptureJob.objects.filter(pk__in=job_ids + warm_ids).exclude(status="success")
    if failed.exists():
        job = failed.first()
        assert job is not None
        raise SystemExit(f"capture job {job.pk} ended {job.status}: {job.errors[:2]}")
    return total, submitted


def verify_all(codes_to_verify: list[str]) -> tuple[float, list[float], int]:
    from nethospital.traceability.verify import verify_code

    latencies = []
    genuine = 0
    started = time.perf_counter()
    for text in codes_to_verify:
        t0 = time.perf_counter()
        result = verify_code(text)
        latencies.append(time.perf_counter() - t0)
        genuine += bool(result.genuine)
    return time.perf_counter() - started, latencies, genuine


COPIED_TABLES = ["traceability_epcisevent", "traceability_eventidentifier", "traceability_pack"]


def last_ids() -> dict[str, int]:
    """The highest id of each copied table (the rows stored so far)."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for table in COPIED_TABLES:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
            found[table] = cursor.fetchone()[0]
    return found


def copy_baseline(database_url: str, up_to: dict[str, int]) -> tuple[float, dict[str, int]]:
    """COPY the rows the sequential capture stored (ids up to ``up_to``: the same rows whatever else
    was captured after) into identical tables; the rows are read first (not timed)."""
    import psycopg

    tables = COPIED_TABLES
    counts: dict[str, int] = {}
    with psycopg.connect(database_url) as conn:
        data: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for table in tables:
            with conn.cursor() as cur:
                cur.execute(f"SELECT * FROM {table} WHERE id <= %s", (up_to[table],))
                columns = [d.name for d in cur.description or []]
                data[table] = (columns, cur.fetchall())
            conn.execute(f"CREATE TABLE copy_{table} (LIKE {table} INCLUDING ALL)")
            counts[table] = len(data[table][1])
        conn.commit()
        jsonb_columns = {"document", "corrective_event_ids"}
        started = time.perf_counter()
        with conn.transaction():
            for table in tables:
                columns, rows = data[table]
                with conn.cursor().copy(f"COPY copy_{table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(
                            [
                                json.dumps(v) if c in jsonb_columns and v is not None else v
                                for c, v in zip(columns, row, strict=True)
                            ]
                        )
        elapsed = time.perf_counter() - started
    return elapsed, counts


def select_baseline(database_url: str, identifiers: list[str]) -> tuple[float, list[float]]:
    import psycopg

    latencies = []
    with psycopg.connect(database_url, prepare_threshold=0) as conn:
        started = time.perf_counter()
        for identifier in identifiers:
            t0 = time.perf_counter()
            conn.execute("SELECT * FROM traceability_pack WHERE identifier = %s", (identifier,)).fetchone()
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    return elapsed, latencies


def load_average() -> str:
    """The machine's load average (other work on these CPUs shows there)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine(url: str) -> str:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]  # type: ignore[index]
        buffers = conn.execute("SHOW shared_buffers").fetchone()[0]  # type: ignore[index]
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {platform.python_version()}, "
        f"PostgreSQL {version} (shared_buffers {buffers}, synchronous_commit {sync}), same machine"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-document", type=int, default=1000)
    parser.add_argument("--verifications", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="nethospital worker processes for the second capture (the production path); 0: none",
    )
    args = parser.parse_args()
    url = server_url()
    banner = machine(url)
    load_before = load_average()
    with bench_database(url) as database_url:
        setup_django(database_url)
        from django.core.management import call_command

        log("migrating (seeds the drug catalogue)")
        call_command("migrate", verbosity=0)
        import django
        from django.conf import settings

        from nethospital.accounts.choices import Role
        from nethospital.prescriptions.models import DrugPack
        from nethospital.traceability import state
        from nethospital.traceability.models import Alert, EPCISEvent, EventIdentifier, Pack
        from nethospital.traceability.tests.trace_helpers import pharmacy, staff

        org = pharmacy("Benchmark Pharmacy")
        user = staff(Role.PHARMACY_STAFF, org)
        gtins = list(DrugPack.objects.order_by("gtin").values_list("gtin", flat=True))
        phases = 2 if args.workers > 0 else 1
        log(f"making {phases} x {args.events} events in documents of {args.per_document}")
        location = state.location_uri_for(org)
        all_documents = make_documents(phases * args.events, args.per_document, gtins, location)
        documents = all_documents[: len(all_documents) // phases]
        worker_documents = all_documents[len(documents) :]
        log("capturing in process")
        capture_seconds, per_document, jobs = capture_all(user, documents)
        load_after_capture = load_average()
        events_in_process = EPCISEvent.objects.count()
        stored_in_process = last_ids()
        worker_seconds = submit_seconds = 0.0
        load_after_workers = ""
        if args.workers > 0:
            log(f"capturing with {args.workers} worker processes")
            warm_up = make_documents(
                4 * 50, 50, gtins, location, first_serial=90_000_000, first_case=500_000_000, first_day=-60
            )
            processes = start_workers(args.workers, database_url, Path(os.environ["NETHOSPITAL_VAR_DIR"]))
            try:
                worker_seconds, submit_seconds = capture_with_workers(user, worker_documents, warm_up, processes)
            finally:
                stop_workers(processes)
            load_after_workers = load_average()
        events = EPCISEvent.objects.count()
        identifiers = EventIdentifier.objects.count()
        packs = Pack.objects.count()
        alerts = Alert.objects.count()
        random.seed(args.seed)
        scans = [s for _, doc_scans in documents for s in doc_scans]
        chosen = random.sample(scans, min(args.verifications, len(scans)))
        log("verifying")
        verify_all(chosen[:200])  # warm up (imports, caches); not counted
        verify_seconds, verify_latencies, genuine = verify_all(chosen)
        load_after_verification = load_average()
        from nethospital.traceability import codes

        chosen_identifiers = [codes.parse(s, lookup=False).identifier for s in chosen]
        log("raw baselines")
        copy_seconds, copy_counts = copy_baseline(database_url, stored_in_process)
        select_baseline(database_url, chosen_identifiers[:200])  # warm up
        select_seconds, select_latencies = select_baseline(database_url, chosen_identifiers)

        capture_rate = events_in_process / capture_seconds
        worker_events = sum(len(json.loads(body)["epcisBody"]["eventList"]) for body, _ in worker_documents)
        worker_rate = worker_events / worker_seconds if worker_seconds else 0.0
        copy_rate = copy_counts["traceability_epcisevent"] / copy_seconds
        verify_rate = len(chosen) / verify_seconds
        select_rate = len(chosen) / select_seconds
        p50 = percentile(verify_latencies, 50) * 1000
        p99 = percentile(verify_latencies, 99) * 1000
        sp50 = percentile(select_latencies, 50) * 1000
        sp99 = percentile(select_latencies, 99) * 1000
        doc_p50 = statistics.median(per_document) * 1000
        doc_max = max(per_document) * 1000
        print()
        print(f"  machine: {banner}")
        print(
            f"  Django {django.get_version()}, tasks backend {settings.TASKS['default']['BACKEND'].rsplit('.', 1)[-1]}"
        )
        print(
            f"  load average (1, 5, 15 min): before {load_before}, after capture {load_after_capture}, "
            f"{'after workers ' + load_after_workers + ', ' if load_after_workers else ''}"
            f"after verification {load_after_verification}"
        )
        print()
        print(f"Capture 1, sequential: {args.events} events in {jobs} EPCISDocuments of {args.per_document}")
        print("  path                       in process: JSON parse + capture.submit_capture + the capture task")
        print("                             (immediate backend: validation, hash IDs, bulk store,")
        print("                             state.apply_events), one document after the other; no HTTP")
        print(f"  wall time                  {capture_seconds:.2f} s")
        print(f"  per document p50 / max    {doc_p50:.0f} ms / {doc_max:.0f} ms")
        if args.workers > 0:
            print(f"  events/s                   {capture_rate:,.0f}   {REFERENCE_ONLY}")
        else:
            print(
                f"  events/s                   {capture_rate:,.0f}   target >= 2,000: "
                f"{'MET' if capture_rate >= 2000 else 'MISSED'}"
            )
        if args.workers > 0:
            print()
            print(
                f"Capture 2, production path: {worker_events} more events (other boxes, the following days) in "
                f"{len(worker_documents)} EPCISDocuments of {args.per_document}"
            )
            print("  path                       in process: JSON parse + capture.submit_capture (job row, task row:")
            print(
                f"                             database task backend); {args.workers} `nethospital worker` processes "
                "run the capture task"
            )
            print(
                f"                             (poll interval {WORKER_POLL_INTERVAL} s), each job in its own process "
                "and transaction; no HTTP"
            )
            print(f"  wall time                  {worker_seconds:.2f} s (of it submitting: {submit_seconds:.2f} s)")
            print(
                f"  events/s                   {worker_rate:,.0f}   target >= 2,000: "
                f"{'MET' if worker_rate >= 2000 else 'MISSED'}"
            )
        print()
        print(
            f"  stored in all              {events} events, {identifiers} identifier rows, {packs} packs, "
            f"{alerts} alerts"
        )
        print()
        print(f"Verification: {len(chosen)} random boxes scanned as GS1 element strings, verify_code() one by one")
        print(f"  genuine                    {genuine} of {len(chosen)}")
        print(f"  wall time                  {verify_seconds:.2f} s")
        print(f"  verifications/s            {verify_rate:,.0f}")
        print(
            f"  latency p50 / p99          {p50:.2f} ms / {p99:.2f} ms   target p99 < 50 ms: "
            f"{'MET' if p99 < 50 else 'MISSED'}"
        )
        print()
        print("Raw baselines (same run, same database)")
        print(
            f"  COPY of capture 1's rows   {copy_counts['traceability_epcisevent']} events + "
            f"{copy_counts['traceability_eventidentifier']} identifiers + {copy_counts['traceability_pack']} packs "
            f"into identical tables: {copy_seconds:.2f} s = {copy_rate:,.0f} events/s"
        )
        print(
            f"  indexed SELECT of the codes {len(chosen)} packs by identifier: {select_seconds:.2f} s = "
            f"{select_rate:,.0f}/s, p50 / p99 {sp50:.2f} ms / {sp99:.2f} ms"
        )
        print()
        print("Ratios")
        share = capture_rate / copy_rate
        if args.workers > 0:
            print(f"  capture 1 (sequential) / COPY {share:.1%}   {REFERENCE_ONLY}")
        else:
            verdict = "MET" if share >= 0.15 else "MISSED"
            print(f"  capture 1 (sequential) / COPY {share:.1%}   target >= 15%: {verdict}")
        if args.workers > 0:
            share = worker_rate / copy_rate
            print(
                f"  capture 2 ({args.workers} workers) / COPY {share:.1%}   target >= 15%: "
                f"{'MET' if share >= 0.15 else 'MISSED'}"
            )
        print(
            f"  verify / SELECT            {verify_rate / select_rate:.1%} of the throughput, "
            f"p99 {p99 / sp99 if sp99 else 0:.1f}x"
        )


if __name__ == "__main__":
    main()
