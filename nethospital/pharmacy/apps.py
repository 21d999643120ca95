from django.apps import AppConfig


class PharmacyConfig(AppConfig):
    name = "nethospital.pharmacy"
    label = "pharmacy"
    verbose_name = "Pharmacy"
