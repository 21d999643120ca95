from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    name = "nethospital.consultations"
    label = "consultations"
    verbose_name = "Consultations"
