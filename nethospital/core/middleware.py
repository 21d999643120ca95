from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from nethospital.core import context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def client_address(request: HttpRequest) -> str | None:
    """The client's address; X-Forwarded-For only when the proxy in front is trusted."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    # Deliberately sync-only, like the other project middleware: under ASGI every async-capable
    # middleware above the first sync-only one turns each of Django's own (MiddlewareMixin)
    # middlewares into separate sync_to_async hops, which measured slower (docs/benchmarks.md).
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith("/api/") else "web"
        with context.using(context.RequestContext(client_address=client_address(request), channel=channel)):
            return self.get_response(request)


class ConcurrentRequestLimit:
    """ASGI middleware: at most ``limit`` HTTP requests of this process are computed at once; the
    others wait their turn in the event loop, in arrival order. Nothing is refused.

    Django's ASGI handler runs every request in a thread of its own, and each holds a pooled
    database connection from its first query to its end. In a rush (docs/benchmarks.md) hundreds of
    threads would then compete for one GIL and wait, holding nothing useful, for one of
    ``DB_POOL_MAX_SIZE`` connections, and give up with a 500 after ``DB_POOL_TIMEOUT``. A waiting
    coroutine costs neither a thread nor a connection, and never times out on the server's side.

    A request takes its place once its body is fully received (a slow upload does not hold one) and
    gives it back when its response starts (a slow download does not either). Websockets are not
    counted: they are long-lived and go through Channels.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._places: asyncio.Semaphore | None = None  # made in the server's event loop, on first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit < 1:
            await self.app(scope, receive, send)
            return
        if self._places is None:
            self._places = asyncio.Semaphore(self.limit)
        places = self._places
        holding = False

        async def receive_then_wait_for_a_place() -> Message:
            nonlocal holding
            message = await receive()
            if not holding and message["type"] == "http.request" and not message.get("more_body", False):
                await places.acquire()
                holding = True
            return message

        async def send_and_give_back_the_place(message: Message) -> None:
            nonlocal holding
            if holding and message["type"] == "http.response.start":
                holding = False
                places.release()
            await send(message)

        try:
            await self.app(scope, receive_then_wait_for_a_place, send_and_give_back_the_place)
        finally:
            if holding:
                places.release()


def served_application() -> ASGIApp:
    """The application ``nethospital serve`` gives uvicorn (as a factory, in each worker process):
    the project's ASGI application behind ``NETHOSPITAL_CONCURRENT_REQUESTS`` places, the process's
    garbage collector settled once the application is built (``core.gcpolicy``)."""
    from nethospital.asgi import application
    from nethospital.core import gcpolicy

    gcpolicy.settle()
    return ConcurrentRequestLimit(application, int(getattr(settings, "NETHOSPITAL_CONCURRENT_REQUESTS", 0)))
