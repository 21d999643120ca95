"""The one clock every domain rule reads, so that time-dependent rules are tested without sleeping.

``clock.now()`` is ``django.utils.timezone.now()`` unless a test has frozen it with
``clock.frozen(moment)`` or moved it with ``clock.advance(delta)``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

from django.utils import timezone

_state = threading.local()
_global_offset: list[dt.datetime | None] = [None]


def now() -> dt.datetime:
    frozen = getattr(_state, "frozen", None) or _global_offset[0]
    return frozen if frozen is not None else timezone.now()


def today() -> dt.date:
    return timezone.localdate(now())


@contextlib.contextmanager
def frozen(moment: dt.datetime, *, all_threads: bool = False) -> Iterator[None]:
    """Freeze ``now()`` at ``moment`` (timezone-aware) for this thread, or for all threads."""
    if timezone.is_naive(moment):
        raise ValueError("clock.frozen needs an aware datetime")
    if all_threads:
        previous_global = _global_offset[0]
        _global_offset[0] = moment
    previous = getattr(_state, "frozen", None)
    _state.frozen = moment
    try:
        yield
    finally:
        _state.frozen = previous
        if all_threads:
            _global_offset[0] = previous_global


def advance(delta: dt.timedelta) -> None:
    """Move a frozen clock forward (only valid inside ``frozen``)."""
    current = getattr(_state, "frozen", None)
    if current is None:
        raise RuntimeError("clock.advance is only valid while the clock is frozen")
    _state.frozen = current + delta
    if _global_offset[0] is not None:
        _global_offset[0] = _global_offset[0] + delta
