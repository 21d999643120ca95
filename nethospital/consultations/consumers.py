"""Websockets of consultations (R6, R21, R22): the room (chat, read receipts, video signalling), the
patient's live queue position, and the refresh signal of the doctor's workbench.

Thin, like views: each client message is parsed, one action is called, the answer is sent. Every
database call runs in a worker thread (``database_sync_to_async``) with the request context
(address, channel ``websocket``) and the user's language, so audit entries and messages are right.

The room, ``/ws/consultations/<id>/`` (client → server):

- ``{"type": "hello", "after": n}`` → ``{"type": "history", "messages": [...], "more": false,
  "call": {...} | null, "status": "..."}`` (everything after seq ``n``, in order, an audited read;
  several ``history`` frames when there are many), then live events.
- ``{"type": "message", "client_id", "body"}`` → stored first, then ``{"type": "ack", "client_id",
  "seq"}``; a resend with the same ``client_id`` acks the same seq and is not broadcast again.
  Everyone in the room (the sender too) gets ``{"type": "message", ...}`` once per seq, in order.
- ``{"type": "read", "seq": n}`` → everyone gets ``{"type": "read", "user_id", "role", "seq"}``.
- ``{"type": "call.start"}`` → ``{"type": "call", "call_id", "state"}``;
  ``{"type": "call.update", "call_id", "state": "joined|connected|failed|ended"}``;
  everyone gets ``{"type": "call", "call_id", "state"}`` when the call changes.
- ``{"type": "signal", "call_id", "data": {...}, "to": user_id?}`` → relayed to the other sockets
  of the room (only to ``to`` when given) as ``{"type": "signal", "from", "call_id", "data"}``;
  never stored.
- a refusal or bad input → ``{"type": "error", "code", "message", "client_id"?}``; the socket stays
  open. Status changes reach the room as ``{"type": "status", ...}``.

Delivery guarantee of the room: after ``hello``, a socket gets each message exactly once and in seq
order. Events of several server processes may cross in Redis; when one arrives ahead of a seq not
yet sent on this socket, the missing ones are read from the database first (they are committed:
events are published after commit, and seqs are given under the consultation's row lock).

Refusals at connect: the socket is accepted, told ``{"type": "error", ...}`` and closed with 4401
(not logged in) or 4403 (not a participant, a doctor without a second factor in this session (R6),
a doctor who may not practise (R5)), so that a browser can tell a refusal from a dropped line and
stop reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, Generic, TypeVar, cast

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import connections
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from nethospital.accounts import policy
from nethospital.accounts.models import User
from nethospital.consultations import access, actions, errors, events
from nethospital.consultations.choices import CallOutcome, ConsultationKind, MessageKind
from nethospital.consultations.models import CallRecord, Consultation, Message
from nethospital.core import context
from nethospital.core.errors import (
    INVALID_INPUT,
    LOGIN_REQUIRED,
    PERMISSION_DENIED,
    RATE_LIMITED,
    DomainError,
    ErrorCode,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_REFUSED = 4403
MAX_FRAME_CHARS = 64 * 1024  # a chat message is at most NETHOSPITAL_MESSAGE_MAX_CHARS; SDP fits easily
MAX_SIGNAL_CHARS = 32 * 1024
HISTORY_BATCH = 500
READ_RECEIPT_INTERVAL = 1.0  # seconds between two stored read receipts of one socket, at most
SERVER_ERROR = ErrorCode("server_error", _("Something went wrong on our side. Please try again."), 500)
ACTIVE_CALL_STATES = (CallOutcome.RINGING, CallOutcome.CONNECTED)


_executor_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def database_threads() -> int:
    """How many database calls of this process's sockets may run at once.

    SQLite takes one writer at a time, so one thread (Channels' default: every call of every socket
    in one thread; it also keeps a test's in-memory database on the test's own thread). PostgreSQL
    takes as many as the connection pool holds: with a single thread, one slow commit would hold up
    every socket of the process, and a busy process could not keep up at all (docs/benchmarks.md).
    """
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return 1
    pool = database.get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        return max(1, int(pool.get("max_size", 4)))
    return 4


def _database_executor() -> ThreadPoolExecutor | None:
    global _executor
    if database_threads() == 1:
        return None
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=database_threads(), thread_name_prefix="websocket-db")
        return _executor


def close_database_threads() -> None:
    """Give back the database connections of this process's socket threads and stop the threads
    (a test's database can then be dropped; the next socket starts new ones)."""
    global _executor
    with _executor_lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    workers = executor._max_workers
    everyone = threading.Barrier(workers)

    def close() -> None:
        connections.close_all()
        everyone.wait(timeout=10)  # so that each thread runs this once

    for future in [executor.submit(close) for _worker in range(workers)]:
        future.result(timeout=30)
    executor.shutdown(wait=True)


async def _in_database(function: Callable[..., T], *args: Any) -> T:
    executor = _database_executor()
    if executor is None:
        return await database_sync_to_async(function)(*args)
    return await database_sync_to_async(function, thread_sensitive=False, executor=executor)(*args)


Stored = tuple[dict[str, Any] | None, int]  # the payload to broadcast (None for a resend) and the seq


Request = TypeVar("Request")
Result = TypeVar("Result")


class Batcher(Generic[Request, Result]):
    """Group commit, one per kind and event loop (server process): requests that arrive while a batch
    is being stored wait for the next batch, and each batch is one call of ``store`` in a database
    thread. The fixed cost of a write (a transaction, a commit, the audit chain's single head, the
    queries) is then paid per batch instead of per request (docs/benchmarks.md). Each request is
    still stored before it is answered.

    Under load, a batch also lingers: when the previous batch ended less than ``busy_window``
    seconds ago, the next one waits until its oldest request is ``linger`` seconds old (time it
    already spent waiting for the batch in flight counts), so that batches are several requests
    rather than one or two. A lone request in a quiet process is stored at once.

    The events the store publishes after its commit are sent from the event loop, in order, after
    the requests are answered (``events.collected``): no thread hop per event."""

    MAX_BATCH = 100
    LINGER = 0.020  # seconds; see above
    BUSY_WINDOW = 0.050

    def __init__(
        self,
        store: Callable[[list[Request]], list[Result | DomainError]],
        *,
        linger: float | None = None,
        busy_window: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.linger = self.LINGER if linger is None else linger
        self.busy_window = self.BUSY_WINDOW if busy_window is None else busy_window
        self.clock, self.sleep = clock, sleep
        self.waiting: list[tuple[Request, asyncio.Future[Result], float]] = []
        self.running = False
        self.last_done = -math.inf  # when the last batch was stored
        self.outbox: list[events.Event] = []  # events to send, in order
        self.sending = False
        self.tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def submit(self, request: Request) -> Result:
        """Store ``request`` with whatever else is waiting; its result, or its refusal raised."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future, self.clock()))
        if not self.running:
            self.running = True
            self._start(self._run())
        return await future

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _store_collecting(self, requests: list[Request]) -> tuple[list[Result | DomainError], list[events.Event]]:
        with events.collected() as kept:
            return self.store(requests), kept

    async def _run(self) -> None:
        try:
            while self.waiting:
                if self.linger > 0 and len(self.waiting) < self.MAX_BATCH:
                    now = self.clock()
                    if now - self.last_done < self.busy_window:
                        wait = self.waiting[0][2] + self.linger - now
                        if wait > 0:
                            await self.sleep(wait)
                batch, self.waiting = self.waiting[: self.MAX_BATCH], self.waiting[self.MAX_BATCH :]
                try:
                    results, kept = await _in_database(self._store_collecting, [request for request, *_rest in batch])
                except Exception as failure:  # the whole batch failed: every request in it
                    for _request, future, _arrived in batch:
                        if not future.done():
                            future.set_exception(failure)
                    continue
                finally:
                    self.last_done = self.clock()
                for (_request, future, _arrived), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, DomainError):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                if kept:
                    self.outbox.extend(kept)
                    if not self.sending:
                        self.sending = True
                        self._start(self._send())
        finally:
            self.running = False

    async def _send(self) -> None:
        try:
            while self.outbox:
                kept, self.outbox = self.outbox, []
                await events.send_all(kept)
        finally:
            self.sending = False


def _store_messages(requests: list[actions.MessageRequest]) -> list[Stored | DomainError]:
    """Messages in one transaction (``actions.post_messages``), with the payload each one is sent as."""
    stored: list[Stored | DomainError] = []
    for result in actions.post_messages(requests):
        if isinstance(result, DomainError):
            stored.append(result)
        else:
            payload = actions.message_payload(result.message) if result.created else None
            stored.append((payload, result.message.seq))
    return stored


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Batcher[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)
STORES: dict[str, Callable[[list[Any]], list[Any]]] = {
    "messages": _store_messages,
    "receipts": actions.mark_read_many,
}


def batcher(kind: str) -> Batcher[Any, Any]:
    """This event loop's batcher of ``kind`` ("messages" or "receipts")."""
    per_loop = _batchers.setdefault(asyncio.get_running_loop(), {})
    if kind not in per_loop:
        per_loop[kind] = Batcher(STORES[kind])
    return per_loop[kind]


class TokenBucket:
    """A per-socket limit: ``burst`` at once, then ``rate`` a second (a flood costs one socket, not
    the database)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> float | None:
        """None when allowed, else the seconds to wait."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


def _client_address(scope: dict[str, Any]) -> str | None:
    if settings.TRUST_X_FORWARDED_FOR:
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                forwarded = value.decode("latin-1").split(",")[0].strip()
                if forwarded:
                    return forwarded
    client = scope.get("client")
    return str(client[0]) if client else None


def _language(scope: dict[str, Any], user: Any) -> str:
    """The language the pages use for this user: the language cookie, else the profile's, else the site's."""
    cookies = scope.get("cookies") or {}
    for candidate in (cookies.get(settings.LANGUAGE_COOKIE_NAME), getattr(user, "preferred_language", "")):
        if candidate and translation.check_for_language(candidate):
            return str(candidate)
    return str(settings.LANGUAGE_CODE)


def _error(refusal: DomainError, client_id: str | None = None, language: str = "") -> dict[str, Any]:
    with translation.override(language or settings.LANGUAGE_CODE):  # the message is translated lazily
        message = refusal.message
    frame: dict[str, Any] = {"type": "error", "code": refusal.code, "message": message}
    if refusal.field:
        frame["field"] = refusal.field
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


def _room_url(consultation_id: int) -> str:
    try:
        return reverse("consultations:room", args=[consultation_id])
    except NoReverseMatch:
        return f"/consultations/{consultation_id}/"


class _ConsultationSocket(AsyncJsonWebsocketConsumer):
    """What the three sockets share: the user from the session with its second factor (R6), calls
    into the domain in a worker thread with the request context, and refusals as error frames."""

    user: User
    groups_joined: list[str]
    language: str = ""
    client_address: str | None = None

    async def _resolve_user(self) -> User | None:
        """The logged-in user with ``is_mfa_verified`` read from this session, as the HTTP middleware does."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return None
        self.language = _language(self.scope, user)
        self.client_address = _client_address(self.scope)
        await self._run(self._mark_mfa, user)
        return cast(User, user)

    def _mark_mfa(self, user: User) -> None:
        session = self.scope.get("session")
        # policy reads ``request.user`` and ``request.session`` only: the scope gives both.
        shim = cast(HttpRequest, SimpleNamespace(user=user, session=session))
        user.is_mfa_verified = bool(session is not None and policy.is_strongly_authenticated(shim))

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            ctx = context.RequestContext(client_address=self.client_address, channel="websocket")
            with context.using(ctx), translation.override(self.language or settings.LANGUAGE_CODE):
                return function(*args, **kwargs)

        return await _in_database(call)

    def _error(self, refusal: DomainError, client_id: str | None = None) -> dict[str, Any]:
        return _error(refusal, client_id, self.language)

    async def _refuse(self, close_code: int, refusal: DomainError) -> None:
        await self.accept()
        await self.send_json(self._error(refusal))
        await self.close(code=close_code)

    async def _join(self, *groups: str) -> None:
        self.groups_joined = list(groups)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """As Channels' own, without its ``aclose_old_connections()`` before every handler: that is a hop
        to Channels' one shared thread for each event each socket receives (a chat message is two events
        and two hops), and every database call here goes through ``database_sync_to_async``, which
        already closes stale connections around itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self.send_json(self._error(DomainError(INVALID_INPUT)))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_json(self._error(DomainError(INVALID_INPUT)))
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_json(self._error(DomainError(INVALID_INPUT, field="type")))
            return
        await self.receive_json(content)

    async def _safely(self, handler: Callable[[], Any], client_id: str | None = None) -> None:
        """Run one client request; a refusal or a failure becomes an error frame, never a crash."""
        try:
            await handler()
        except DomainError as refusal:
            await self.send_json(self._error(refusal, client_id))
        except Exception:
            logger.exception("websocket request failed (%s)", type(self).__name__)
            await self.send_json(self._error(DomainError(SERVER_ERROR), client_id))


class ConsultationConsumer(_ConsultationSocket):
    """The consultation room: chat, read receipts, call state and WebRTC signalling."""

    consultation_id: int
    role: str
    last_seq: int | None  # the highest seq sent on this socket; None until the client said hello
    read_marked = 0  # the highest read receipt stored for this socket
    read_wanted = 0  # the highest read receipt the client sent
    read_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.consultation_id = int(self.scope["url_route"]["kwargs"]["consultation_id"])
        self.last_seq = None
        self.message_bucket = TokenBucket(rate=5, burst=20)
        self.signal_bucket = TokenBucket(rate=50, burst=200)  # ICE candidates come in bursts
        user = await self._resolve_user()
        if user is None:
            await self._refuse(CLOSE_NOT_LOGGED_IN, DomainError(LOGIN_REQUIRED))
            return
        self.user = user
        try:
            self.role = await self._run(self._check_participant)
        except DomainError as refusal:
            await self._refuse(CLOSE_REFUSED, refusal)
            return
        await self._join(events.consultation_group(self.consultation_id))
        await self.accept()

    def _check_participant(self) -> str:
        consultation = (
            Consultation.objects.select_related("patient", "practitioner", "practitioner__user")
            .filter(pk=self.consultation_id)
            .first()
        )
        if consultation is None:
            raise DomainError(errors.CONSULTATION_NOT_FOUND)
        return access.check_participant(self.user, consultation)

    # --- client → server ------------------------------------------------------------------------
    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content["type"]
        if kind == "hello":
            await self._safely(lambda: self._hello(content))
        elif kind == "message":
            client_id = content.get("client_id")
            client_id = client_id if isinstance(client_id, str) else None
            await self._safely(lambda: self._message(content), client_id)
        elif kind == "read":
            await self._safely(lambda: self._read(content))
        elif kind == "call.start":
            await self._safely(self._call_start)
        elif kind == "call.update":
            await self._safely(lambda: self._call_update(content))
        elif kind == "signal":
            await self._safely(lambda: self._signal(content))
        else:
            await self.send_json(self._error(DomainError(INVALID_INPUT, field="type")))

    async def _hello(self, content: dict[str, Any]) -> None:
        after = content.get("after", 0)
        if after is None:
            after = 0
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise DomainError(INVALID_INPUT, field="after")
        batches, call, status = await self._run(self._history, after)
        for i, batch in enumerate(batches):
            frame: dict[str, Any] = {"type": "history", "messages": batch, "more": i < len(batches) - 1}
            if i == 0:
                frame["call"] = call
                frame["status"] = status
            await self.send_json(frame)
            if batch:
                after = batch[-1]["seq"]
        self.last_seq = max(after, self.last_seq or 0)

    def _history(self, after: int) -> tuple[list[list[dict[str, Any]]], dict[str, Any] | None, str]:
        batches: list[list[dict[str, Any]]] = []
        while True:
            messages = actions.messages_after(self.user, self.consultation_id, after, limit=HISTORY_BATCH)
            batches.append([actions.message_payload(m) for m in messages])
            if len(messages) < HISTORY_BATCH:
                break
            after = messages[-1].seq
        call = (
            CallRecord.objects.filter(consultation_id=self.consultation_id, outcome__in=ACTIVE_CALL_STATES)
            .order_by("-started_at")
            .values("call_id", "outcome")
            .first()
        )
        status = Consultation.objects.filter(pk=self.consultation_id).values_list("status", flat=True).first()
        return batches, ({"call_id": call["call_id"], "state": call["outcome"]} if call else None), status or ""

    async def _message(self, content: dict[str, Any]) -> None:
        client_id, body = content.get("client_id"), content.get("body")
        if not isinstance(client_id, str):
            raise DomainError(INVALID_INPUT, field="client_id")
        if not isinstance(body, str):
            raise DomainError(INVALID_INPUT, field="body")
        wait = self.message_bucket.take()
        if wait is not None:
            raise DomainError(RATE_LIMITED, retry_after=max(1, round(wait)))
        request = actions.MessageRequest(
            self.user,
            self.consultation_id,
            client_id,
            body,
            request_context=context.RequestContext(client_address=self.client_address, channel="websocket"),
        )
        payload, seq = await batcher("messages").submit(request)
        await self.send_json({"type": "ack", "client_id": client_id, "seq": seq})
        if payload is not None:
            # The sender sees its message at once; the echo through the channel layer is then a
            # duplicate and dropped by seq.
            await self._deliver(payload)

    async def _read(self, content: dict[str, Any]) -> None:
        seq = content.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise DomainError(INVALID_INPUT, field="seq")
        if seq <= max(self.read_marked, self.read_wanted):
            return  # never backwards, and nothing new
        self.read_wanted = seq
        if self.read_task is None or self.read_task.done():
            self.read_task = asyncio.get_running_loop().create_task(self._store_reads())

    async def _store_reads(self) -> None:
        """Store the latest receipt; receipts that come while one is stored are folded into the next,
        at most one a second per socket (a receipt is a write and comes as often as messages)."""
        while self.read_wanted > self.read_marked:
            seq = self.read_wanted
            try:
                await batcher("receipts").submit(actions.ReadRequest(self.user, self.consultation_id, seq))
            except DomainError as refusal:
                await self._send_quietly(self._error(refusal))
                return
            except Exception:
                logger.exception("read receipt failed")
                return
            self.read_marked = seq
            if self.read_wanted > self.read_marked:
                await asyncio.sleep(READ_RECEIPT_INTERVAL)

    async def _send_quietly(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the socket may be gone by now
            await self.send_json(frame)

    async def _call_start(self) -> None:
        call = await self._run(actions.start_call, self.user, self.consultation_id)
        await self.send_json({"type": "call", "call_id": call.call_id, "state": call.outcome})

    async def _call_update(self, content: dict[str, Any]) -> None:
        call_id, state = content.get("call_id"), content.get("state")
        if not isinstance(call_id, str) or not isinstance(state, str):
            raise DomainError(INVALID_INPUT, field="call_id")
        await self._run(self._update_call, call_id, state)

    def _update_call(self, call_id: str, state: str) -> None:
        belongs = CallRecord.objects.filter(call_id=call_id, consultation_id=self.consultation_id).exists()
        if not belongs:  # a call of another consultation is not this room's business
            raise DomainError(errors.CALL_NOT_FOUND)
        actions.update_call(self.user, call_id, state)

    async def _signal(self, content: dict[str, Any]) -> None:
        call_id, data, to = content.get("call_id"), content.get("data"), content.get("to")
        if not isinstance(call_id, str) or not 0 < len(call_id) <= 40:
            raise DomainError(INVALID_INPUT, field="call_id")
        if not isinstance(data, dict) or len(json.dumps(data)) > MAX_SIGNAL_CHARS:
            raise DomainError(INVALID_INPUT, field="data")
        if to is not None and (not isinstance(to, int) or isinstance(to, bool)):
            raise DomainError(INVALID_INPUT, field="to")
        wait = self.signal_bucket.take()
        if wait is not None:
            raise DomainError(RATE_LIMITED, retry_after=max(1, round(wait)))
        # Only between the sockets of this room, whose users were checked at connect.
        await self.channel_layer.group_send(
            events.consultation_group(self.consultation_id),
            {
                "type": "call.signal",
                "payload": {"from": self.user.pk, "call_id": call_id, "data": data, "to": to},
                "sender": self.channel_name,
            },
        )

    # --- server → client: events of the consultation's group ------------------------------------
    async def _deliver(self, payload: dict[str, Any]) -> None:
        """Send one message payload on this socket: once per seq, in seq order (see the module doc)."""
        if self.last_seq is None:
            return  # before hello: the history will contain it
        seq = int(payload["seq"])
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            for missing in await self._run(self._between, self.last_seq, seq):
                await self.send_json({"type": "message", **missing})
        await self.send_json({"type": "message", **self._localised(payload)})
        self.last_seq = seq

    def _between(self, after: int, before: int) -> list[dict[str, Any]]:
        # Live delivery to a checked participant; the audited read was the hello.
        rows = (
            Message.objects.filter(consultation_id=self.consultation_id, seq__gt=after, seq__lt=before)
            .select_related("attachment")
            .order_by("seq")
        )
        return [actions.message_payload(m) for m in rows]

    def _localised(self, payload: dict[str, Any]) -> dict[str, Any]:
        """System messages were rendered in the language of whoever caused them: render them again in ours."""
        code = payload.get("system_code")
        if payload.get("kind") == MessageKind.SYSTEM and code in actions.SYSTEM_TEXTS:
            with translation.override(self.language or settings.LANGUAGE_CODE):
                return {**payload, "body": str(actions.SYSTEM_TEXTS[code])}
        return payload

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self._deliver(event["payload"])

    async def _catch_up(self, upto: int) -> None:
        """Messages up to ``upto`` exist (someone read them, or the status says so) but this socket has
        not had them: their events were lost on the way (a full channel layer drops events). Read them."""
        if self.last_seq is None or upto <= self.last_seq:
            return
        for missing in await self._run(self._between, self.last_seq, upto + 1):
            await self.send_json({"type": "message", **missing})
            self.last_seq = max(self.last_seq, int(missing["seq"]))

    async def chat_read(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "read", **event["payload"]})
        await self._catch_up(int(event["payload"].get("seq", 0)))

    async def consultation_status(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "status", **event["payload"]})
        await self._catch_up(int(event["payload"].get("last_seq", 0)))

    async def call_state(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        await self.send_json({"type": "call", "call_id": payload["call_id"], "state": payload["state"]})

    async def call_signal(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if event.get("sender") == self.channel_name:
            return
        if payload.get("to") is not None and payload["to"] != self.user.pk:
            return
        await self.send_json(
            {"type": "signal", "from": payload["from"], "call_id": payload["call_id"], "data": payload["data"]}
        )


class QueueConsumer(_ConsultationSocket):
    """The patient's side of a queued consultation: the live position and estimated wait."""

    consultation_id: int

    async def connect(self) -> None:
        self.consultation_id = int(self.scope["url_route"]["kwargs"]["consultation_id"])
        user = await self._resolve_user()
        if user is None:
            await self._refuse(CLOSE_NOT_LOGGED_IN, DomainError(LOGIN_REQUIRED))
            return
        self.user = user
        try:
            department_id = await self._run(self._check_patient_side)
        except DomainError as refusal:
            await self._refuse(CLOSE_REFUSED, refusal)
            return
        groups = [events.consultation_group(self.consultation_id)]
        if department_id is not None:
            groups.append(events.queue_group(department_id))
        await self._join(*groups)
        await self.accept()
        await self._send_position()

    def _check_patient_side(self) -> int | None:
        consultation = (
            Consultation.objects.select_related("patient", "practitioner", "practitioner__user")
            .filter(pk=self.consultation_id)
            .first()
        )
        if consultation is None:
            raise DomainError(errors.CONSULTATION_NOT_FOUND)
        role = access.check_participant(self.user, consultation)
        if role not in access.PATIENT_SIDE:
            raise DomainError(PERMISSION_DENIED)
        return consultation.department_id if consultation.kind == ConsultationKind.QUEUE else None

    def _position(self) -> dict[str, Any]:
        consultation = Consultation.objects.select_related("department").get(pk=self.consultation_id)
        position = actions.queue_position(consultation)
        return {
            "type": "position",
            "position": position.position,
            "ahead": position.ahead,
            "estimated_minutes": position.estimated_minutes,
            "status": consultation.status,
            "room_url": _room_url(self.consultation_id),
        }

    async def _send_position(self) -> None:
        await self.send_json(await self._run(self._position))

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content["type"] == "position":  # the page may ask again, e.g. after waking up
            await self._safely(self._send_position)
        else:
            await self.send_json(self._error(DomainError(INVALID_INPUT, field="type")))

    async def queue_changed(self, event: dict[str, Any]) -> None:
        await self._safely(self._send_position)

    async def consultation_status(self, event: dict[str, Any]) -> None:
        await self._safely(self._send_position)

    # The consultation's group also carries the room's traffic, which this page does not show.
    async def chat_message(self, event: dict[str, Any]) -> None:
        return

    async def chat_read(self, event: dict[str, Any]) -> None:
        return

    async def call_state(self, event: dict[str, Any]) -> None:
        return

    async def call_signal(self, event: dict[str, Any]) -> None:
        return


class WorkbenchConsumer(_ConsultationSocket):
    """A doctor's workbench (R6: with a second factor in this session): "refresh" on any change."""

    async def connect(self) -> None:
        user = await self._resolve_user()
        if user is None:
            await self._refuse(CLOSE_NOT_LOGGED_IN, DomainError(LOGIN_REQUIRED))
            return
        self.user = user
        try:
            groups = await self._run(self._groups)
        except DomainError as refusal:
            await self._refuse(CLOSE_REFUSED, refusal)
            return
        await self._join(*groups)
        await self.accept()

    def _groups(self) -> list[str]:
        practitioner = access.acting_doctor(self.user)
        departments = sorted(access.department_ids_of(practitioner))
        return [events.workbench_group(practitioner.pk)] + [events.department_bench_group(d) for d in departments]

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        await self.send_json(self._error(DomainError(INVALID_INPUT, field="type")))

    async def bench_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "refresh"})
