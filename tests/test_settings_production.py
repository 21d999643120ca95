"""NETHOSPITAL_ENV=production refuses to start an insecure configuration (nethospital/settings.py).

Each case starts a fresh Python process, because settings are read once at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD_SECRET = "k" * 20 + "-production-secret-0123456789"  # a test value, longer than 32

SETUP_AND_REPORT = (
    "import django; django.setup(); from django.conf import settings; "
    "print('DEBUG', settings.DEBUG, 'SECURE', settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
    "'HOSTS', ','.join(settings.ALLOWED_HOSTS))"
)


def start(tmp_path: Path, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETHOSPITAL_", "SECRET_KEY", "DATABASE_URL"))}
    for name in ("DEBUG", "ALLOWED_HOSTS", "REDIS_URL", "CSRF_TRUSTED_ORIGINS"):
        env.pop(name, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "nethospital.settings",
            "NETHOSPITAL_ENV": "production",
            "NETHOSPITAL_HOME": str(tmp_path),
            "NETHOSPITAL_VAR_DIR": str(tmp_path / "var"),
            "SECRET_KEY": GOOD_SECRET,
            "ALLOWED_HOSTS": "hospital.example.org",
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", SETUP_AND_REPORT],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert "Refusing to start in production" in result.stderr
    assert reason in result.stderr, result.stderr


def test_default_secret_key_is_refused(tmp_path: Path) -> None:
    result = start(tmp_path, SECRET_KEY=None)

    assert_refused(result, "SECRET_KEY is the default or shorter than 32 characters")
    # Only the secret is wrong in this configuration.
    assert "DEBUG is on" not in result.stderr
    assert "ALLOWED_HOSTS is empty" not in result.stderr


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    result = start(tmp_path, SECRET_KEY="s" * 31)

    assert_refused(result, "SECRET_KEY is the default or shorter than 32 characters")


def test_debug_is_refused(tmp_path: Path) -> None:
    result = start(tmp_path, DEBUG="true")

    assert_refused(result, "DEBUG is on")
    assert "SECRET_KEY" not in result.stderr


def test_insecure_cookies_are_refused(tmp_path: Path) -> None:
    result = start(tmp_path, NETHOSPITAL_SECURE_COOKIES="false")

    assert_refused(result, "cookies are not marked Secure (NETHOSPITAL_SECURE_COOKIES)")
    assert "DEBUG is on" not in result.stderr


def test_empty_allowed_hosts_is_refused(tmp_path: Path) -> None:
    result = start(tmp_path, ALLOWED_HOSTS=None)

    assert_refused(result, "ALLOWED_HOSTS is empty")


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    result = start(tmp_path, SECRET_KEY=None, DEBUG="1", NETHOSPITAL_SECURE_COOKIES="0", ALLOWED_HOSTS=None)

    assert_refused(result, "SECRET_KEY")
    for reason in ("DEBUG is on", "NETHOSPITAL_SECURE_COOKIES", "ALLOWED_HOSTS is empty"):
        assert reason in result.stderr


@pytest.mark.parametrize("environment", ["production", "PRODUCTION "])
def test_a_good_production_configuration_starts(tmp_path: Path, environment: str) -> None:
    result = start(tmp_path, NETHOSPITAL_ENV=environment)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DEBUG False SECURE True True HOSTS hospital.example.org"


def test_development_allows_the_defaults(tmp_path: Path) -> None:
    # The same defaults that production refuses are what a laptop demo runs with.
    result = start(tmp_path, NETHOSPITAL_ENV="development", SECRET_KEY=None, ALLOWED_HOSTS=None)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("DEBUG True SECURE False False HOSTS 127.0.0.1,localhost")
