"""Acceptance, in a real Chromium (issue 4): a patient joins a department queue through the pages, a
doctor with a second factor picks them up on the workbench, they chat, the patient's line drops and
comes back without losing or duplicating a message, they hold a video call that connects
(RTCPeerConnection "connected", fake camera and microphone), the doctor signs a visit record and the
patient sees it.

The chat needs websockets, which pytest-django's live server (WSGI) does not serve. So the test
runs the real ASGI server, uvicorn with ``nethospital.asgi``, in a process of its own on a free
port, with its own SQLite file (WAL: the server's threads and this test read and write it at
once). The data is made there through the real actions (``nethospital shell``), the people log in
through the real login and second-factor pages, and the test reads the outcome from that database.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nethospital.accounts.tests.conftest import CHROMIUM, CHROMIUM_ARGS
from nethospital.testing.factories import DEFAULT_PASSWORD
from nethospital.testing.totp import DEMO_SECRET, code_for

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT = 60.0
WAIT_MS = 20_000  # Playwright waits (ms) for what arrives over the websocket
MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

SEED = """
import json
from nethospital.consultations.models import ICD10Code
from nethospital.testing import factories
from nethospital.testing.totp import DEMO_SECRET, enable_totp

hospital = factories.hospital(name_zh="北京协和医院")
factories.internet_hospital(hospital)
doctor = factories.doctor(hospital, legal_name="王心")
enable_totp(doctor.user, DEMO_SECRET)
patient = factories.patient_user(email="zhou.min@example.org", legal_name="周敏")
print("SEED " + json.dumps({"doctor_email": doctor.user.email, "doctor_user": doctor.user.pk,
                            "patient_email": patient.email, "patient_user": patient.pk,
                            "department": doctor.department_id}))
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nethospital(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nethospital.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"nethospital {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass
class Served:
    url: str
    database: Path
    seed: dict[str, Any]
    log_path: Path

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database, timeout=20) as db:
            return db.execute(sql, params).fetchall()

    def eventually(
        self, sql: str, *params: Any, until: Callable[[tuple[Any, ...]], bool], timeout: float = 20.0
    ) -> tuple[Any, ...]:
        """The first row of ``sql`` once ``until`` holds for it (the server writes what the pages report
        over their sockets a moment later); the last row seen if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.rows(sql, *params)[0]
            if until(row) or time.monotonic() > deadline:
                return row
            time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETHOSPITAL_")}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "nethospital.settings",
            "NETHOSPITAL_VAR_DIR": str(tmp_path / "var"),
            "NETHOSPITAL_LANGUAGE": "zh-hans",
            "PYTHONUNBUFFERED": "1",
        }
    )
    (tmp_path / "var").mkdir()
    nethospital(["migrate", "--noinput", "-v", "0"], env)
    out = nethospital(["shell", "-c", SEED], env)
    seed = json.loads(next(line for line in out.splitlines() if line.startswith("SEED ")).removeprefix("SEED "))
    port = free_port()
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "nethospital.asgi:application",
             "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, f"uvicorn exited early:\n{log_path.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"uvicorn did not answer /healthz:\n{log_path.read_text()}"
            time.sleep(0.2)
        yield Served(url, tmp_path / "var" / "nethospital.sqlite3", seed, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture
def media_browser(monkeypatch):  # type: ignore[no-untyped-def]
    """Debian's Chromium with a fake camera and microphone that it may use without asking."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def log_in(page, url: str, email: str, totp_secret: str | None = None) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    if totp_secret is not None:
        # The doctor's second factor (R6): allauth's authenticate stage, with a real TOTP code.
        assert "/accounts/2fa/authenticate" in page.url
        page.fill("input[name=code]", code_for(totp_secret))
        with page.expect_navigation():
            page.click("main form button[type=submit]")
    assert "/accounts/" not in page.url


def chat_seqs(page) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(s) for s in page.locator("#messages li.msg").evaluate_all("items => items.map(i => i.dataset.seq)")]


def chat_bodies(page) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    pairs = page.locator("#messages li.msg").evaluate_all(
        "items => items.map(i => [Number(i.dataset.seq), (i.querySelector('.body') || {}).textContent || ''])"
    )
    return [(int(seq), str(body)) for seq, body in pairs]


def send(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#chat-form textarea[name=body]", text)
    page.click("#chat-form button[type=submit]")


def test_queue_chat_through_a_dropped_line_video_call_and_visit_record(served: Served, media_browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    url, seed = served.url, served.seed
    contexts = []

    def context():  # type: ignore[no-untyped-def]
        made = media_browser.new_context(locale="zh-CN", permissions=["camera", "microphone"])
        contexts.append(made)
        return made

    try:
        # The doctor logs in with password and TOTP and opens the workbench (live over its websocket).
        doctor = context().new_page()
        log_in(doctor, url, seed["doctor_email"], DEMO_SECRET)
        doctor.goto(f"{url}/doctor/workbench/")
        expect(doctor.locator("#workbench")).to_have_attribute("data-connection", "connected")
        expect(doctor.locator("#pick-next")).to_have_count(0)

        # The patient joins the cardiology queue for a video visit, declaring a first visit.
        patient_context = context()
        patient = patient_context.new_page()
        log_in(patient, url, seed["patient_email"])
        patient.goto(f"{url}/consultations/queue/")
        patient.select_option("select[name=department]", str(seed["department"]))
        patient.check("input[name=channel][value=video]")
        patient.fill("input[name=condition]", "头晕 dizziness")
        patient.check("input[name=first_visit][value=yes]")
        with patient.expect_navigation():
            patient.click("#declaration-form button[type=submit]")
        (consultation_id,) = served.rows("SELECT id FROM consultations_consultation")[0]
        assert patient.url == f"{url}/consultations/{consultation_id}/waiting/"
        expect(patient.locator("#queue-status")).to_have_attribute("data-connection", "connected")
        expect(patient.locator("#queue-position")).to_have_text("1")

        # The workbench shows the waiting patient without a reload (the 30 s poll is not needed).
        expect(doctor.locator("#pick-next")).to_be_visible(timeout=10_000)
        with doctor.expect_navigation():
            doctor.click("#pick-next")
        room_url = f"{url}/consultations/{consultation_id}/"
        assert doctor.url == room_url
        # The waiting page follows the doctor into the room by itself.
        patient.wait_for_url(room_url, timeout=WAIT_MS)
        for page in (doctor, patient):
            expect(page.locator("#connection-state")).to_have_attribute("data-state", "connected")

        # They chat.
        send(patient, "医生您好，我最近经常头晕 <b>not bold</b>")
        expect(doctor.locator("#messages li.msg .body", has_text="经常头晕")).to_have_count(1)
        assert doctor.locator("#messages li.msg b").count() == 0  # text, never markup
        send(doctor, "头晕多久了？")
        expect(patient.locator("#messages li.msg .body", has_text="头晕多久了")).to_have_count(1)

        # The patient's line drops. They write while offline; the doctor writes twice meanwhile.
        patient_context.set_offline(True)
        expect(patient.locator("#connection-state")).to_have_attribute("data-state", "offline")
        send(patient, "大概一周了（离线时写的）")
        expect(patient.locator("li.msg-outbox")).to_have_count(1)
        send(doctor, "血压量过吗？")
        send(doctor, "有没有恶心？")
        expect(doctor.locator("#messages li.msg .body", has_text="有没有恶心")).to_have_count(1)
        assert patient.locator("#messages li.msg .body", has_text="血压量过吗").count() == 0
        # The line comes back: the patient gets what was missed and the outbox goes out, once.
        patient_context.set_offline(False)
        expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected")
        expect(patient.locator("#messages li.msg .body", has_text="有没有恶心")).to_have_count(1)
        expect(doctor.locator("#messages li.msg .body", has_text="离线时写的")).to_have_count(1)
        expect(patient.locator("li.msg-outbox")).to_have_count(0)

        # A drop right after sending, before the ack: the message is resent with its client id and
        # lands once.
        patient.fill("#chat-form textarea[name=body]", "发出后马上断线")
        patient.evaluate(
            """() => {
                document.querySelector('#chat-form').requestSubmit();
                window.nhChat.drop();
            }"""
        )
        expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected")
        for page in (patient, doctor):
            expect(page.locator("#messages li.msg .body", has_text="发出后马上断线")).to_have_count(1)
        expect(patient.locator("li.msg-outbox")).to_have_count(0)

        # Nothing lost, nothing twice, in order: the same seqs on both pages as in the database.
        stored = served.rows(
            "SELECT seq, body, kind, client_id FROM consultations_message WHERE consultation_id = ? ORDER BY seq",
            consultation_id,
        )
        texts = [(seq, body) for seq, body, kind, _cid in stored if kind == "text"]
        assert [body for _seq, body in texts] == [
            "医生您好，我最近经常头晕 <b>not bold</b>",
            "头晕多久了？",
            "血压量过吗？",
            "有没有恶心？",
            "大概一周了（离线时写的）",
            "发出后马上断线",
        ]
        client_ids = [cid for _seq, _body, kind, cid in stored if kind == "text"]
        assert len(set(client_ids)) == len(client_ids)
        last_seq = stored[-1][0]
        assert [row[0] for row in stored] == list(range(1, last_seq + 1))
        for page in (patient, doctor):
            assert chat_seqs(page) == list(range(1, last_seq + 1))
            shown = dict(chat_bodies(page))
            assert [(seq, shown[seq]) for seq, _body in texts] == texts

        # The video call: the doctor starts it, the patient joins; both peer connections connect.
        doctor.click("#call-start")
        expect(patient.locator("#call-state")).to_have_attribute("data-state", "ringing")
        expect(patient.locator("#call-start")).to_be_enabled()
        patient.click("#call-start")
        for page in (doctor, patient):
            expect(page.locator("#consultation-room")).to_have_attribute("data-call-state", "connected")
            assert page.evaluate("() => window.nhCall.pc.connectionState") == "connected"
        expect(doctor.locator("#call-state")).to_have_attribute("data-state", "connected")
        call_sql = (
            "SELECT outcome, connected_at, participant_ids FROM consultations_callrecord WHERE consultation_id = ?"
        )
        # The pages report the connection over their sockets; the server records it as it comes.
        outcome, connected_at, _ids = served.eventually(call_sql, consultation_id, until=lambda r: r[0] != "ringing")
        assert outcome == "connected" and connected_at is not None
        doctor.click("#call-end")
        expect(patient.locator("#call-state")).to_have_attribute("data-state", "ended")
        outcome, _connected_at, ids = served.eventually(call_sql, consultation_id, until=lambda r: r[0] == "ended")
        assert outcome == "ended"
        assert sorted(json.loads(ids)) == sorted([seed["doctor_user"], seed["patient_user"]])
        # The chat carried on around the call (its start and end are system messages), still in order.
        send(patient, "谢谢医生")
        expect(doctor.locator("#messages li.msg .body", has_text="谢谢医生")).to_have_count(1)
        final_seq = served.rows("SELECT last_seq FROM consultations_consultation WHERE id = ?", consultation_id)[0][0]
        for page in (patient, doctor):
            expect(page.locator("#messages li.msg")).to_have_count(final_seq)
            assert chat_seqs(page) == list(range(1, final_seq + 1))

        # The doctor signs the visit record (a first visit: advice only, no diagnosis, R1).
        doctor.fill("#record-form [name=chief_complaint]", "头晕一周")
        doctor.fill("#record-form [name=advice]", "监测血压，如加重请线下就诊")
        with doctor.expect_navigation():
            doctor.click("#record-form button[type=submit]")
        assert served.rows(
            "SELECT chief_complaint FROM consultations_visitrecord WHERE consultation_id = ? AND is_current = 1",
            consultation_id,
        ) == [("头晕一周",)]
        # The patient's room shows it without the patient doing anything, and it opens.
        expect(patient.locator("#record-link")).to_be_visible()
        with patient.expect_navigation():
            patient.click("#record-link")
        assert "头晕一周" in patient.content()
        assert "监测血压，如加重请线下就诊" in patient.content()
    finally:
        for made in contexts:
            made.close()
