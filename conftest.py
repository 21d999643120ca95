"""Shared pytest fixtures. Data is made through the real actions (nethospital.testing.factories)."""

from __future__ import annotations

import pytest
from django.test import Client

from nethospital.testing import factories
from nethospital.testing.totp import enable_totp


@pytest.fixture(autouse=True)
def _fresh_caches(settings):  # type: ignore[no-untyped-def]
    # Rate limits and axes counters live in the cache: start each test clean.
    from django.core.cache import cache

    # Password hashing at production strength costs ~0.3 s a user; tests make hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield


@pytest.fixture
def city_hospital(db):  # type: ignore[no-untyped-def]
    return factories.hospital()


@pytest.fixture
def internet_hospital(city_hospital):  # type: ignore[no-untyped-def]
    return factories.internet_hospital(city_hospital)


@pytest.fixture
def patient_user(db):  # type: ignore[no-untyped-def]
    return factories.patient_user()


@pytest.fixture
def doctor(city_hospital, internet_hospital):  # type: ignore[no-untyped-def]
    return factories.doctor(city_hospital)


def login(client: Client, user, *, mfa: bool = False) -> Client:  # type: ignore[no-untyped-def]
    """Log ``user`` in on ``client``; with ``mfa`` the session has passed a real TOTP factor."""
    from allauth.mfa.utils import is_mfa_enabled

    from nethospital.accounts.policy import SESSION_MARK

    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    if mfa:
        if not is_mfa_enabled(user):
            enable_totp(user)
        session = client.session
        session[SESSION_MARK] = user.pk
        session.save()
    return client


@pytest.fixture
def login_as():  # type: ignore[no-untyped-def]
    def _login(user, *, mfa: bool = False) -> Client:  # type: ignore[no-untyped-def]
        return login(Client(), user, mfa=mfa)

    return _login
