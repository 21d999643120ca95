from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    name = "nethospital.traceability"
    label = "traceability"
    verbose_name = "Traceability"
