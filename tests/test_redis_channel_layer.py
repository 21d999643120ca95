"""Live events cross processes through Redis: a uvicorn server process holds a user's websocket, and
this test process (another process, as a task worker or a second server would be) sends to the
user's group through the Redis channel layer. Real uvicorn, real Redis, real websocket; no mocks."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

pytestmark = pytest.mark.redis

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0
RECEIVE_TIMEOUT = 10.0

MAKE_SESSION = """
import json
from django.conf import settings
from django.test import Client
from nethospital.testing import factories
user = factories.patient_user()
client = Client()
client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
print("SESSION " + json.dumps({"user_id": user.pk, "cookie": settings.SESSION_COOKIE_NAME,
                               "session": client.cookies[settings.SESSION_COOKIE_NAME].value}))
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
def prefix() -> str:
    # A prefix of its own, so parallel runs on one Redis never see each other's groups.
    return f"nethospital-test-{secrets.token_hex(6)}"


@pytest.fixture
def server_env(tmp_path: Path, redis_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETHOSPITAL_")}
    env.pop("DATABASE_URL", None)  # the server's own SQLite file, in tmp_path
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "nethospital.settings",
            "NETHOSPITAL_VAR_DIR": str(tmp_path / "var"),
            "REDIS_URL": redis_url,
            "NETHOSPITAL_CHANNEL_PREFIX": prefix,
            "PYTHONUNBUFFERED": "1",
        }
    )
    (tmp_path / "var").mkdir()
    return env


@pytest.fixture
def logged_in(server_env: dict[str, str]) -> dict[str, Any]:
    """A patient in the server's database and a logged-in session for them."""
    nethospital(["migrate", "--noinput", "-v", "0"], server_env)
    out = nethospital(["shell", "-c", MAKE_SESSION], server_env).stdout
    line = next(line for line in out.splitlines() if line.startswith("SESSION "))
    return dict(json.loads(line.removeprefix("SESSION ")))


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "nethospital.asgi:application",
             "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"],
            env=server_env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, f"uvicorn exited early:\n{log_path.read_text()}"
            try:
                if httpx.get(f"http://{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"uvicorn did not answer /healthz:\n{log_path.read_text()}"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture
def redis_layer(settings, redis_url: str, prefix: str):  # type: ignore[no-untyped-def]
    """This process's channel layer: Redis with the server's prefix (settings are reset after)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": prefix},
        }
    }
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisPubSubChannelLayer"
    return layer


def open_socket(base: str, cookie: str | None) -> ClientConnection:
    headers = {"Cookie": cookie} if cookie else {}
    return connect(
        f"ws://{base}/ws/notifications/",
        origin=Origin(f"http://{base}"),
        additional_headers=headers,
        open_timeout=RECEIVE_TIMEOUT,
        close_timeout=5,
    )


def test_group_send_through_redis_reaches_a_websocket_in_the_server_process(
    logged_in: dict[str, Any], server: str, redis_layer
) -> None:  # type: ignore[no-untyped-def]
    user_id = logged_in["user_id"]
    cookie = f"{logged_in['cookie']}={logged_in['session']}"
    with open_socket(server, cookie) as websocket:
        # Another user's group first: it must not reach this socket.
        async_to_sync(redis_layer.group_send)(
            f"user.{user_id + 1000}", {"type": "notify", "payload": {"kind": "not-for-you"}}
        )
        async_to_sync(redis_layer.group_send)(
            f"user.{user_id}", {"type": "notify", "payload": {"kind": "appointment.reminder", "id": 42}}
        )

        message = json.loads(websocket.recv(timeout=RECEIVE_TIMEOUT))

        assert message == {"type": "notification", "payload": {"kind": "appointment.reminder", "id": 42}}
        with pytest.raises(TimeoutError):
            websocket.recv(timeout=0.5)


def test_websocket_without_a_session_is_refused(server: str) -> None:
    # The consumer closes before accepting an anonymous user, which uvicorn answers with HTTP 403.
    with pytest.raises(InvalidStatus) as refused:
        open_socket(server, cookie=None)

    assert refused.value.response.status_code == 403
