"""Outgoing e-mail is configured from the environment: console by default, SMTP when a host is given.
Each case imports the settings afresh in a subprocess; the SMTP case sends a real message through
Django's SMTP backend to a small SMTP server listening on 127.0.0.1 in this test."""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

PRINT_EMAIL = (
    "import json; from nethospital import settings as s; "
    "print(json.dumps({k: getattr(s, k) for k in ('EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', "
    "'EMAIL_USE_TLS', 'EMAIL_USE_SSL', 'EMAIL_TIMEOUT')}))"
)

SEND_MAIL = (
    "import django; django.setup(); from django.core.mail import send_mail; "
    "print(send_mail('Appointment reminder', 'See you tomorrow at 09:00.', None, ['patient@example.org']))"
)


def run_with(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "NETHOSPITAL_ENV", "DJANGO_SETTINGS"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "nethospital.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def email_settings(**env: str) -> dict[str, object]:
    result = run_with(PRINT_EMAIL, **env)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def test_console_by_default() -> None:
    assert email_settings()["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_a_host_turns_on_smtp_with_its_settings() -> None:
    assert email_settings(EMAIL_HOST="smtp.example.org", EMAIL_PORT="587", EMAIL_USE_TLS="1", EMAIL_TIMEOUT="5") == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.org",
        "EMAIL_PORT": 587,
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 5.0,
    }


def test_an_explicit_backend_wins_over_the_host() -> None:
    backend = "django.core.mail.backends.filebased.EmailBackend"
    assert email_settings(EMAIL_HOST="smtp.example.org", EMAIL_BACKEND=backend)["EMAIL_BACKEND"] == backend


def test_tls_and_ssl_together_are_refused() -> None:
    result = run_with(PRINT_EMAIL, EMAIL_HOST="smtp.example.org", EMAIL_USE_TLS="1", EMAIL_USE_SSL="1")
    assert result.returncode != 0
    assert "EMAIL_USE_TLS and EMAIL_USE_SSL" in result.stderr


PRODUCTION = {
    "NETHOSPITAL_ENV": "production",
    "SECRET_KEY": "x" * 40,
    "ALLOWED_HOSTS": "nethospital.example.org",
    "EMAIL_HOST": "smtp.example.org",
    "EMAIL_HOST_USER": "mailer",
    "EMAIL_HOST_PASSWORD": "not-a-real-password",
}


def test_production_refuses_a_password_sent_in_clear() -> None:
    refused = run_with(PRINT_EMAIL, **PRODUCTION)
    assert refused.returncode != 0
    assert "SMTP credentials would be sent unencrypted" in refused.stderr
    assert "not-a-real-password" not in refused.stderr
    accepted = run_with(PRINT_EMAIL, **PRODUCTION, EMAIL_USE_TLS="1")
    assert accepted.returncode == 0, accepted.stderr


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for one message: greet, accept the envelope and the data, say goodbye."""

    def handle(self) -> None:
        received: list[str] = []
        self.wfile.write(b"220 test ESMTP\r\n")
        in_data = False
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if in_data:
                if line == ".":
                    in_data = False
                    self.server.messages.append("\n".join(received))  # type: ignore[attr-defined]
                    self.wfile.write(b"250 queued\r\n")
                else:
                    received.append(line)
                continue
            verb = line[:4].upper()
            if verb in {"EHLO", "HELO"}:
                self.wfile.write(b"250 test\r\n")
            elif verb == "DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # MAIL FROM, RCPT TO, RSET, NOOP
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_mail_goes_out_over_smtp_to_the_configured_host(smtp_server: socketserver.ThreadingTCPServer) -> None:
    port = smtp_server.server_address[1]
    result = run_with(SEND_MAIL, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port), DATABASE_URL="sqlite:///:memory:")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    messages: list[str] = smtp_server.messages  # type: ignore[attr-defined]
    assert len(messages) == 1
    assert "Subject: Appointment reminder" in messages[0]
    assert "To: patient@example.org" in messages[0]
    assert "See you tomorrow at 09:00." in messages[0]
