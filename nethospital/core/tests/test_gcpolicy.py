"""The garbage collector of a server process (core.gcpolicy): the application ``nethospital serve`` gives
uvicorn freezes what start-up built, so that full collections walk only what traffic makes, and sets
the thresholds the settings name. Each case builds the served application in a subprocess of its own
(the freeze and the thresholds are process-wide), with the environment it names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from nethospital.core.gcpolicy import parse_threshold

BUILD_THE_SERVED_APPLICATION = """
import contextvars, gc, json
import django
django.setup()
from django.urls import get_resolver
walked_before = len(gc.get_objects())
from nethospital.core.middleware import served_application
import nethospital.asgi  # what the application is built of (it sets one context variable of its own)
variables_before = len(contextvars.copy_context())
served_application()
resolver = get_resolver()
print(json.dumps({
    "walked_before": walked_before,
    "walked_after": len(gc.get_objects()),
    "frozen": gc.get_freeze_count(),
    "threshold": list(gc.get_threshold()),
    # gc.get_objects() lists what collections walk; frozen objects are not among them.
    "resolver_walked": any(o is resolver for o in gc.get_objects()),
    "resolver_populated": bool(resolver._populated),
    "context_variables_added": len(contextvars.copy_context()) - variables_before,
}))
"""


def served_with(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL", "NETHOSPITAL_"))}
    return subprocess.run(
        [sys.executable, "-c", BUILD_THE_SERVED_APPLICATION],
        env={**clean, "DJANGO_SETTINGS_MODULE": "nethospital.settings", "NETHOSPITAL_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def figures(tmp_path: Path, **env: str) -> dict[str, object]:
    result = served_with(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_start_up_objects_are_frozen_once_the_application_is_warmed_up(tmp_path: Path) -> None:
    served = figures(tmp_path)
    assert isinstance(served["frozen"], int) and isinstance(served["walked_after"], int)
    assert isinstance(served["walked_before"], int)
    # Django, the apps and their tables: tens of thousands of objects no collection walks any more.
    assert served["frozen"] > 50_000
    assert served["walked_after"] < served["walked_before"] // 10
    # The URL resolvers were built by the warm-up, before the freeze, and are frozen with the rest.
    assert served["resolver_populated"] is True
    assert served["resolver_walked"] is False
    # ... in a context of its own: the server's tasks inherit none of the resolvers' per-context state
    assert served["context_variables_added"] == 0
    assert served["threshold"] == [700, 10, 10]  # Python's own unless the settings name others


def test_the_freeze_can_be_turned_off_and_the_thresholds_set(tmp_path: Path) -> None:
    served = figures(tmp_path, NETHOSPITAL_GC_FREEZE="0", NETHOSPITAL_GC_THRESHOLD="5000, 20,10")
    assert served["frozen"] == 0
    assert served["resolver_walked"] is True
    assert served["threshold"] == [5000, 20, 10]


def test_a_malformed_threshold_stops_the_server_with_its_name(tmp_path: Path) -> None:
    result = served_with(tmp_path, NETHOSPITAL_GC_THRESHOLD="5000,20")
    assert result.returncode != 0
    assert "NETHOSPITAL_GC_THRESHOLD must be three whole numbers" in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", None), ("  ", None), ("700,10,10", (700, 10, 10)), (" 10000 , 50 , 0 ", (10000, 50, 0))],
)
def test_thresholds_are_read(value: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_threshold(value) == expected


@pytest.mark.parametrize(
    "value", ["700", "700,10", "a,b,c", "700,-1,10", "700,10,10,10", "0,10,10", "7.5,10,10", "700,10,\u00b2"]
)
def test_malformed_thresholds_are_refused(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="NETHOSPITAL_GC_THRESHOLD"):
        parse_threshold(value)
