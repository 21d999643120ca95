#!/usr/bin/env python3
"""Chat benchmark: 200 consultations (400 websocket clients) over 2 server processes and Redis.

    .venv/bin/python benchmarks/chat.py [--consultations 200 --seconds 30 --interval 2.0]

What it does (issue 4, point 8; benchmarks/README.md has the details):

1. Creates a fresh PostgreSQL database ``nethospital_chat_<pid>`` on the server named by
   DATABASE_URL, else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/ (127.0.0.1 only),
   migrates it, and drops it at the end, even on error or Ctrl-C.
2. Seeds through the real actions: a hospital, --doctors verified doctors with a second factor
   (TOTP), --consultations patients, each in a queue consultation a doctor picked up (active, text).
   Logins are sessions written straight into the session table, as ``login()`` stores them; the
   doctors' sessions carry the mark of a passed second factor (R6).
3. Starts two server processes, each ``nethospital serve --workers 1`` (uvicorn) on its own port,
   with PostgreSQL and the Redis channel layer (REDIS_URL, redis://127.0.0.1:6379/0): the project's
   settings as they are, or with the channel layer changed by --layer (``fixed``, ``pubsub``: see
   LAYERS below), through a settings module of the run's own that imports the project's.
4. Connects every patient to process A and every doctor to process B (``/ws/consultations/<id>/``),
   says hello, then for --seconds every client sends a chat message every --interval seconds on
   average (uniformly between half and one and a half times it), and, like the page, a read receipt
   a moment after it receives the other side's messages. Then it waits for the stragglers.
5. Prints stored messages/s, p50/p99 delivery latency (from the sender's send to the other
   participant's socket, so across the two processes), ack latency, and the counts of lost,
   duplicated and out-of-order messages, checked against what each socket received and what the
   database holds; the CPU time the servers, PostgreSQL and the clients used, and the machine's load
   (other work on the machine shows there).
6. In the same run, the same fan-out through Redis pub/sub alone (a channel per consultation, a
   subscriber connection per client, the same pacing): the baseline, and the ratios.

Only the standard library, the project (Django), psycopg, redis-py and websockets are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
REDIS_URL = "redis://127.0.0.1:6379/0"
# The channel layer of the servers (--layer; docs/benchmarks.md, findings). "settings" runs the project's
# settings as they are; the others merge into settings.CHANNEL_LAYERS["default"] through a settings module
# of the run's own (a BACKEND key replaces the backend, the rest goes into CONFIG):
# - "fixed": channels_redis's list-based layer with what it needs here:
#   capacity: every event for one server process waits in one Redis key, capped at 100 by default;
#     beyond, group_send drops events silently ("channels over capacity");
#   max_connections: redis-py's pool allows 100 connections and raises MaxConnectionsError beyond; a
#     process with hundreds of sockets has more commands in flight when they (re)connect;
#   socket_timeout: redis-py 8 reads with a 5 s timeout by default, as long as the layer's blocking
#     receive (BZPOPMIN, 5 s), so a quiet layer fails with TimeoutError and takes a socket down;
# - "pubsub": channels_redis's pub/sub layer: one PUBLISH per group send, events pushed to the
#   subscribed processes (no per-event round trips, no per-process list to overflow); at most once,
#   which the chat makes good (gap fill from the database, hello on reconnect).
LAYERS: dict[str, dict[str, Any]] = {
    "settings": {},
    "fixed": {
        "capacity": 10000,
        "hosts": [{"address": REDIS_URL, "max_connections": 1000, "socket_timeout": 30}],
    },
    "pubsub": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
    },
}
SETTINGS_MODULE = """
import json, os
from nethospital.settings import *  # noqa: F403

layer = json.loads(os.environ["BENCH_CHANNEL_LAYER"])
CHANNEL_LAYERS["default"]["BACKEND"] = layer.pop("BACKEND", CHANNEL_LAYERS["default"]["BACKEND"])  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"].update(layer)  # noqa: F405
"""
SERVER_START_TIMEOUT = 90.0
RECEIVE_TIMEOUT = 30.0
DRAIN_TIMEOUT = 30.0  # seconds after the last send for every message to arrive
READ_RECEIPT_DELAY = 0.3  # as the page: one receipt a moment after a burst of messages
TARGET_P99_MS = 200.0


def log(message: str) -> None:
    print(f"[chat] {message}", file=sys.stderr, flush=True)


# --- the database ---------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def server_url() -> str:
    url = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER_URL
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"chat benchmark needs PostgreSQL, not {parts.scheme or url!r}")
    if (parts.hostname or "") not in LOCAL_HOSTS:
        raise SystemExit(f"chat benchmark talks to 127.0.0.1 only, not {parts.hostname}")
    return url


@contextlib.contextmanager
def bench_database(url: str) -> Iterator[str]:
    import psycopg

    name = f"nethospital_chat_{os.getpid()}"
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"database {name} created")
    try:
        yield with_database(url, name)
    finally:
        with contextlib.suppress(Exception):  # Django may not be set up yet
            from django.db import connections

            connections.close_all()
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


def quiet_logs() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)


def setup_django(database_url: str, var_dir: Path) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)  # the seeding process publishes nothing anyone listens to
    os.environ["DJANGO_SETTINGS_MODULE"] = "nethospital.settings"
    os.environ["NETHOSPITAL_VAR_DIR"] = str(var_dir)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    # Hundreds of accounts nobody logs into with a password (sessions are made directly).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    quiet_logs()


# --- seeding --------------------------------------------------------------------------------------


@dataclass
class Seed:
    consultations: list[int]
    patient_cookies: list[str]  # per consultation
    doctor_cookies: list[str]  # per consultation (the session of its doctor)
    patient_ids: list[int]  # user ids, per consultation
    doctor_ids: list[int]


def seed(consultations: int, doctors: int) -> Seed:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from nethospital.accounts import actions as account_actions
    from nethospital.accounts.choices import Sex
    from nethospital.accounts.identity import make_number
    from nethospital.accounts.models import Patient
    from nethospital.accounts.policy import SESSION_MARK
    from nethospital.consultations import actions
    from nethospital.consultations.actions import Declaration
    from nethospital.testing import factories
    from nethospital.testing.totp import enable_totp

    started = time.monotonic()
    hospital = factories.hospital()
    factories.internet_hospital(hospital)
    admin = factories.hospital_admin(hospital)
    doctor_rows = []
    for index in range(doctors):
        doctor = factories.doctor(hospital, admin=admin, legal_name=f"医生{index:03d}")
        enable_totp(doctor.user)
        doctor.user.is_mfa_verified = True  # a trusted set-up step, as if the doctor had passed MFA
        doctor_rows.append(doctor)
    log(f"{doctors} doctors seeded in {time.monotonic() - started:.1f}s")

    started = time.monotonic()
    declaration = Declaration(
        condition="高血压复诊",
        first_visit=False,
        proof_kind="other_hospital",
        proof_hospital="县人民医院",
        proof_summary="2025-03 诊断原发性高血压 I10",
    )
    made, patients, their_doctors = [], [], []
    for index in range(consultations):
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=index)  # distinct birth dates: distinct identities
        sex = Sex.MALE if index % 2 else Sex.FEMALE
        user = account_actions.sign_up_patient(
            email=f"chat{index:05d}@example.org",
            password=factories.DEFAULT_PASSWORD,
            legal_name="聊天患者",
            id_number=make_number("110101", birth, index % 1000, sex),
            birth_date=birth,
            sex=sex,
            phone=f"137{index:08d}",
        )
        patient = Patient.objects.get(account=user)
        doctor = doctor_rows[index % doctors]
        consultation = actions.join_queue(user, patient.pk, doctor.department_id, declaration)
        picked = actions.pick_next(doctor.user)
        if picked.pk != consultation.pk:
            raise RuntimeError("the doctor picked another patient than the one waiting")
        made.append(consultation.pk)
        patients.append(user)
        their_doctors.append(doctor.user)
    log(f"{consultations} patients and active consultations seeded in {time.monotonic() - started:.1f}s")

    # Sessions as login() stores them; a doctor's session also records the passed second factor.
    store = SessionStore()
    expire = timezone.now() + dt.timedelta(hours=2)
    rows, keys = [], {}
    for user in {u.pk: u for u in patients + their_doctors}.values():
        key = secrets.token_hex(16)
        data: dict[str, Any] = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "allauth.account.auth_backends.AuthenticationBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        if user in their_doctors:
            data[SESSION_MARK] = user.pk
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
        keys[user.pk] = f"{settings.SESSION_COOKIE_NAME}={key}"
    Session.objects.bulk_create(rows, batch_size=500)
    return Seed(
        consultations=made,
        patient_cookies=[keys[u.pk] for u in patients],
        doctor_cookies=[keys[u.pk] for u in their_doctors],
        patient_ids=[u.pk for u in patients],
        doctor_ids=[u.pk for u in their_doctors],
    )


# --- the servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_servers(
    database_url: str, count: int, workdir: Path, prefix: str, layer: dict[str, Any]
) -> Iterator[list[str]]:
    env = dict(os.environ)
    if layer:
        (workdir / "chat_bench_settings.py").write_text(SETTINGS_MODULE)
        env.update(
            DJANGO_SETTINGS_MODULE="chat_bench_settings",
            PYTHONPATH=os.pathsep.join(filter(None, [str(workdir), str(ROOT), env.get("PYTHONPATH", "")])),
            BENCH_CHANNEL_LAYER=json.dumps(layer),
        )
    else:
        env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        DEBUG=os.environ.get("BENCH_DEBUG", "0"),
        NETHOSPITAL_VAR_DIR=str(workdir / "var"),
        NETHOSPITAL_CHANNEL_PREFIX=prefix,
        PYTHONUNBUFFERED="1",
    )
    nethospital = Path(sys.executable).parent / "nethospital"  # the console script of this venv
    if not nethospital.exists():
        raise RuntimeError(f"{nethospital} is missing: run this with the project's .venv/bin/python")
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for name in "ab"[:count] if count <= 2 else [str(i) for i in range(count)]:
            port = free_port()
            log_path = workdir / f"server-{name}.log"
            # --no-tick: the once-a-minute sweep would compete for the CPU mid-measurement.
            command = [str(nethospital), "serve", "--no-demo", "--no-migrate", "--no-tick"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            log(f"starting process {name}: {' '.join(command[1:])} (log: {log_path})")
            with open(log_path, "wb") as out:
                processes.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            bases.append(f"127.0.0.1:{port}")
        for process, base in zip(processes, bases, strict=True):
            wait_for_server(base, process)
        yield bases
    finally:
        for process in processes:
            stop(process)


def wait_for_server(base: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"a server exited with code {process.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server on {base} did not answer within {SERVER_START_TIMEOUT:.0f}s")


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


@contextlib.contextmanager
def profiling(pids: list[int], directory: Path | None) -> Iterator[None]:
    """With --profile: py-spy samples the server processes while the block runs (collapsed stacks)."""
    if directory is None:
        yield
        return
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists() and shutil.which("py-spy"):
        py_spy = Path(str(shutil.which("py-spy")))
    if not py_spy.exists():
        raise RuntimeError(f"--profile needs py-spy: {sys.executable} -m pip install py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "100",
                "-f",
                "raw",
                "-o",
                str(directory / f"{pid}.txt"),
                *os.environ.get("PYSPY_EXTRA", "").split(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]
    time.sleep(1.0)
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
        log(f"profiles in {directory}")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def postgres_pids(database: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=False).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "postgres: " in line and f" {database} " in line]


def server_pids(bases: list[str]) -> list[int]:
    """The uvicorn processes listening on the servers' ports (serve runs uvicorn in-process for one worker)."""
    ports = {base.rsplit(":", 1)[1] for base in bases}
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout
    pids = set()
    for line in out.splitlines():
        if any(f":{port} " in line for port in ports) and "pid=" in line:
            pids.add(int(line.split("pid=", 1)[1].split(",", 1)[0]))
    return sorted(pids)


# --- measuring ------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Tally:
    """What one run (through the servers, or the Redis baseline) saw."""

    sent: dict[str, float] = field(default_factory=dict)  # message id -> monotonic send time
    sender_of: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (consultation index, side)
    acked: dict[str, float] = field(default_factory=dict)  # id -> ack time
    ack_seq: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)  # id -> time the other side got it
    latencies_ms: list[float] = field(default_factory=list)
    ack_latencies_ms: list[float] = field(default_factory=list)
    duplicated: int = 0
    out_of_order: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_send: float = 0.0
    last_send: float = 0.0
    last_delivery: float = 0.0
    connected: int = 0
    receipts_sent: int = 0
    load_before: float = 0.0  # the machine's 1-minute load average before the clients connect
    load_after: float = 0.0
    steal: float | None = None  # share of the machine's CPU time the hypervisor gave to others while sending
    server_cpu: float = 0.0  # CPU seconds of the server processes while sending and draining
    client_cpu: float = 0.0  # CPU seconds of this process (the clients) in the same time
    wall: float = 0.0


class ChatClient:
    """One participant's browser, reduced to its protocol: hello, messages with client ids, receipts."""

    def __init__(self, tally: Tally, index: int, side: str, base: str, cookie: str, consultation: int) -> None:
        self.tally, self.index, self.side = tally, index, side
        self.base, self.cookie, self.consultation = base, cookie, consultation
        self.seen: set[int] = set()
        self.last_seq = 0
        self.read_pending = False
        self.ws: Any = None
        self.hello_done = asyncio.Event()
        self.counter = 0

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            f"ws://{self.base}/ws/consultations/{self.consultation}/",
            origin=f"http://{self.base}",  # type: ignore[arg-type]
            additional_headers={"Cookie": self.cookie},
            open_timeout=RECEIVE_TIMEOUT,
            max_queue=None,
            compression=None,
            ping_interval=None,  # as a browser: it answers pings, it does not send them
        )
        await self.ws.send(json.dumps({"type": "hello", "after": 0}))

    async def receive_forever(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._receive()
        except ConnectionClosed as closed:
            if not self.closing:
                code = closed.rcvd.code if closed.rcvd else "no close frame"
                self.tally.errors[f"socket closed by the server ({code})"] += 1

    closing = False

    async def _receive(self) -> None:
        tally = self.tally
        async for raw in self.ws:
            now = time.monotonic()
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "history":
                for message in frame["messages"]:
                    self.take(message, now)
                if not frame["more"]:
                    tally.connected += 1
                    self.hello_done.set()
            elif kind == "message":
                self.take(frame, now)
            elif kind == "ack":
                client_id = frame["client_id"]
                if client_id not in tally.acked:
                    tally.acked[client_id] = now
                    tally.ack_seq[client_id] = frame["seq"]
                    tally.ack_latencies_ms.append((now - tally.sent[client_id]) * 1000)
            elif kind == "error":
                tally.errors[frame.get("code", "?")] += 1

    def take(self, message: dict[str, Any], now: float) -> None:
        tally, seq = self.tally, message["seq"]
        if seq in self.seen:
            tally.duplicated += 1
            return
        self.seen.add(seq)
        if seq < self.last_seq:
            tally.out_of_order += 1
        self.last_seq = max(self.last_seq, seq)
        client_id = message.get("client_id") or ""
        origin = tally.sender_of.get(client_id)
        if origin is not None and origin[1] != self.side:
            if client_id in tally.delivered:
                tally.duplicated += 1
                return
            tally.delivered[client_id] = now
            tally.latencies_ms.append((now - tally.sent[client_id]) * 1000)
            tally.last_delivery = max(tally.last_delivery, now)
            self.schedule_receipt()

    def schedule_receipt(self) -> None:
        if self.read_pending or not self.tally_receipts:
            return
        self.read_pending = True

        async def later() -> None:
            await asyncio.sleep(READ_RECEIPT_DELAY)
            self.read_pending = False
            with contextlib.suppress(Exception):
                await self.ws.send(json.dumps({"type": "read", "seq": self.last_seq}))
                self.tally.receipts_sent += 1

        asyncio.get_running_loop().create_task(later())

    tally_receipts = True

    async def send_message(self) -> None:
        self.counter += 1
        client_id = f"{self.side}{self.index}-{self.counter}"
        now = time.monotonic()
        self.tally.sent[client_id] = now
        self.tally.sender_of[client_id] = (self.index, self.side)
        with contextlib.suppress(Exception):  # a closed socket: counted by the receiver, the message is lost
            await self.ws.send(
                json.dumps({"type": "message", "client_id": client_id, "body": f"第{self.counter}条 消息"})
            )


async def paced(send: Any, seconds: float, interval: float, rng: random.Random, tally: Tally) -> None:
    """Send every ``interval`` seconds on average (uniform in [0.5, 1.5] × interval), for ``seconds``."""
    await asyncio.sleep(rng.uniform(0, interval))  # spread the clients over the first interval
    deadline = tally.first_send + seconds
    while time.monotonic() < deadline:
        await send()
        tally.last_send = max(tally.last_send, time.monotonic())
        await asyncio.sleep(rng.uniform(0.5 * interval, 1.5 * interval))


async def run_chat(
    seed: Seed, bases: list[str], seconds: float, interval: float, receipts: bool, pids: list[int]
) -> Tally:
    tally = Tally(load_before=os.getloadavg()[0])
    ChatClient.tally_receipts = receipts
    clients = []
    for index, consultation in enumerate(seed.consultations):
        clients.append(ChatClient(tally, index, "p", bases[0], seed.patient_cookies[index], consultation))
        clients.append(ChatClient(tally, index, "d", bases[-1], seed.doctor_cookies[index], consultation))
    # Open in batches, as page loads would arrive; each open says hello.
    for start in range(0, len(clients), 50):
        await asyncio.gather(*(client.open() for client in clients[start : start + 50]))
    receivers = [asyncio.get_running_loop().create_task(client.receive_forever()) for client in clients]
    await asyncio.wait_for(asyncio.gather(*(client.hello_done.wait() for client in clients)), RECEIVE_TIMEOUT)
    log(f"{tally.connected} sockets connected and said hello; sending for {seconds:.0f} s")
    rng = random.Random(4)  # load generation, not security
    cpu_before, client_before, machine_before = cpu_seconds(pids), time.process_time(), machine_cpu()
    tally.first_send = time.monotonic()
    await asyncio.gather(*(paced(client.send_message, seconds, interval, rng, tally) for client in clients))
    # Stragglers: wait until every acked message reached the other side (or the drain time is over).
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        answered = len(tally.acked) + sum(tally.errors.values())
        if answered >= len(tally.sent) and all(cid in tally.delivered for cid in tally.acked):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # late duplicates would show up now
    tally.server_cpu = cpu_seconds(pids) - cpu_before
    tally.client_cpu = time.process_time() - client_before
    tally.wall = time.monotonic() - tally.first_send
    tally.load_after = os.getloadavg()[0]
    tally.steal = stolen(machine_before, machine_cpu())
    for client in clients:
        client.closing = True
        await client.ws.close()
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    return tally


def check_database(seed: Seed, tally: Tally) -> dict[str, int]:
    from django.db import connections
    from django.db.models import Count, Max

    from nethospital.consultations.models import Message

    connections.close_all()
    rows = Message.objects.filter(consultation_id__in=seed.consultations).exclude(client_id="")
    stored = dict(rows.values_list("client_id", "seq"))
    per_consultation = Message.objects.filter(consultation_id__in=seed.consultations).values("consultation_id")
    shape = per_consultation.annotate(n=Count("pk"), top=Max("seq"))
    gaps = sum(1 for row in shape if row["n"] != row["top"])
    twice = rows.values("consultation_id", "client_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    return {
        "stored": len(stored),
        "acked_not_stored": sum(1 for cid in tally.acked if cid not in stored),
        "stored_not_acked": sum(1 for cid in stored if cid not in tally.acked),
        "ack_seq_mismatch": sum(1 for cid, seq in tally.ack_seq.items() if stored.get(cid) != seq),
        "consultations_with_gaps": gaps,
        "stored_twice": twice,
    }


# --- the baseline: Redis pub/sub alone ------------------------------------------------------------


async def run_redis_baseline(consultations: int, seconds: float, interval: float, prefix: str) -> Tally:
    import redis.asyncio as redis

    tally = Tally()
    publisher = redis.Redis.from_url(REDIS_URL, max_connections=64)
    subscribers = []
    counters: dict[tuple[int, str], int] = Counter()
    last_seen: dict[tuple[int, str, str], int] = {}  # (consultation, receiving side, sending side) -> n

    async def subscribe(index: int, side: str) -> Any:
        connection = redis.Redis.from_url(REDIS_URL)
        pubsub = connection.pubsub()
        await pubsub.subscribe(f"{prefix}:consult:{index}")
        return connection, pubsub, index, side

    for start in range(0, 2 * consultations, 50):
        batch = [(i // 2, "pd"[i % 2]) for i in range(start, min(start + 50, 2 * consultations))]
        subscribers += await asyncio.gather(*(subscribe(i, s) for i, s in batch))
    tally.connected = len(subscribers)

    async def listen(pubsub: Any, index: int, side: str) -> None:
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            now = time.monotonic()
            data = json.loads(message["data"])
            client_id, sender_side, n = data["id"], data["side"], data["n"]
            if sender_side == side:
                continue
            key = (index, side, sender_side)
            if client_id in tally.delivered:
                tally.duplicated += 1
                continue
            if n <= last_seen.get(key, 0):
                tally.out_of_order += 1
            last_seen[key] = max(n, last_seen.get(key, 0))
            tally.delivered[client_id] = now
            tally.latencies_ms.append((now - tally.sent[client_id]) * 1000)
            tally.last_delivery = max(tally.last_delivery, now)

    listeners = [asyncio.get_running_loop().create_task(listen(p, i, s)) for _c, p, i, s in subscribers]

    async def sender(index: int, side: str) -> None:
        counters[(index, side)] += 1
        n = counters[(index, side)]
        client_id = f"{side}{index}-{n}"
        tally.sent[client_id] = time.monotonic()
        tally.sender_of[client_id] = (index, side)
        payload = json.dumps({"id": client_id, "side": side, "n": n, "body": f"第{n}条 消息"})
        await publisher.publish(f"{prefix}:consult:{index}", payload)
        tally.acked[client_id] = time.monotonic()

    rng = random.Random(4)
    tally.first_send = time.monotonic()
    await asyncio.gather(
        *(paced(lambda i=i, s=s: sender(i, s), seconds, interval, rng, tally) for _c, _p, i, s in subscribers)
    )
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline and len(tally.delivered) < len(tally.sent):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    for connection, pubsub, _i, _s in subscribers:
        await pubsub.aclose()
        await connection.aclose()
    await publisher.aclose()
    return tally


# --- report ---------------------------------------------------------------------------------------


def machine_cpu() -> list[int] | None:
    """The machine's CPU time counters (the ``cpu`` line of /proc/stat, in ticks), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            first = stat.readline().split()
    except OSError:
        return None
    return [int(value) for value in first[1:9]] if first and first[0] == "cpu" else None


def stolen(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of CPU time the hypervisor gave to other machines between two readings (``steal``, the
    8th counter): on a shared virtual machine the same run is slower when it is high, whatever the code."""
    if before is None or after is None:
        return None
    total = sum(after) - sum(before)
    return (after[7] - before[7]) / total if total > 0 else None


def machine() -> str:
    try:
        import psycopg

        with psycopg.connect(server_url(), connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            max_connections = conn.execute("SHOW max_connections").fetchone()[0]  # type: ignore[index]
    except Exception as error:  # only for the banner
        version, max_connections = f"unknown ({error})", "?"
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python "
        f"{platform.python_version()}, PostgreSQL {version} (max_connections {max_connections})"
    )


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report(label: str, tally: Tally, seconds: float) -> dict[str, float]:
    sent = len(tally.sent)
    lost = sum(1 for cid in tally.acked if cid not in tally.delivered)
    unanswered = sent - len(tally.acked) - sum(tally.errors.values())
    rate = len(tally.acked) / seconds if seconds else 0.0
    p50, p99 = percentile(tally.latencies_ms, 50), percentile(tally.latencies_ms, 99)
    print(f"  clients connected          {tally.connected}")
    print(f"  messages sent              {sent}")
    print(f"  {label:<26} {len(tally.acked)}")
    if tally.errors:
        print("  refused (error frames)     " + ", ".join(f"{k}: {v}" for k, v in tally.errors.most_common()))
    print(f"  messages/s                 {rate:.1f}")
    print(f"  delivered to the other side {len(tally.delivered)}")
    print(f"  delivery latency p50 / p99 {p50:.1f} ms / {p99:.1f} ms (max {max(tally.latencies_ms, default=0):.1f} ms)")
    if tally.ack_latencies_ms:
        print(
            f"  ack latency p50 / p99      {percentile(tally.ack_latencies_ms, 50):.1f} ms / "
            f"{percentile(tally.ack_latencies_ms, 99):.1f} ms"
        )
    windows: dict[int, list[float]] = {}
    for client_id, delivered in tally.delivered.items():  # where in the run the slow ones were
        start = tally.sent[client_id]
        windows.setdefault(int((start - tally.first_send) // 5), []).append((delivered - start) * 1000)
    if windows:
        print(
            "  delivery p99 by 5 s of sending "
            + " ".join(f"{percentile(windows[key], 99):.0f}" for key in sorted(windows))
            + " ms"
        )
    no_answer = max(0, unanswered)
    print(f"  lost                       {lost + no_answer}   (acked, never delivered: {lost}; no answer: {no_answer})")
    print(f"  duplicated                 {tally.duplicated}")
    print(f"  out of order               {tally.out_of_order}")
    return {"rate": rate, "p50": p50, "p99": p99, "lost": lost + max(0, unanswered)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consultations", type=int, default=200, help="consultations (two clients each)")
    parser.add_argument("--doctors", type=int, default=20, help="doctors the consultations are spread over")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients send")
    parser.add_argument("--interval", type=float, default=2.0, help="mean seconds between a client's messages")
    parser.add_argument("--no-read-receipts", action="store_true", help="clients send no read receipts")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the Redis pub/sub baseline")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the server processes while sending")
    parser.add_argument(
        "--layer",
        default="settings",
        help="the servers' channel layer: 'settings' (as configured), 'fixed' (list layer with capacity and Redis "
        "pool settings), 'pubsub' (pub/sub layer), or a JSON object merged into CHANNEL_LAYERS['default'] "
        "(see LAYERS in this file and the findings in docs/benchmarks.md)",
    )
    args = parser.parse_args()
    if args.consultations < 1 or args.doctors < 1 or args.seconds <= 0 or args.interval <= 0:
        parser.error("counts and times must be positive")
    if not redis_answers():
        raise SystemExit("the chat benchmark needs Redis on 127.0.0.1:6379 (the channel layer of both processes)")

    clients = 2 * args.consultations
    receipts = not args.no_read_receipts
    layer = LAYERS[args.layer] if args.layer in LAYERS else json.loads(args.layer)
    if not isinstance(layer, dict):
        parser.error("--layer must be settings, fixed, pubsub or a JSON object")
    print("Chat benchmark")
    print(f"  machine: {machine()}")
    print(
        f"  run: {args.consultations} active consultations, {clients} websocket clients (patients on process A, "
        f"their doctors on process B; {args.doctors} doctors), 2 server processes (nethospital serve, uvicorn, 1 "
        f"worker each), PostgreSQL, Redis channel layer "
        f"({'--layer ' + args.layer if args.layer in LAYERS else 'custom'}: "
        f"{'nethospital.settings as they are' if not layer else json.dumps(layer)}); "
        f"each client sends a message every {args.interval:.1f} s on "
        f"average (uniform {0.5 * args.interval:.1f}-{1.5 * args.interval:.1f} s), offered load "
        f"{clients / args.interval:.0f} messages/s, for {args.seconds:.0f} s; read receipts "
        f"{'on (one per burst received, after 0.3 s, as the page does)' if receipts else 'off'}; DEBUG=0"
    )
    sys.stdout.flush()
    workdir = Path(tempfile.mkdtemp(prefix="chat_bench_"))
    prefix = f"chatbench{os.getpid()}"
    with bench_database(server_url()) as database_url:
        setup_django(database_url, workdir / "var")
        from django.core.management import call_command
        from django.db import connections

        started = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        log(f"migrated in {time.monotonic() - started:.1f}s")
        data = seed(args.consultations, args.doctors)
        connections.close_all()
        with running_servers(database_url, 2, workdir, prefix, layer) as bases:
            pids = server_pids(bases)
            with profiling(pids, args.profile):
                chat = asyncio.run(run_chat(data, bases, args.seconds, args.interval, receipts, pids))
            database_cpu = cpu_seconds(postgres_pids(urlsplit(database_url).path.lstrip("/")))
        checks = check_database(data, chat)
        connections.close_all()

    baseline = None
    if not args.skip_baseline:
        log("baseline: the same fan-out through Redis pub/sub alone")
        baseline = asyncio.run(run_redis_baseline(args.consultations, args.seconds, args.interval, prefix))

    print()
    print(f"Chat through the servers ({args.seconds:.0f} s of sending)")
    chat_figures = report("messages stored (acked)", chat, args.seconds)
    print(f"  read receipts sent         {chat.receipts_sent}")
    stored = max(1, len(chat.acked))
    print(
        f"  CPU while sending+draining {chat.wall:.1f} s wall: servers {chat.server_cpu:.1f} s "
        f"({1000 * chat.server_cpu / stored:.2f} ms a message), PostgreSQL backends {database_cpu:.1f} s "
        f"(whole run), clients {chat.client_cpu:.1f} s; machine load average {chat.load_before:.1f} before, "
        f"{chat.load_after:.1f} after; CPU time stolen by the hypervisor "
        f"{'n/a' if chat.steal is None else f'{100 * chat.steal:.1f}%'}"
    )
    db_bad = (
        checks["acked_not_stored"]
        + checks["stored_not_acked"]
        + checks["ack_seq_mismatch"]
        + checks["consultations_with_gaps"]
        + checks["stored_twice"]
    )
    print(
        f"  database                   {checks['stored']} client messages stored; acked but not stored: "
        f"{checks['acked_not_stored']}, stored but not acked: {checks['stored_not_acked']}, ack seq differs: "
        f"{checks['ack_seq_mismatch']}, stored twice: {checks['stored_twice']}, consultations with seq gaps: "
        f"{checks['consultations_with_gaps']}"
    )
    ok = chat_figures["lost"] == 0 and chat.duplicated == 0 and chat.out_of_order == 0 and db_bad == 0
    print(f"  lost / duplicated / out of order all 0: {verdict(ok)}")
    print(f"  p99 delivery latency < {TARGET_P99_MS:.0f} ms: {verdict(chat_figures['p99'] < TARGET_P99_MS)}")
    if baseline is not None:
        print()
        print(
            f"Baseline: Redis pub/sub alone ({clients} subscriber connections, a channel per consultation, same pacing)"
        )
        base_figures = report("messages published", baseline, args.seconds)
        print()
        print("Ratios (chat / Redis alone)")
        print(f"  messages/s                 {chat_figures['rate'] / base_figures['rate']:.2f}")
        print(f"  p50 latency                {chat_figures['p50'] / base_figures['p50']:.1f}x")
        print(f"  p99 latency                {chat_figures['p99'] / base_figures['p99']:.1f}x")
    print(f"\nserver logs: {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
