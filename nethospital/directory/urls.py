from django.urls import path

from nethospital.directory import views

app_name = "directory"
urlpatterns = [
    path("hospital-admin/practitioners/", views.verification_queue, name="verification_queue"),
    path(
        "hospital-admin/practitioners/<int:practitioner_id>/status/",
        views.change_verification,
        name="change_verification",
    ),
]
