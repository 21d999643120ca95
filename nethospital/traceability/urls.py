from django.urls import path

from nethospital.traceability import views

app_name = "traceability"
urlpatterns = [
    # Public: anyone may verify a box's code (page, or JSON with ?format=json). Digital Link URIs
    # contain slashes, hence the path converter.
    path("verify/", views.verify, name="verify"),
    path("verify/<path:code>", views.verify, name="verify_code"),
    path("traceability/alerts/", views.alert_list, name="alerts"),
    path("traceability/alerts/<int:alert_id>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("traceability/recalls/", views.recall_list, name="recalls"),
    path("traceability/journey/<path:identifier>/", views.journey, name="journey"),
]
