"""Websocket routes of all apps: the notifications channel each user gets, and the consultations'
room (chat, read receipts, video signalling), live queue position and doctor's workbench."""

from django.urls import path

from nethospital.consultations.consumers import ConsultationConsumer, QueueConsumer, WorkbenchConsumer
from nethospital.core.consumers import NotificationsConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationsConsumer.as_asgi()),
    path("ws/consultations/<int:consultation_id>/", ConsultationConsumer.as_asgi()),
    path("ws/queue/<int:consultation_id>/", QueueConsumer.as_asgi()),
    path("ws/workbench/", WorkbenchConsumer.as_asgi()),
]
