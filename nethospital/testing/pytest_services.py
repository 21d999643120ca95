"""Pytest plugin (loaded with ``-p`` from pyproject.toml): tests that need a real service.

Markers (declared in pyproject.toml):

- ``postgres``: runs only when the default database is PostgreSQL.
- ``redis``: needs ``TEST_REDIS_URL`` (the ``redis_url`` fixture gives it).

``make test`` runs pytest through scripts/test_services.py, which sets ``NETHOSPITAL_TEST_PASS`` to
``sqlite`` or ``postgres`` and provides the services. The rule, in one place:

==================================  =====================  ==================================
situation                           ``postgres`` test      ``redis`` test
==================================  =====================  ==================================
service available                   runs                   runs
SQLite pass (``...PASS=sqlite``)    skipped: it runs in    FAILS (make test provides Redis)
                                    the PostgreSQL pass
PostgreSQL pass, no PostgreSQL      FAILS                  FAILS
``CI`` set, outside make test       FAILS                  FAILS
plain ``pytest`` on a laptop        skipped, with a hint   skipped, with a hint
==================================  =====================  ==================================

So a missing service can never turn into a silent skip in CI.
"""

from __future__ import annotations

import os

import pytest

TRUE_VALUES = {"1", "true", "yes", "on"}


def _test_pass() -> str:
    return os.environ.get("NETHOSPITAL_TEST_PASS", "").strip().lower()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in TRUE_VALUES


def _database_vendor() -> str:
    from django.db import connections

    return str(connections["default"].vendor)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") is not None:
        vendor = _database_vendor()
        if vendor != "postgresql":
            if _test_pass() == "sqlite":
                pytest.skip("needs PostgreSQL: runs in the PostgreSQL pass of make test")
            message = (
                f"needs PostgreSQL but the default database is {vendor}; "
                "set DATABASE_URL=postgres://... (make test does this in its PostgreSQL pass)"
            )
            if _test_pass() == "postgres" or _in_ci():
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
    if item.get_closest_marker("redis") is not None and not os.environ.get("TEST_REDIS_URL"):
        message = "needs Redis: set TEST_REDIS_URL=redis://host:port/db (make test finds or starts one)"
        if _test_pass() or _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    """The Redis the ``redis``-marked tests use (never the suite's cache: see scripts/test_services.py)."""
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        pytest.fail("TEST_REDIS_URL is not set", pytrace=False)
    return url
