from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from nethospital.api import api
from nethospital.core import views as core_views
from nethospital.records import views as records_views

urlpatterns = [
    # The home page also has the un-namespaced name "home" (LOGIN_REDIRECT_URL and allauth use it).
    path("", records_views.home, name="home"),
    path("", include("nethospital.accounts.urls")),
    path("", include("nethospital.directory.urls")),
    path("", include("nethospital.records.urls")),
    path("", include("nethospital.scheduling.urls")),
    path("", include("nethospital.consultations.urls")),
    # Before traceability: its public verify/<path:code> would otherwise take verify/prescription/<id>/.
    path("", include("nethospital.prescriptions.urls")),
    path("", include("nethospital.pharmacy.urls")),
    path("", include("nethospital.traceability.urls")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", api.urls),
    # GS1 EPCIS 2.0 REST bindings (capture and query of supply-chain events).
    path("epcis/", include("nethospital.traceability.api")),
    path("admin/", admin.site.urls),
    path("healthz", core_views.healthz, name="healthz"),
]

if settings.DEBUG:  # pragma: no cover - development only
    pass
