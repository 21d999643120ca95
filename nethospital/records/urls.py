from django.urls import path

from nethospital.records import views

app_name = "records"
urlpatterns = [
    path("", views.home, name="home"),
    path("me/access-log/", views.my_access_log, name="my_access_log"),
    path("patients/<int:patient_id>/", views.chart, name="chart"),
    path("patients/<int:patient_id>/access-log/", views.patient_access_log, name="patient_access_log"),
]
