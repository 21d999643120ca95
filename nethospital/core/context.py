"""What the current request is: who asks, from where. Read by the audit log, set by middleware.

A ``contextvars.ContextVar`` follows the request across ``sync_to_async`` hops under ASGI.
Management commands and tasks run with the default (no address, channel ``system``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    client_address: str | None = None
    channel: str = "system"  # web, api, fhir, epcis, websocket, system


_SYSTEM = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "nethospital_request_context", default=None
)


def current() -> RequestContext:
    return _current.get() or _SYSTEM


@contextlib.contextmanager
def using(ctx: RequestContext) -> Iterator[None]:
    token = _current.set(ctx)
    try:
        yield
    finally:
        _current.reset(token)
