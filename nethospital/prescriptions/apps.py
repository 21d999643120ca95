from django.apps import AppConfig


class PrescriptionsConfig(AppConfig):
    name = "nethospital.prescriptions"
    label = "prescriptions"
    verbose_name = "Prescriptions"
