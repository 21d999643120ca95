"""Websocket routes of all apps. The foundation has one: a liveness echo for the notifications
channel each user gets (later issues add chat, video signalling and queue positions)."""

from django.urls import path

from nethospital.core.consumers import NotificationsConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationsConsumer.as_asgi()),
]
