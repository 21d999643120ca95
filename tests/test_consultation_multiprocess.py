"""Chat across server processes: two real uvicorn processes share one database and the Redis channel
layer; the patient is connected to process A, the doctor to process B. Both write at the same time,
the patient's line drops half way and comes back on the other process, and resends its last
message. Each side must see every message exactly once, in seq order, as stored. No mocks."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

pytestmark = pytest.mark.redis

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0
RECEIVE_TIMEOUT = 15.0
PER_SIDE = 20  # within one socket's burst allowance (the consumer limits floods per socket)

SEED = """
import json
from django.conf import settings
from django.test import Client
from nethospital.accounts.policy import SESSION_MARK
from nethospital.consultations import actions
from nethospital.consultations.actions import Declaration
from nethospital.testing import factories
from nethospital.testing.totp import enable_totp

hospital = factories.hospital()
factories.internet_hospital(hospital)
doctor = factories.doctor(hospital)
doctor.user.is_mfa_verified = True
patient_user = factories.patient_user()
patient = factories.patient_of(patient_user)
declaration = Declaration(condition="高血压复诊", first_visit=False, proof_kind="other_hospital",
                          proof_hospital="县人民医院", proof_summary="2025-03 原发性高血压")
consultation = actions.join_queue(patient_user, patient.pk, doctor.department_id, declaration, channel="video")
actions.pick_next(doctor.user)
enable_totp(doctor.user)

def cookie(user, mfa):
    client = Client()
    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    if mfa:
        session = client.session
        session[SESSION_MARK] = user.pk
        session.save()
    return settings.SESSION_COOKIE_NAME + "=" + client.cookies[settings.SESSION_COOKIE_NAME].value

print("SEED " + json.dumps({"consultation": consultation.pk, "patient_id": patient_user.pk,
                            "doctor_id": doctor.user.pk, "patient_cookie": cookie(patient_user, False),
                            "doctor_cookie": cookie(doctor.user, True)}))
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nethospital(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "nethospital.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"nethospital {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def server_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETHOSPITAL_")}
    env.pop("DATABASE_URL", None)  # both servers share one SQLite file in tmp_path (WAL, queued writers)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "nethospital.settings",
            "NETHOSPITAL_VAR_DIR": str(tmp_path / "var"),
            "REDIS_URL": redis_url,
            # A prefix of its own, so parallel runs on one Redis never see each other's groups.
            "NETHOSPITAL_CHANNEL_PREFIX": f"nethospital-test-{secrets.token_hex(6)}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    (tmp_path / "var").mkdir()
    return env


@pytest.fixture
def seeded(server_env: dict[str, str]) -> dict[str, Any]:
    nethospital(["migrate", "--noinput", "-v", "0"], server_env)
    out = nethospital(["shell", "-c", SEED], server_env).stdout
    line = next(line for line in out.splitlines() if line.startswith("SEED "))
    return dict(json.loads(line.removeprefix("SEED ")))


def start_server(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "nethospital.asgi:application",
             "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, f"127.0.0.1:{port}"


def wait_healthy(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        assert process.poll() is None, f"uvicorn exited early:\n{log_path.read_text()}"
        try:
            if httpx.get(f"http://{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"uvicorn did not answer /healthz:\n{log_path.read_text()}"
        time.sleep(0.2)


@pytest.fixture
def servers(server_env: dict[str, str], seeded: dict[str, Any], tmp_path: Path) -> Iterator[tuple[str, str]]:
    started = [start_server(server_env, tmp_path / f"uvicorn-{name}.log") for name in ("a", "b")]
    try:
        for (process, base), name in zip(started, ("a", "b"), strict=True):
            wait_healthy(process, base, tmp_path / f"uvicorn-{name}.log")
        yield started[0][1], started[1][1]
    finally:
        for process, _base in started:
            process.terminate()
        for process, _base in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


class Side:
    """One participant's websocket and everything it received."""

    def __init__(self, base: str, cookie: str, consultation: int) -> None:
        self.cookie, self.consultation = cookie, consultation
        self.messages: list[dict[str, Any]] = []  # every "message" and history entry, as received
        self.acks: dict[str, list[int]] = {}
        self.errors: list[dict[str, Any]] = []
        self.connections = contextlib.ExitStack()
        self.ws = self.open(base)

    def open(self, base: str) -> ClientConnection:
        opened = connect(
            f"ws://{base}/ws/consultations/{self.consultation}/",
            origin=Origin(f"http://{base}"),
            additional_headers={"Cookie": self.cookie},
            open_timeout=RECEIVE_TIMEOUT,
            close_timeout=5,
        )
        return self.connections.enter_context(opened)

    @property
    def last_seq(self) -> int:
        return max((m["seq"] for m in self.messages), default=0)

    def hello(self) -> None:
        self.ws.send(json.dumps({"type": "hello", "after": self.last_seq}))
        while True:
            frame = self.receive()
            if frame["type"] == "history" and not frame["more"]:
                return

    def receive(self) -> dict[str, Any]:
        frame = json.loads(self.ws.recv(timeout=RECEIVE_TIMEOUT))
        if frame["type"] == "history":
            self.messages += frame["messages"]
        elif frame["type"] == "message":
            self.messages.append(frame)
        elif frame["type"] == "ack":
            self.acks.setdefault(frame["client_id"], []).append(frame["seq"])
        elif frame["type"] == "error":
            self.errors.append(frame)
        return frame

    def send(self, client_id: str, body: str) -> None:
        self.ws.send(json.dumps({"type": "message", "client_id": client_id, "body": body}))
        while client_id not in self.acks and not any(e.get("client_id") == client_id for e in self.errors):
            self.receive()

    def drain_until(self, last_seq: int) -> None:
        while self.last_seq < last_seq:
            self.receive()


def stored_messages(tmp_path: Path, consultation: int) -> list[tuple[int, str, str, str]]:
    with sqlite3.connect(tmp_path / "var" / "nethospital.sqlite3") as db:
        rows = db.execute(
            "SELECT seq, client_id, body, sender_role FROM consultations_message"
            " WHERE consultation_id = ? ORDER BY seq",
            (consultation,),
        ).fetchall()
    return [(int(seq), str(cid), str(body), str(role)) for seq, cid, body, role in rows]


def test_patient_and_doctor_on_two_processes_lose_and_duplicate_nothing(
    seeded: dict[str, Any], servers: tuple[str, str], tmp_path: Path
) -> None:
    process_a, process_b = servers
    consultation = seeded["consultation"]
    patient = Side(process_a, seeded["patient_cookie"], consultation)
    doctor = Side(process_b, seeded["doctor_cookie"], consultation)
    patient.hello()
    doctor.hello()
    assert [m["seq"] for m in patient.messages] == [m["seq"] for m in doctor.messages] == [1]  # "doctor joined"
    failures: list[BaseException] = []

    def patient_writes() -> None:
        try:
            for i in range(PER_SIDE):
                if i == PER_SIDE // 2:
                    # The line drops; the patient comes back on the other process, catches up from
                    # the last seq it saw, and resends its last message (its ack may have been lost).
                    patient.ws.close()
                    patient.ws = patient.open(process_b)
                    patient.hello()
                    patient.send(f"p-{i - 1}", f"病人第{i - 1}条")
                patient.send(f"p-{i}", f"病人第{i}条")
        except BaseException as failure:
            failures.append(failure)

    def doctor_writes() -> None:
        try:
            for i in range(PER_SIDE):
                doctor.send(f"d-{i}", f"医生第{i}条")
        except BaseException as failure:
            failures.append(failure)

    threads = [threading.Thread(target=patient_writes), threading.Thread(target=doctor_writes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)

    stored = stored_messages(tmp_path, consultation)
    last = 1 + 2 * PER_SIDE
    assert [row[0] for row in stored] == list(range(1, last + 1))  # gapless, nothing stored twice
    assert sorted(row[1] for row in stored[1:]) == sorted(
        [f"p-{i}" for i in range(PER_SIDE)] + [f"d-{i}" for i in range(PER_SIDE)]
    )
    patient.drain_until(last)
    doctor.drain_until(last)
    for side in (patient, doctor):
        assert not side.errors, side.errors
        received = [(m["seq"], m["client_id"], m["body"], m["sender_role"]) for m in side.messages]
        # Exactly what was stored: every seq once, in order (the system message's body is its text).
        assert [r[0] for r in received] == list(range(1, last + 1))
        assert received[1:] == stored[1:]
    # Every message acked once with its stored seq; the resend got the same seq again.
    seq_of = {cid: seq for seq, cid, _body, _role in stored}
    for side, prefix in ((patient, "p"), (doctor, "d")):
        for i in range(PER_SIDE):
            acks = side.acks[f"{prefix}-{i}"]
            assert set(acks) == {seq_of[f"{prefix}-{i}"]}
    resent = f"p-{PER_SIDE // 2 - 1}"
    assert len(patient.acks[resent]) == 2
    for side in (patient, doctor):
        with pytest.raises(TimeoutError):
            side.ws.recv(timeout=0.5)  # and nothing more arrives
        side.connections.close()


def test_a_quiet_room_stays_open(seeded: dict[str, Any], servers: tuple[str, str]) -> None:
    process_a, process_b = servers
    patient = Side(process_a, seeded["patient_cookie"], seeded["consultation"])
    doctor = Side(process_b, seeded["doctor_cookie"], seeded["consultation"])
    patient.hello()
    doctor.hello()
    # Nobody writes for a while: a doctor reads the history, a patient thinks. (Real time on purpose:
    # what is under test is the Redis connection's read timeout, not a rule of ours.)
    time.sleep(12)
    doctor.send("d-late", "还在吗？")
    patient.drain_until(2)
    assert [(m["seq"], m["body"]) for m in patient.messages][-1:] == [(2, "还在吗？")]
    patient.connections.close()
    doctor.connections.close()
