"""Tell a user something: an in-app notification, an e-mail, and a live push to their open tabs.

Call ``notify`` from ``transaction.on_commit`` so nobody hears of a change that was rolled back.
Texts are rendered in the user's preferred language; logs never carry the text.

The e-mail is a task (``send_notification_email``, django-tasks), not sent in the request: an SMTP
round trip would otherwise sit on the latency of every booking. With the database task backend
(production) ``nethospital worker`` sends it; with the immediate backend (embedded default, tests) it
is sent at once, in the calling process, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.functional import Promise
from django_tasks import task

from nethospital.core import clock
from nethospital.core.consumers import user_group
from nethospital.core.models import Notification

logger = logging.getLogger(__name__)


def notify(
    user: Any,
    kind: str,
    title: str | Promise,
    body: str | Promise | Callable[[], str],
    *,
    link: str = "",
    params: dict[str, Any] | None = None,
    email: bool = True,
) -> Notification:
    language = getattr(user, "preferred_language", "") or settings.LANGUAGE_CODE
    with translation.override(language):
        params = {k: (v() if callable(v) else v) for k, v in (params or {}).items()}
        title_text = str(title) % params if params else str(title)
        body_text = body() if callable(body) else (str(body) % params if params else str(body))
    notification = Notification.objects.create(
        user=user, kind=kind, title=title_text[:200], body=body_text[:2000], link=link, created_at=clock.now()
    )
    if email and user.email:
        try:
            send_notification_email.enqueue(notification.pk)
        except Exception:  # a task-queue outage must not lose the in-app notification
            logger.exception("notification e-mail not queued (kind=%s, notification=%s)", kind, notification.pk)
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(
                user_group(user.pk),
                {"type": "notify", "payload": {"id": notification.pk, "kind": kind, "title": title_text, "link": link}},
            )
    except Exception:  # the live push is best effort; the notification is stored
        logger.warning("live notification push failed (kind=%s, notification=%s)", kind, notification.pk)
    return notification


@task()
def send_notification_email(notification_id: int) -> None:
    """E-mail a stored notification to its user (the text as rendered for the in-app notification).
    A failure is recorded by django-tasks as a failed task, with its traceback, not retried."""
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    user = notification.user
    if not user.email:
        return
    link = notification.link
    send_mail(notification.title, notification.body + (f"\n\n{link}" if link else ""), None, [user.email])
