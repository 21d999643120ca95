"""Scheduling test fixtures: the browser is the accounts app's (Debian's Chromium through
Playwright's sync API, never a Playwright download)."""

from nethospital.accounts.tests.conftest import browser  # noqa: F401 - a pytest fixture
