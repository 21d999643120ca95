"""Live events of consultations, sent through the channel layer after the change is committed.

Groups (names valid for every channel layer):
- ``consult.<id>``: everyone connected to the consultation (messages, receipts, calls, status);
- ``queue.<department id>``: patients waiting in a department queue (positions changed);
- ``bench.<practitioner id>``: a doctor's workbench (new request, message, status change);
- ``benchdept.<department id>``: the workbenches of a department's doctors (queue changed).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def consultation_group(consultation_id: int) -> str:
    return f"consult.{consultation_id}"


def queue_group(department_id: int) -> str:
    return f"queue.{department_id}"


def workbench_group(practitioner_id: int) -> str:
    return f"bench.{practitioner_id}"


def department_bench_group(department_id: int) -> str:
    return f"benchdept.{department_id}"


Event = tuple[str, dict[str, Any]]  # a group and the message sent to it
_collecting = threading.local()


@contextlib.contextmanager
def collected() -> Iterator[list[Event]]:
    """Within it, this thread's events are kept in the list it gives instead of sent: for a caller
    on an event loop that sends them itself (``send_all``), without a thread hop per event. Still
    only after commit: an event is kept when the transaction that published it commits."""
    previous = getattr(_collecting, "events", None)
    kept: list[Event] = []
    _collecting.events = kept
    try:
        yield kept
    finally:
        _collecting.events = previous


async def send_all(kept: list[Event]) -> None:
    """Send collected events, in order, from the event loop."""
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in kept:
        try:
            await layer.group_send(group, message)
        except Exception:  # live push is best effort: the state is in the database
            logger.warning("live event to %s failed (%s)", group, message["type"])


def send_now(group: str, event_type: str, payload: dict[str, Any]) -> None:
    kept = getattr(_collecting, "events", None)
    if kept is not None:
        kept.append((group, {"type": event_type, "payload": payload}))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": event_type, "payload": payload})
    except Exception:  # live push is best effort: the state is in the database
        logger.warning("live event to %s failed (%s)", group, event_type)


def publish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send after the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send_now(group, event_type, payload))
