#!/usr/bin/env python3
"""Booking rush: 1,000 logged-in patients try to book one doctor's 200 slots at the instant they open.

    .venv/bin/python benchmarks/booking_rush.py [--patients 1000 --slots 200 --concurrency 200 --workers 2]

What it does (issue 3, point 7; benchmarks/README.md has the details):

1. Creates a fresh PostgreSQL database ``nethospital_bench_<pid>`` on the server named by
   DATABASE_URL, else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/ (127.0.0.1 only),
   migrates it, and drops it at the end, even on error or Ctrl-C.
2. Seeds, through the real actions: a hospital, a verified doctor whose slots (capacity 1) all open
   at one instant, and the patients (real accounts, ``sign_up_patient``). Logins are sessions
   written straight into the session table (as ``login()`` would), each with a CSRF cookie and header,
   because the API checks CSRF on POST for session-authenticated requests (django-ninja's django_auth).
3. Starts the real server, ``nethospital serve --no-demo --workers N`` (uvicorn, N processes), with
   DEBUG off, REDIS_URL=redis://127.0.0.1:6379/0 when it answers (shared rate limits and channel layer),
   and the per-address booking limit raised (every client is 127.0.0.1); the per-account limit stays.
4. The rush: every patient POSTs /api/appointments once (random slot, own Idempotency-Key) at the
   release instant, with at most --concurrency requests in flight. Then it checks the database for
   double bookings and lost bookings, and prints throughput and latency.
5. In the same run: (a) the same booking transaction in plain SQL (psycopg, a pool of --sql-pool
   connections, --concurrency threads) on a second doctor's fresh slots; (b) the trivial authenticated
   endpoint GET /api/ping, as many requests as the rush, same clients, same concurrency; and the ratios
   against the targets, each saying which figure is compared with which.
6. CPU time per request of the client, the server processes and the PostgreSQL backends, per phase
   (from /proc), so that a bottleneck in the client shows instead of passing for the server's.

Only the standard library, Django (the project), psycopg and httpx (to wait for the server) are used;
uvloop for the client's event loop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import platform
import queue
import random
import secrets
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
REDIS_URL = "redis://127.0.0.1:6379/0"
CSRF_CHARS = string.ascii_letters + string.digits
REQUEST_TIMEOUT = 30.0  # seconds, one HTTP request
PHASE_TIMEOUT = 300.0  # seconds, one phase of requests
SERVER_START_TIMEOUT = 90.0

MIN_PRACTICE = dt.timedelta(days=3 * 365)  # R5, as NETHOSPITAL_MIN_PRACTICE_YEARS
TARGET_P99_MS = 300.0
TARGET_PING_RATIO = 0.50
TARGET_SQL_RATIO = 0.10


# The environment this script was started with: the server gets it (DB_POOL_*, NETHOSPITAL_*), not the
# seeding process's own changes to os.environ.
ORIGINAL_ENVIRONMENT = dict(os.environ)


def log(message: str) -> None:
    print(f"[booking_rush] {message}", file=sys.stderr, flush=True)


# --- the database ---------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def server_url() -> str:
    url = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER_URL
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"booking_rush needs PostgreSQL, not {parts.scheme or url!r}")
    if (parts.hostname or "") not in LOCAL_HOSTS:
        raise SystemExit(f"booking_rush talks to 127.0.0.1 only, not {parts.hostname}")
    return url


@contextlib.contextmanager
def bench_database(url: str) -> Iterator[str]:
    import psycopg

    name = f"nethospital_bench_{os.getpid()}"
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
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"database {name} dropped")
        except Exception as error:
            log(f"could not drop database {name}: {error}")


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def setup_django(database_url: str, var_dir: Path) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)  # the seeding process needs no Redis
    os.environ["DJANGO_SETTINGS_MODULE"] = "nethospital.settings"
    os.environ["NETHOSPITAL_VAR_DIR"] = str(var_dir)
    # This process seeds and checks with plain connections: a pool would keep them open (and its
    # threads reconnecting) until the database is dropped.
    os.environ["DB_POOL"] = "0"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    # The seed makes a thousand accounts; nobody logs in with their passwords (sessions are made
    # directly), so the slow production hasher would only cost time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the figures


# --- seeding --------------------------------------------------------------------------------------


@dataclass
class Seed:
    rush_doctor_id: int
    sql_doctor_id: int
    rush_slot_ids: list[int]
    sql_slot_ids: list[int]
    patients: list[tuple[int, int]]  # (user id, patient id)
    cookies: list[tuple[str, str]] = field(default_factory=list)  # (session key, CSRF secret)


def make_doctor_with_slots(admin: Any, hospital: Any, name: str, slots: int) -> tuple[int, list[int]]:
    """A verified doctor with ``slots`` 5-minute slots of capacity 1, 200 a day (06:00-22:40) from
    two days ahead: one-off sessions made by the real ``create_session``."""
    from nethospital.core import clock
    from nethospital.scheduling import actions
    from nethospital.scheduling.models import Slot
    from nethospital.testing import factories

    doctor = factories.doctor(hospital, admin=admin, legal_name=name)
    remaining, day = slots, clock.today() + dt.timedelta(days=2)
    while remaining > 0:
        today_count = min(remaining, 200)
        end = dt.datetime.combine(day, dt.time(6, 0)) + dt.timedelta(minutes=5 * today_count)
        actions.create_session(
            admin,
            doctor.pk,
            on_date=day,
            period="morning",
            start_time=dt.time(6, 0),
            end_time=end.time(),
            slot_minutes=5,
            capacity=1,
            modality="video",
        )
        remaining -= today_count
        day += dt.timedelta(days=1)
    ids = list(Slot.objects.filter(practitioner=doctor).order_by("starts_at").values_list("pk", flat=True))
    if len(ids) != slots:
        raise RuntimeError(f"expected {slots} slots, made {len(ids)}")
    return doctor.pk, ids


def seed(patients: int, slots: int) -> Seed:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from nethospital.accounts import actions as account_actions
    from nethospital.accounts.choices import Sex
    from nethospital.accounts.identity import make_number
    from nethospital.accounts.models import Patient, User
    from nethospital.testing import factories

    started = time.monotonic()
    hospital = factories.hospital()
    factories.internet_hospital(hospital)
    admin = factories.hospital_admin(hospital)
    rush_doctor, rush_slots = make_doctor_with_slots(admin, hospital, "抢号医生", slots)
    sql_doctor, sql_slots = make_doctor_with_slots(admin, hospital, "对照医生", slots)
    log(f"doctors and {2 * slots} slots seeded in {time.monotonic() - started:.1f}s")

    started = time.monotonic()
    for index in range(patients):
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=index)  # distinct birth dates: distinct identities
        sex = Sex.MALE if index % 2 else Sex.FEMALE
        account_actions.sign_up_patient(
            email=f"rush{index:05d}@example.org",
            password=factories.DEFAULT_PASSWORD,
            legal_name="抢号患者",
            id_number=make_number("110101", birth, index % 1000, sex),
            birth_date=birth,
            sex=sex,
            phone=f"139{index:08d}",
        )
    users = {u.pk: u for u in User.objects.filter(email__startswith="rush")}
    pairs = sorted((int(p.account_id or 0), p.pk) for p in Patient.objects.filter(account_id__in=users))
    log(f"{len(pairs)} patients signed up in {time.monotonic() - started:.1f}s")

    # One session per patient, as login() would store it, plus a CSRF secret for the cookie and header.
    started = time.monotonic()
    store = SessionStore()
    expire = timezone.now() + dt.timedelta(hours=2)
    rows, cookies = [], []
    for user_id, _ in pairs:
        user = users[user_id]
        key = secrets.token_hex(16)
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "allauth.account.auth_backends.AuthenticationBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
        cookies.append((key, "".join(secrets.choice(CSRF_CHARS) for _ in range(32))))
    Session.objects.bulk_create(rows, batch_size=500)
    log(f"{len(rows)} sessions made in {time.monotonic() - started:.1f}s")
    return Seed(rush_doctor, sql_doctor, rush_slots, sql_slots, pairs, cookies)


# --- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(
    database_url: str,
    workers: int,
    use_redis: bool,
    log_path: Path,
    *,
    tasks: str,
    concurrent_requests: int | None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = dict(ORIGINAL_ENVIRONMENT)
    env.update(
        DATABASE_URL=database_url,
        DEBUG=ORIGINAL_ENVIRONMENT.get("BENCH_DEBUG", "0"),
        # As in production: e-mails become tasks in the database, sent by `nethospital worker`.
        NETHOSPITAL_TASKS=tasks,
        NETHOSPITAL_BOOKING_RATE_PER_ADDRESS="100000",
        NETHOSPITAL_VAR_DIR=str(log_path.parent / "var"),
        NETHOSPITAL_CHANNEL_PREFIX=f"bench{os.getpid()}",
        PYTHONUNBUFFERED="1",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if use_redis:
        env["REDIS_URL"] = REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    nethospital = Path(sys.executable).parent / "nethospital"  # the console script of this venv
    if not nethospital.exists():
        raise RuntimeError(f"{nethospital} is missing: run this with the project's .venv/bin/python")
    command = [str(nethospital), "serve"]
    # --no-tick: the once-a-minute reminders/expiry thread would compete for the CPU mid-measurement.
    command += ["--no-demo", "--no-migrate", "--no-tick", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    if concurrent_requests is not None:
        command += ["--concurrent-requests", str(concurrent_requests)]
    log(f"starting: {' '.join(command[1:])} (log: {log_path})")
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base, process)
        yield base, process
    finally:
        stop(process)


def wait_for_server(base: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/api/ping", timeout=2).status_code in (401, 403):
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {SERVER_START_TIMEOUT:.0f}s")


@contextlib.contextmanager
def profiling(server: subprocess.Popen[bytes], directory: Path | None, *, gil_only: bool = False) -> Iterator[None]:
    """With --profile: py-spy samples every server worker (and the supervisor) while the block runs,
    and writes collapsed stacks (``py-spy record -f raw``) to ``directory``; with --profile-gil only the
    samples of a thread holding the GIL (where the CPU goes, not where threads wait)."""
    if directory is None:
        yield
        return
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        raise RuntimeError(f"--profile needs py-spy: {sys.executable} -m pip install py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True, text=True, timeout=10, check=False
    ).stdout.split()
    spies = [
        subprocess.Popen(
            [str(py_spy), "record", "--pid", pid, "--rate", "200", "-f", "raw", "-o", str(directory / f"{pid}.txt")]
            + (["--gil"] if gil_only else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in children
    ]
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        for spy in spies:
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(timeout=10)
        log(f"profiles of {len(spies)} worker(s) in {directory}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    log("server stopped")


# --- CPU accounting -------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 when it is gone or not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, timeout=10)
    return [int(p) for p in out.stdout.split()]


def backend_pids(database_name: str) -> list[int]:
    """The PostgreSQL backends connected to the benchmark's database (other than this query's)."""
    import psycopg

    with psycopg.connect(server_url(), autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database_name,)
        ).fetchall()
    return [int(pid) for (pid,) in rows]


@dataclass
class CpuUse:
    client: float = 0.0  # seconds: this process (the HTTP client, or the raw-SQL threads)
    server: float = 0.0  # the server's worker processes
    database: float = 0.0  # the PostgreSQL backends of the benchmark's database (0 if /proc shows none)

    def per_request(self, requests: int) -> str:
        def ms(seconds: float) -> str:
            return f"{seconds / requests * 1000:.2f} ms" if requests else "-"

        return f"client {ms(self.client)}, server {ms(self.server)}, PostgreSQL {ms(self.database)}"


@contextlib.contextmanager
def measuring_cpu(server: subprocess.Popen[bytes] | None, database_name: str) -> Iterator[CpuUse]:
    """CPU used during the block by this process, the server's workers and the database's backends.
    A backend that appears during the block (the pool growing) counts from its start; one that ends
    during it is missed (the pool keeps its connections, so none does in practice)."""
    use = CpuUse()
    workers = child_pids(server.pid) if server is not None else []
    backends = {pid: process_cpu_seconds(pid) for pid in backend_pids(database_name)}
    client, served = time.process_time(), sum(process_cpu_seconds(pid) for pid in workers)
    try:
        yield use
    finally:
        use.client = time.process_time() - client
        use.server = sum(process_cpu_seconds(pid) for pid in workers) - served
        use.database = sum(process_cpu_seconds(pid) - backends.get(pid, 0.0) for pid in backend_pids(database_name))


# --- HTTP load ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    index: int
    status: int  # 0: no response (timeout, connection error)
    body: Any
    latency: float  # seconds, from sending to the full response
    finished: float  # monotonic


@dataclass
class Phase:
    outcomes: list[Outcome]
    wall: float  # seconds from the start instant to the last response
    started: float  # monotonic, the start instant

    def latencies_ms(self) -> list[float]:
        return [o.latency * 1000 for o in self.outcomes if o.status]

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the answered requests' latencies, in milliseconds."""
        values = sorted(self.latencies_ms())
        if not values:
            return float("nan")
        return values[max(0, math.ceil(p / 100 * len(values)) - 1)]

    @property
    def requests_per_second(self) -> float:
        return len(self.outcomes) / self.wall if self.wall else 0.0


def headers_for(cookie: tuple[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    session_key, csrf = cookie
    headers = {"Cookie": f"sessionid={session_key}; csrftoken={csrf}", "X-CSRFToken": csrf}
    headers.update(extra or {})
    return headers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: (status, body, whether the server closes the connection)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, close = None, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close"
    if chunked:
        body = bytearray()
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readline()
        return status, bytes(body), close
    if length is not None:
        return status, await reader.readexactly(length), close
    return status, await reader.read(), True


async def fire(
    base: str,
    concurrency: int,
    requests: Sequence[tuple[str, str, dict[str, str], bytes | None]],
    start_at_wall: float | None = None,
) -> Phase:
    """Send every (method, path, headers, body) with at most ``concurrency`` in flight, starting at
    the wall-clock instant ``start_at_wall`` (the release moment) or at once.

    A plain HTTP/1.1 client on asyncio streams: ``concurrency`` keep-alive connections, each sending its
    next request as soon as the previous answer is in. (httpx's AsyncClient costs about 1 ms of CPU per
    request at 200 connections and saturated a core of its own at ~100 requests/s, which made the client,
    not the server, the bottleneck of the earlier runs: docs/benchmarks.md.)"""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pending = list(enumerate(requests))
    pending.reverse()  # pop() from the end hands the requests out in order
    outcomes: list[Outcome | None] = [None] * len(requests)

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(host, port), REQUEST_TIMEOUT)

    # Open the connections before the instant, as browsers that loaded the page have them open.
    connections = await asyncio.gather(*(connect() for _ in range(min(concurrency, len(requests)))))
    if start_at_wall is not None:
        await asyncio.sleep(max(0.0, start_at_wall - time.time()))
    started = time.monotonic()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while pending:
            index, (method, path, headers, body) = pending.pop()
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            if body is not None:
                head += f"Content-Length: {len(body)}\r\n"
            sent = time.monotonic()
            close = True
            try:
                writer.write(head.encode() + b"\r\n" + (body or b""))
                status, raw, close = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
                try:
                    payload: Any = json.loads(raw)
                except ValueError:
                    payload = raw[:200].decode(errors="replace")
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:  # OSError includes timeouts
                status, payload = 0, type(error).__name__
            done = time.monotonic()
            outcomes[index] = Outcome(index, status, payload, done - sent, done)
            if close:
                writer.close()
                reader, writer = await connect()
        writer.close()

    await asyncio.wait_for(asyncio.gather(*(client(*c) for c in connections)), PHASE_TIMEOUT)
    answered = [o for o in outcomes if o is not None]
    wall = max(o.finished for o in answered) - started
    return Phase(answered, wall, started)


# --- checks after the rush ------------------------------------------------------------------------


def refusal_code(outcome: Outcome) -> str:
    if outcome.status == 0:
        return f"no response ({outcome.body})"
    body = outcome.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"{body['error'].get('code')} ({outcome.status})"
    return f"HTTP {outcome.status}"


def check_rush(seed: Seed, phase: Phase, requests_meta: list[tuple[int, int]]) -> dict[str, Any]:
    from django.db.models import Count

    from nethospital.core import audit
    from nethospital.scheduling.choices import ACTIVE_STATUSES
    from nethospital.scheduling.models import Appointment, Slot

    answered = {o.body["id"]: o for o in phase.outcomes if 200 <= o.status < 300 and isinstance(o.body, dict)}
    rows = Appointment.objects.filter(practitioner_id=seed.rush_doctor_id)
    row_ids = set(rows.values_list("pk", flat=True))
    over_capacity = [
        s.pk
        for s in Slot.objects.filter(pk__in=seed.rush_slot_ids).annotate(
            active=Count("appointments", filter=_active_filter(ACTIVE_STATUSES))
        )
        if s.active > s.capacity or s.booked_count > s.capacity or s.booked_count != s.active
    ]
    twice_same_day = (
        rows.filter(status__in=ACTIVE_STATUSES)
        .values("patient_id", "practitioner_id", "day")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    # A 2xx must name the slot and patient it was asked for.
    wrong = 0
    for appointment in rows:
        outcome = answered.get(appointment.pk)
        if outcome is not None:
            slot_id, patient_id = requests_meta[outcome.index]
            wrong += (appointment.slot_id, appointment.patient_id) != (slot_id, patient_id)
    return {
        "successes": sum(1 for o in phase.outcomes if o.status == 201),
        "replays": sum(1 for o in phase.outcomes if o.status == 200),
        "refusals": Counter(refusal_code(o) for o in phase.outcomes if not 200 <= o.status < 300),
        "slots_over_capacity": len(over_capacity),
        "patients_twice_same_doctor_day": twice_same_day,
        "answered_without_row": len(set(answered) - row_ids),
        "row_without_answer": len(row_ids - set(answered)),
        "answered_wrong_booking": wrong,
        "rows": len(row_ids),
        "audit_chain_intact": audit.verify_chain().is_intact,
    }


def _active_filter(statuses: Any) -> Any:
    from django.db.models import Q

    return Q(appointments__status__in=statuses)


# --- the same booking in plain SQL ------------------------------------------------------------------

RAW_BOOKING_SQL = {
    "replay": "SELECT id FROM scheduling_appointment WHERE booked_by_id = %s AND idempotency_key = %s",
    "patient": "SELECT account_id FROM accounts_patient WHERE id = %s",
    "lock_patient": "SELECT id FROM accounts_patient WHERE id = %s FOR UPDATE",
    "slot": (
        "SELECT s.status, s.starts_at, s.release_at, s.practitioner_id, s.hospital_id, s.day,"
        " p.verification_status, p.institution_consent, p.independent_practice_since, u.is_active,"
        " p.primary_institution_id"
        " FROM scheduling_slot s JOIN directory_practitioner p ON p.id = s.practitioner_id"
        " JOIN accounts_user u ON u.id = p.user_id WHERE s.id = %s"
    ),
    "policy": "SELECT max_active_bookings FROM scheduling_bookingpolicy WHERE hospital_id = %s",
    "no_shows": (
        "SELECT day FROM scheduling_appointment WHERE patient_id = %s AND status = 'no_show' AND day >= %s ORDER BY day"
    ),
    "same_day": (
        "SELECT 1 FROM scheduling_appointment WHERE patient_id = %s AND status = ANY(%s)"
        " AND practitioner_id = %s AND day = %s LIMIT 1"
    ),
    "active": "SELECT count(*) FROM scheduling_appointment WHERE patient_id = %s AND status = ANY(%s)",
    "take_place": (
        "UPDATE scheduling_slot SET booked_count = booked_count + 1"
        " WHERE id = %s AND status = 'open' AND booked_count < capacity"
    ),
    "insert": (
        "INSERT INTO scheduling_appointment (slot_id, patient_id, booked_by_id, practitioner_id, hospital_id, day,"
        " status, idempotency_key, booked_at, cancel_reason) VALUES (%s, %s, %s, %s, %s, %s, 'booked', %s, now(), '')"
        " RETURNING id"
    ),
    "lock_head": "SELECT sequence, last_hash FROM core_auditchainhead WHERE id = 1 FOR UPDATE",
    "audit": (
        "INSERT INTO core_auditentry (sequence, occurred_at, actor_id, actor_role, action, object_type, object_id,"
        " patient_id, hospital_id, channel, outcome, detail, previous_hash, entry_hash)"
        " VALUES (%s, now(), %s, 'patient', 'appointment.book', 'scheduling.appointment', %s, %s, %s, 'api',"
        " 'success', '{}', %s, %s)"
    ),
    "move_head": "UPDATE core_auditchainhead SET sequence = %s, last_hash = %s WHERE id = 1",
}


def raw_sql_booking(conn: Any, user_id: int, patient_id: int, slot_id: int, key: str, active: list[str]) -> str:
    """The booking transaction of ``actions._book`` in SQL: same locks, same checks, same writes
    (without the notification after commit). Returns "booked" or the refusal code."""
    sql = RAW_BOOKING_SQL
    with conn.transaction():
        cur = conn.cursor()
        if cur.execute(sql["replay"], (user_id, key)).fetchone():
            return "replayed"
        owner = cur.execute(sql["patient"], (patient_id,)).fetchone()
        if owner is None or owner[0] != user_id:
            return "not_family"
        cur.execute(sql["lock_patient"], (patient_id,))
        if cur.execute(sql["replay"], (user_id, key)).fetchone():
            return "replayed"
        slot = cur.execute(sql["slot"], (slot_id,)).fetchone()
        if slot is None:
            return "slot_not_found"
        status, starts_at, release_at, doctor_id, hospital_id, day, verification, consent, since, is_active, home = slot
        now = dt.datetime.now(dt.UTC)
        if status != "open":
            return "slot_closed"
        if starts_at <= now:
            return "slot_in_past"
        if now < release_at:
            return "slot_not_released"
        if verification != "verified" or not consent or not is_active or since > now.date() - MIN_PRACTICE:
            return "doctor_not_bookable"
        policy = cur.execute(sql["policy"], (home,)).fetchone()
        limit = policy[0] if policy else 5
        cur.execute(sql["no_shows"], (patient_id, now.date() - dt.timedelta(days=180))).fetchall()
        if cur.execute(sql["same_day"], (patient_id, active, doctor_id, day)).fetchone():
            return "same_doctor_same_day"
        if cur.execute(sql["active"], (patient_id, active)).fetchone()[0] >= limit:
            return "too_many_active_bookings"
        if cur.execute(sql["take_place"], (slot_id,)).rowcount != 1:
            return "slot_taken"
        (appointment_id,) = cur.execute(
            sql["insert"], (slot_id, patient_id, user_id, doctor_id, hospital_id, day, key)
        ).fetchone()
        sequence, last_hash = cur.execute(sql["lock_head"]).fetchone()
        payload = json.dumps([sequence + 1, user_id, appointment_id, patient_id, hospital_id, last_hash])
        entry_hash = hashlib.sha256(payload.encode()).hexdigest()
        cur.execute(
            sql["audit"], (sequence + 1, user_id, str(appointment_id), patient_id, hospital_id, last_hash, entry_hash)
        )
        cur.execute(sql["move_head"], (sequence + 1, entry_hash))
        return "booked"


@dataclass
class SqlPhase:
    results: Counter[str]
    wall: float
    connections: int
    threads: int
    latencies_ms: list[float]
    cpu: CpuUse

    @property
    def bookings_per_second(self) -> float:
        return self.results["booked"] / self.wall if self.wall else 0.0


def run_raw_sql(database_url: str, seed: Seed, concurrency: int, pool_size: int) -> SqlPhase:
    import psycopg
    from django.db import connections

    from nethospital.scheduling.choices import ACTIVE_STATUSES

    connections.close_all()
    active = [str(s) for s in ACTIVE_STATUSES]
    pool: queue.Queue[Any] = queue.Queue()
    opened = []
    for _ in range(pool_size):
        conn = psycopg.connect(database_url, connect_timeout=10, options="-c statement_timeout=30000")
        opened.append(conn)
        pool.put(conn)
    rng = random.Random(7)  # load generation, not security
    jobs = [(u, p, rng.choice(seed.sql_slot_ids), f"sql-{uuid.uuid4().hex}") for u, p in seed.patients]
    barrier = threading.Barrier(min(concurrency, len(jobs)))
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(job: tuple[int, int, int, str], first_wave: bool) -> str:
        if first_wave:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=30)
        conn = pool.get(timeout=PHASE_TIMEOUT)
        sent = time.monotonic()
        try:
            return raw_sql_booking(conn, *job, active)
        except psycopg.Error as error:
            conn.rollback()
            return f"error: {type(error).__name__}"
        finally:
            pool.put(conn)
            with lock:
                latencies.append((time.monotonic() - sent) * 1000)

    backends = {conn.info.backend_pid: 0.0 for conn in opened}
    cpu = CpuUse()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as executor:
            backends = {pid: process_cpu_seconds(pid) for pid in backends}
            client = time.process_time()
            started = time.monotonic()
            futures = [executor.submit(worker, job, i < concurrency) for i, job in enumerate(jobs)]
            results = Counter(f.result(timeout=PHASE_TIMEOUT) for f in futures)
            wall = time.monotonic() - started
            cpu.client = time.process_time() - client
            cpu.database = sum(process_cpu_seconds(pid) - before for pid, before in backends.items())
    finally:
        for conn in opened:
            conn.close()
    return SqlPhase(results, wall, pool_size, concurrency, latencies, cpu)


# --- the run ------------------------------------------------------------------------------------------


def machine() -> str:
    try:
        import psycopg

        with psycopg.connect(server_url(), connect_timeout=5) as conn:
            version = (conn.execute("SHOW server_version").fetchone() or ["?"])[0]
            max_connections = (conn.execute("SHOW max_connections").fetchone() or ["?"])[0]
    except Exception as error:  # pragma: no cover - only for the banner
        version, max_connections = f"unknown ({error})", "?"
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python "
        f"{platform.python_version()}, PostgreSQL {version} (max_connections {max_connections})"
    )


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def server_line(log_path: Path) -> str:
    """What ``nethospital serve`` said it runs with (workers, request limit, pool, HTTP parser, loop)."""
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("Net Hospital: "):
            return line.removeprefix("Net Hospital: ").split(" (", 1)[-1].removesuffix("; Ctrl-C stops)")
    return "unknown (no start line in the server log)"


def run_client(coroutine: Any) -> Any:
    """The client's event loop: uvloop when installed (less client CPU per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def queued_emails() -> int:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path="nethospital.core.notify.send_notification_email").count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight at most")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument(
        "--concurrent-requests",
        type=int,
        default=None,
        help="the server's requests computed at once per process (serve's option; default: the server's)",
    )
    parser.add_argument(
        "--tasks",
        choices=["database", "immediate"],
        default="database",
        help="the server's task backend (default database, as in production: e-mails are queued, not sent)",
    )
    parser.add_argument("--sql-pool", type=int, default=50, help="PostgreSQL connections of the raw SQL phase")
    parser.add_argument("--release-in", type=float, default=3.0, help="seconds from the seed's end to the release")
    parser.add_argument("--no-redis", action="store_true", help="do not use Redis even if it answers")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the server workers during the rush")
    parser.add_argument("--profile-gil", action="store_true", help="with --profile: only samples holding the GIL")
    args = parser.parse_args()
    if args.patients < 1 or args.slots < 1 or args.concurrency < 1 or args.workers < 1 or args.sql_pool < 1:
        parser.error("every count must be at least 1")

    use_redis = not args.no_redis and redis_answers()
    try:
        import uvloop  # noqa: F401

        client_loop = "uvloop"
    except ImportError:
        client_loop = "asyncio"
    print("Booking rush benchmark")
    print(f"  machine: {machine()}")
    print("  load average before the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"  run: {args.patients} patients, {args.slots} slots of capacity 1, {args.concurrency} requests in flight, "
        f"Redis {'on' if use_redis else 'off'}, server task backend {args.tasks}, "
        f"DEBUG={ORIGINAL_ENVIRONMENT.get('BENCH_DEBUG', '0')}"
    )
    print(
        f"  client: this process, {args.concurrency} keep-alive HTTP/1.1 connections opened beforehand, "
        f"plain asyncio streams on {client_loop}"
    )
    sys.stdout.flush()
    workdir = Path(tempfile.mkdtemp(prefix="booking_rush_"))
    with bench_database(server_url()) as database_url:
        database_name = urlsplit(database_url).path.lstrip("/")
        setup_django(database_url, workdir / "var")
        from django.core.management import call_command

        started = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        log(f"migrated in {time.monotonic() - started:.1f}s")
        data = seed(args.patients, args.slots)
        from django.db import connections

        from nethospital.scheduling.models import Slot

        Slot.objects.filter(pk__in=data.sql_slot_ids).update(
            release_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        )
        emails_before = queued_emails()
        connections.close_all()

        server_log = workdir / "server.log"
        with running_server(
            database_url,
            args.workers,
            use_redis,
            server_log,
            tasks=args.tasks,
            concurrent_requests=args.concurrent_requests,
        ) as (base, server):
            print(f"  server: nethospital serve, {server_line(server_log)}")
            sys.stdout.flush()
            # Warm each worker up (imports, URL resolver, first connections) with pings.
            warm = [("GET", "/api/ping", headers_for(c), None) for c in data.cookies[: 8 * args.workers]]
            run_client(fire(base, min(len(warm), 8), warm))

            # The rush: every patient once, a random slot, at the instant the slots open.
            rng = random.Random(42)  # load generation, not security
            meta = [(rng.choice(data.rush_slot_ids), patient_id) for _, patient_id in data.patients]
            release = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=args.release_in)
            Slot.objects.filter(pk__in=data.rush_slot_ids).update(release_at=release)
            connections.close_all()
            rush_requests = [
                (
                    "POST",
                    "/api/appointments",
                    headers_for(
                        cookie, {"Idempotency-Key": f"rush-{uuid.uuid4().hex}", "Content-Type": "application/json"}
                    ),
                    json.dumps({"slot_id": slot_id, "patient_id": patient_id}).encode(),
                )
                for cookie, (slot_id, patient_id) in zip(data.cookies, meta, strict=True)
            ]
            log(f"the rush starts at the release instant {release.isoformat()}")
            with (
                profiling(server, args.profile, gil_only=args.profile_gil),
                measuring_cpu(server, database_name) as rush_cpu,
            ):
                rush = run_client(
                    fire(base, args.concurrency, rush_requests, start_at_wall=release.timestamp() + 0.001)
                )
            checks = check_rush(data, rush, meta)
            emails = queued_emails() - emails_before
            connections.close_all()

            # (b) the trivial authenticated endpoint: as many requests as the rush, same clients, same
            # concurrency, same client code.
            ping_requests = [("GET", "/api/ping", headers_for(c), None) for c in data.cookies]
            with measuring_cpu(server, database_name) as ping_cpu:
                ping = run_client(fire(base, args.concurrency, ping_requests))
            ping_ok = sum(1 for o in ping.outcomes if o.status == 200)

        # (a) the same booking transaction in plain SQL, on the second doctor's slots.
        pool = min(args.sql_pool, args.concurrency)
        raw = run_raw_sql(database_url, data, args.concurrency, pool)
        raw_over = Slot.objects.filter(pk__in=data.sql_slot_ids, booked_count__gt=1).count()
        connections.close_all()

    requests = len(rush.outcomes)
    answered = sum(1 for o in rush.outcomes if 200 <= o.status < 500)  # booked, replayed or refused
    failed = requests - answered  # 5xx or no response
    bookings_per_second = checks["successes"] / rush.wall if rush.wall else 0.0
    answered_per_second = answered / rush.wall if rush.wall else 0.0
    ping_per_second = ping_ok / ping.wall if ping.wall else 0.0
    raw_transactions = sum(raw.results.values())
    raw_per_second = raw_transactions / raw.wall if raw.wall else 0.0
    double = checks["slots_over_capacity"] + checks["patients_twice_same_doctor_day"]
    lost = checks["answered_without_row"] + checks["row_without_answer"] + checks["answered_wrong_booking"]
    p99 = rush.percentile(99)
    mean = sum(rush.latencies_ms()) / len(rush.latencies_ms()) if rush.latencies_ms() else float("nan")
    last_success = max((o.finished for o in rush.outcomes if o.status == 201), default=rush.started) - rush.started
    like_for_like = answered_per_second / ping_per_second if ping_per_second else 0.0
    as_worded = bookings_per_second / ping_per_second if ping_per_second else 0.0
    sql_ratio = bookings_per_second / raw.bookings_per_second if raw.bookings_per_second else 0.0
    sql_requests_ratio = answered_per_second / raw_per_second if raw_per_second else 0.0
    ceiling = min(args.slots, requests) / requests if requests else 0.0

    print()
    print(f"Rush: {requests} POST /api/appointments at the release instant, {args.concurrency} in flight")
    print(f"  successes (201)            {checks['successes']}")
    print(f"  replays (200)              {checks['replays']}")
    print(
        "  refusals by reason         "
        + (", ".join(f"{k}: {v}" for k, v in checks["refusals"].most_common()) or "none")
    )
    print(f"  server errors, no answer   {failed}")
    print(
        f"  double bookings            {double}   (slots over capacity or miscounted: {checks['slots_over_capacity']}, "
        f"patients twice with the doctor that day: {checks['patients_twice_same_doctor_day']})"
    )
    print(
        f"  lost bookings              {lost}   (2xx without a row: {checks['answered_without_row']}, row without a "
        f"2xx: {checks['row_without_answer']}, 2xx naming another booking: {checks['answered_wrong_booking']})"
    )
    print(f"  appointment rows           {checks['rows']} (of {args.slots} slots)")
    print(f"  audit chain intact         {checks['audit_chain_intact']}")
    if args.tasks == "database":
        one_each = "yes" if emails == checks["successes"] else "NO"
        print(f"  e-mails queued as tasks    {emails} (one per success: {one_each})")
    print(f"  wall time                  {rush.wall:.3f} s")
    print(f"  bookings (successes)/s     {bookings_per_second:.1f}")
    print(f"  booking requests answered/s {answered_per_second:.1f}   (2xx and 4xx: booked, replayed or refused)")
    print(f"  last success after         {last_success:.3f} s")
    print(f"  latency p50 / p99          {rush.percentile(50):.0f} ms / {p99:.0f} ms   (mean {mean:.0f} ms)")
    print(f"  CPU per request            {rush_cpu.per_request(requests)}")
    print()
    print(
        f"(a) Raw SQL: the same transaction with psycopg, {raw.threads} threads over {raw.connections} connections, "
        f"{raw_transactions} attempts on {args.slots} fresh slots"
    )
    print("  outcomes                   " + ", ".join(f"{k}: {v}" for k, v in raw.results.most_common()))
    print(f"  slots over capacity        {raw_over}")
    print(f"  wall time                  {raw.wall:.3f} s")
    print(f"  bookings (successes)/s     {raw.bookings_per_second:.1f}")
    print(f"  transactions/s             {raw_per_second:.1f}")
    raw_values = sorted(raw.latencies_ms)
    if raw_values:
        p50_raw = raw_values[max(0, math.ceil(0.5 * len(raw_values)) - 1)]
        p99_raw = raw_values[max(0, math.ceil(0.99 * len(raw_values)) - 1)]
        print(f"  latency p50 / p99          {p50_raw:.0f} ms / {p99_raw:.0f} ms   (from the connection, not a queue)")
    print(f"  CPU per transaction        {raw.cpu.per_request(raw_transactions)}   (no server process)")
    print()
    print(
        f"(b) GET /api/ping: {len(ping.outcomes)} requests (as many as the rush), {args.concurrency} in flight, "
        f"{ping_ok} answered 200"
    )
    print(f"  wall time                  {ping.wall:.3f} s")
    print(f"  requests answered/s        {ping_per_second:.1f}")
    print(f"  latency p50 / p99          {ping.percentile(50):.0f} ms / {ping.percentile(99):.0f} ms")
    print(f"  CPU per request            {ping_cpu.per_request(len(ping.outcomes))}")
    print()
    print("Targets (each line: the figure, what it is computed from, the target)")
    print(f"  double bookings            {double}   target 0: {verdict(double == 0)}")
    print(f"  lost bookings              {lost}   target 0: {verdict(lost == 0)}")
    print(
        f"  rush latency p99           {p99:.0f} ms   target < {TARGET_P99_MS:.0f} ms: {verdict(p99 < TARGET_P99_MS)}"
        f"   (with {args.concurrency} in flight the mean latency is {args.concurrency} / throughput (Little's law):"
        f" < {TARGET_P99_MS:.0f} ms needs over {args.concurrency / TARGET_P99_MS * 1000:.0f} answered requests/s)"
    )
    print(
        f"  booking vs ping            {like_for_like:.1%} = booking requests answered/s {answered_per_second:.1f} / "
        f"ping requests answered/s {ping_per_second:.1f} (same number of requests, same concurrency)   "
        f"target >= {TARGET_PING_RATIO:.0%}: {verdict(like_for_like >= TARGET_PING_RATIO)}"
    )
    print(
        f"  booking vs ping, as worded {as_worded:.1%} = bookings (successes)/s {bookings_per_second:.1f} / ping "
        f"requests answered/s {ping_per_second:.1f}   target >= {TARGET_PING_RATIO:.0%}: "
        f"{verdict(as_worded >= TARGET_PING_RATIO)}   (cannot exceed {ceiling:.0%} here: {args.slots} places for "
        f"{requests} requests)"
    )
    print(
        f"  booking vs raw SQL         {sql_ratio:.1%} = bookings (successes)/s {bookings_per_second:.1f} / raw-SQL "
        f"bookings/s {raw.bookings_per_second:.1f} (both {requests} attempts on {args.slots} places, "
        f"{args.concurrency} in flight)   target >= {TARGET_SQL_RATIO:.0%}: {verdict(sql_ratio >= TARGET_SQL_RATIO)}"
    )
    print(
        f"  (requests vs transactions  {sql_requests_ratio:.1%} = booking requests answered/s / raw-SQL "
        "transactions/s, for reference)"
    )
    if failed:
        print(f"\n{failed} rush requests failed on the server side (5xx or no response): see {server_log}")
    correct = double == 0 and lost == 0 and ping_ok == len(ping.outcomes)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
