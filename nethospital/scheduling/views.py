"""Scheduling pages (to be completed): every name in urls.py resolves, pages come next."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse


def _pending(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return HttpResponse(status=501)


search = doctor = confirm_booking = my_appointments = cancel = reschedule = calendar = _pending
join_waitlist = accept_offer = leave_waitlist = doctor_day = mark = schedule = notifications = _pending
