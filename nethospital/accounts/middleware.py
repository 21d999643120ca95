from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from nethospital.accounts import policy


class StrongAuthenticationMiddleware:
    """Marks ``request.user.is_mfa_verified`` for this request, read by every access check."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            # The session (already loaded for request.user) says whether a factor was used in it;
            # only then ask the database whether the account still has one. So the usual request of
            # a patient without MFA costs no query here (it cost one on every request before).
            verified = policy.session_passed_mfa(request) and policy.is_strongly_authenticated(request)
            user.is_mfa_verified = verified  # type: ignore[union-attr]
        return self.get_response(request)


class PreferredLanguageMiddleware:
    """A logged-in user's saved language wins over the browser's, unless a cookie says otherwise.

    Runs before LocaleMiddleware, which reads the cookie: we only fill the cookie in from the
    profile when it is missing, so switching language on any device is remembered everywhere."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        preferred = getattr(user, "preferred_language", "") if user is not None and user.is_authenticated else ""
        if preferred and not cookie and translation.check_for_language(preferred):
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                preferred,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                samesite="Lax",
                secure=settings.SECURE_COOKIES,
            )
        return response
