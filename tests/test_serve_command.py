"""``nethospital serve`` migrates a fresh database and serves it with uvicorn (not runserver)."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def console_script() -> Path:
    # The console script that `pip install -e .` puts next to this interpreter (what `make run` runs).
    script = Path(sys.executable).parent / "nethospital"
    assert script.exists(), f"{script} is missing: install the project with pip install -e ."
    return script


class Served:
    def __init__(self, process: subprocess.Popen[str], base: str, log_path: Path, var_dir: Path) -> None:
        self.process, self.base, self.log_path, self.var_dir = process, base, log_path, var_dir

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    var_dir = tmp_path / "var"  # serve must create it
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETHOSPITAL_")}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env.update({"NETHOSPITAL_VAR_DIR": str(var_dir), "NETHOSPITAL_PORT": "1", "PYTHONUNBUFFERED": "1"})
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(console_script()), "serve", "--port", str(port), "--no-demo"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log_path, var_dir)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def wait_for_health(served: Served) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        assert served.process.poll() is None, f"serve exited with {served.process.returncode}:\n{served.log()}"
        try:
            response = httpx.get(f"{served.base}/healthz", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"/healthz did not answer within {STARTUP_TIMEOUT}s:\n{served.log()}"
        time.sleep(0.25)


def test_serve_migrates_and_answers_with_uvicorn(served: Served) -> None:
    response = wait_for_health(served)

    assert response.json() == {"status": "ok", "database": "sqlite"}
    assert response.headers["server"] == "uvicorn"
    # --port wins over NETHOSPITAL_PORT (set to 1 in this environment).
    assert f"Net Hospital: {served.base}/ (uvicorn, 1 worker(s)" in served.log()
    # The served process froze its start-up objects for the garbage collector (core.gcpolicy).
    assert re.search(r"garbage collector: \d{5,} start-up objects frozen, thresholds 700/10/10", served.log())
    # Migrated into the SQLite file under NETHOSPITAL_VAR_DIR, without the demo (--no-demo).
    database = served.var_dir / "nethospital.sqlite3"
    assert database.exists()
    with sqlite3.connect(database) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"core_auditentry", "django_session", "django_tasks_database_dbtaskresult"} <= tables
        assert db.execute("SELECT COUNT(*) FROM accounts_user").fetchone() == (0,)
        core_migrations = db.execute("SELECT COUNT(*) FROM django_migrations WHERE app = 'core'").fetchone()[0]
        assert core_migrations >= 2  # core's schema and its audit trigger migration
    assert "seeding the demo" not in served.log()


def test_serve_stops_cleanly_on_interrupt(served: Served) -> None:
    wait_for_health(served)

    served.process.send_signal(signal.SIGINT)

    assert served.process.wait(timeout=20) == 0, served.log()
    assert "Finished server process" in served.log()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.base}/healthz", timeout=2)
